"""The live's "now selling" pointer (issue 20): moved through the admin API, matched to comments without a
code by their creation time and the viewers' delay, asked about when it moved within it, and the replay of
a recorded-style live where every bare order must go to the product the viewer saw."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.emulator.replay import RecordedLive, ScriptMove, play_live, recorded_live
from bot.inbox.auth import add_user
from bot.inbox.board import fetch_trail
from bot.replies.carts import already_chosen, expired_choice, parse_point_payload
from bot.runtime.clock import from_epoch_s, utcnow
from bot.store.tables import CommentLog, LivePointer, LivePointerMove, LiveVideo
from bot.web import pointer_api
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from tests.conftest import ADMIN_TOKEN, PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends, start_stack
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in

VIDEO = "7770020"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PRODUCTS = {"A": ("Floral dress", 40), "B": ("Silk scarf", 40), "C": ("Pearl earrings", 6), "D": ("Tote bag", 40)}


@pytest.fixture
async def live(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The whole bot, a live campaign selling A-D on the Page's next live, and that live running."""
    # The live's reader looks for it often: it learns the video's post (Meta's name for it) that comments carry.
    async for stack in start_stack(
        aiohttp_client, tmp_path, redis_server, fallback_cooldown_s=3600, live_check_interval_s=0.1
    ):
        now = utcnow()
        async with stack.sessions() as session, session.begin():
            products = {
                code: Product(code=code, name=name, price=Decimal("100"), stock=stock, created_at=now, updated_at=now)
                for code, (name, stock) in PRODUCTS.items()
            }
            other = Product(code="E", name="Wool hat", price=Decimal("90"), stock=5, created_at=now, updated_at=now)
            tonight = Campaign(
                key="tonight",
                title="Tonight's live",
                page_id=PAGE_ID,
                next_live=True,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=3),
                created_at=now,
                updated_at=now,
            )
            winter = Campaign(
                key="winter",
                title="Winter post",
                page_id=PAGE_ID,
                post_id=f"{PAGE_ID}_555",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=3),
                created_at=now,
                updated_at=now,
            )
            session.add_all([*products.values(), other, tonight, winter])
            await session.flush()
            session.add_all(
                [CampaignProduct(campaign_id=tonight.id, product_id=p.id, order_code=c) for c, p in products.items()]  # type: ignore[arg-type]
            )
            session.add(CampaignProduct(campaign_id=winter.id, product_id=other.id, order_code="E"))  # type: ignore[arg-type]
        yield stack


async def go_live(stack: Stack) -> None:
    assert (await stack.emulator.live_video(PAGE_ID, VIDEO))["status"] == 200

    async def attached() -> bool:
        rows = await stack.rows(select(Campaign.live_video_id).where(Campaign.key == "tonight"))
        videos = await stack.rows(select(LiveVideo.post_id).where(LiveVideo.video_id == VIDEO))
        return rows == [VIDEO] and videos not in ([], [None])

    await wait_until(attached, what="the live video attached to the campaign, its post learned")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """The moment the pointer API reads from the clock, set by the test (`clock[0]`)."""
    moment = [utcnow()]
    monkeypatch.setattr(pointer_api, "utcnow", lambda: moment[0])
    yield moment


async def point(stack: Stack, code: str | None) -> Any:
    resp = await stack.client.post("/api/campaigns/tonight/pointer", json={"code": code}, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def moves(stack: Stack) -> list[tuple[str | None, str]]:
    return [
        (m.product_code, m.moved_by) for m in await stack.rows(select(LivePointerMove).order_by(LivePointerMove.id))
    ]


async def test_bad_moves_are_refused_with_a_reason_and_change_nothing(live: Stack) -> None:
    client = live.client
    # The live has not started: nothing to point at yet.
    resp = await client.post("/api/campaigns/tonight/pointer", json={"code": "A"}, headers=ADMIN)
    assert resp.status == 409 and "no live video running" in (await resp.json())["error"]
    await go_live(live)
    for body, status, words in [
        ({"code": "E"}, 400, "'E' is sold in campaign 'winter', not in this live"),
        ({"code": "Z9"}, 400, "no product 'Z9' in campaign 'tonight'"),
        ({"code": 7}, 400, "code must be a product code"),
        ({"code": ""}, 400, "code must be a product code"),
        ({}, 400, "code is required"),
        ({"code": "A", "colour": "red"}, 400, "colour: unknown field"),
    ]:
        resp = await client.post("/api/campaigns/tonight/pointer", json=body, headers=ADMIN)
        assert resp.status == status, body
        assert words in (await resp.json())["error"], body
    resp = await client.post("/api/campaigns/nope/pointer", json={"code": "A"}, headers=ADMIN)
    assert resp.status == 404 and (await resp.json())["error"] == "no campaign 'nope'"
    resp = await client.post("/api/campaigns/winter/pointer", json={"code": "E"}, headers=ADMIN)
    assert resp.status == 409  # a post's campaign has no live to point in
    assert (await client.post("/api/campaigns/tonight/pointer", json={"code": "A"})).status == 401
    for grace in [61, -1, "soon", 1.5, True]:
        resp = await client.put("/api/campaigns/tonight/pointer/grace", json={"grace_s": grace}, headers=ADMIN)
        assert resp.status == 400 and (await resp.json())["error"] == "grace_s must be whole seconds from 0 to 60"
    # The broadcast is over: the pointer stays where it was.
    resp = await client.post(f"/api/live-videos/{VIDEO}/stop", headers=ADMIN)
    assert resp.status == 200
    resp = await client.post("/api/campaigns/tonight/pointer", json={"code": "A"}, headers=ADMIN)
    assert resp.status == 409 and "is not running (live_stopped)" in (await resp.json())["error"]
    assert await moves(live) == []
    assert await live.rows(select(LivePointer)) == []


async def test_the_pointer_moves_and_its_chapters_are_the_replays(live: Stack, clock: list[datetime]) -> None:
    await go_live(live)
    start = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    clock[0] = start
    body = await point(live, "a")  # any case: the campaign's own spelling is kept
    assert (body["now_selling"], body["since"], body["grace_s"]) == ("A", start.isoformat(), 15)
    clock[0] = start + timedelta(seconds=70)
    await point(live, "C")
    clock[0] = start + timedelta(seconds=100)
    await point(live, None)
    resp = await live.client.put("/api/campaigns/tonight/pointer/grace", json={"grace_s": 8}, headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["grace_s"] == 8
    body = await (await live.client.get("/api/campaigns/tonight/pointer", headers=ADMIN)).json()
    assert body["now_selling"] is None and body["moved_by"] == "api"
    assert [(c["code"], c["name"], c["start"], c["end"]) for c in body["chapters"]] == [
        ("A", "Floral dress", start.isoformat(), (start + timedelta(seconds=70)).isoformat()),
        (
            "C",
            "Pearl earrings",
            (start + timedelta(seconds=70)).isoformat(),
            (start + timedelta(seconds=100)).isoformat(),
        ),
    ]
    assert await moves(live) == [("A", "api"), ("C", "api"), (None, "api")]


async def private_replies(stack: Stack) -> list[dict[str, Any]]:
    return [c for c in await sends(stack) if c["status"] == 200 and "comment_id" in c["body"]["recipient"]]


def reply_text(call: dict[str, Any]) -> str:
    message = call["body"]["message"]
    return message.get("text") or message["attachment"]["payload"]["text"]


async def reply_to(stack: Stack, comment_id: str) -> dict[str, Any]:
    async def found() -> bool:
        return any(c["body"]["recipient"]["comment_id"] == comment_id for c in await private_replies(stack))

    await wait_until(found, what=f"the private reply to {comment_id}")
    return next(c for c in await private_replies(stack) if c["body"]["recipient"]["comment_id"] == comment_id)


async def claims_of(stack: Stack, comment_id: str) -> list[tuple[str, int, str]]:
    async with stack.sessions() as session:
        rows = await session.execute(
            select(Product.code, StockClaim.qty, StockClaim.status)
            .join(Product, Product.id == StockClaim.product_id)
            .where(StockClaim.comment_id == comment_id)
            .order_by(StockClaim.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def ordered(stack: Stack, comment_id: str) -> list[tuple[str, int]]:
    """What a comment ordered, per product (a claim stock could not cover whole is split: held and waitlisted)."""
    units: dict[str, int] = {}
    for code, qty, _status in await claims_of(stack, comment_id):
        units[code] = units.get(code, 0) + qty
    return sorted(units.items())


async def test_a_bare_order_goes_to_what_was_on_screen_or_asks_which_one(live: Stack, clock: list[datetime]) -> None:
    await go_live(live)
    start = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    clock[0] = start + timedelta(seconds=20)
    await point(live, "A")
    clock[0] = start + timedelta(seconds=60)
    await point(live, "B")
    t0 = start.timestamp()

    async def comment(user: str, text: str, at_s: int) -> str:
        sent = await live.emulator.live_comment(VIDEO, user, text, to=("webhook",), created_time=t0 + at_s)
        return str(sent["comment_id"])

    seen_a = await comment("3900000000001", "+2", 30)  # only A was on screen in [15, 30] (from 20 s)
    late = await comment("3900000000002", "我要", 68)  # B came at 60: the viewer may still see A
    coded = await comment("3900000000003", "d+1", 68)  # a code always wins
    seen_b = await comment("3900000000004", "want 2", 80)  # [65, 80]: B alone
    early = await comment("3900000000005", "+1", 10)  # nothing on screen yet: today's answer

    async def decided() -> bool:
        rows = await live.rows(select(CommentLog.outcome).where(CommentLog.outcome.in_(["received", "pending"])))
        return not rows and len(await live.rows(select(CommentLog))) == 5

    await wait_until(decided, what="every comment decided")
    assert await claims_of(live, seen_a) == [("A", 2, "held")]
    assert await claims_of(live, seen_b) == [("B", 2, "held")]
    assert await claims_of(live, coded) == [("D", 1, "held")]
    assert await claims_of(live, late) == [] and await claims_of(live, early) == []
    reply = await reply_to(live, late)
    # In the viewer's language (the comment is Chinese), naming both products.
    assert "您想要哪一件，A Floral dress / B Silk scarf？" in reply_text(reply)
    quick = reply["body"]["message"]["quick_replies"]
    assert [q["title"] for q in quick] == ["A Floral dress", "B Silk scarf"]
    assert [parse_point_payload(q["payload"]) for q in quick] == [(late, "A"), (late, "B")]
    assert "which item?" in reply_text(await reply_to(live, early))  # as any `+1` without a code today

    # The viewer edits `+2` to `+3` while B is on screen: one more of A, the product their comment ordered.
    [post] = await live.rows(select(CommentLog.post_id).where(CommentLog.comment_id == seen_a))
    await live.emulator.deliver_comment(
        PAGE_ID, post, "3900000000001", "+3", comment_id=seen_a, verb="edited", created_time=t0 + 95
    )

    async def edited() -> bool:
        return await ordered(live, seen_a) == [("A", 3)]

    await wait_until(edited, what="the edit ordering one more A")

    # The viewer taps A: the comment orders A, answered in the chat; a second tap changes nothing.
    await live.emulator.deliver_message(PAGE_ID, "3900000000002", "A Floral dress", quick_reply=quick[0]["payload"])

    async def held() -> bool:
        return await claims_of(live, late) == [("A", 1, "held")]

    await wait_until(held, what="the chosen product held")

    async def told() -> bool:
        texts = [reply_text(c) for c in await sends(live) if c["body"]["recipient"].get("id") == "3900000000002"]
        return any("✅ A Floral dress ×1" in t for t in texts)

    await wait_until(told, what="the chat told of the hold")
    await live.emulator.deliver_message(PAGE_ID, "3900000000002", "B Silk scarf", quick_reply=quick[1]["payload"])

    async def answered_twice() -> bool:
        texts = [reply_text(c) for c in await sends(live) if c["body"]["recipient"].get("id") == "3900000000002"]
        return any(already_chosen(locale, "A") in t for t in texts for locale in ("en", "zh_Hant"))

    await wait_until(answered_twice, what="the second tap answered")
    assert await claims_of(live, late) == [("A", 1, "held")]
    [row] = await live.rows(select(CommentLog).where(CommentLog.comment_id == late))
    assert row.outcome == "product_chosen"
    # Someone else's comment, or a product it was not asked about: a friendly answer, nothing claimed.
    forged = quick[1]["payload"].replace("B", "C")
    await live.emulator.deliver_message(PAGE_ID, "3900000000009", "C", quick_reply=quick[0]["payload"])
    await live.emulator.deliver_message(PAGE_ID, "3900000000004", "C", quick_reply=forged)

    async def refused() -> bool:
        texts = [reply_text(c) for c in await sends(live) if c["body"]["recipient"].get("id", "").endswith(("9", "4"))]
        return sum(t in (expired_choice("en"), expired_choice("zh_Hant")) for t in texts) == 2

    await wait_until(refused, what="the forged taps answered")
    assert await claims_of(live, late) == [("A", 1, "held")] and await claims_of(live, seen_b) == [("B", 2, "held")]


def expected_candidates(script: RecordedLive, created_s: int, grace_s: int = 15) -> set[str]:
    """The products the script showed at any second of [created - grace, created] (moves are on whole seconds)."""
    return {c for t in range(created_s - grace_s, created_s + 1) if (c := script.on_screen_at(t)) is not None}


async def test_the_replay_of_a_recorded_live_matches_every_bare_order_to_what_the_viewer_saw(
    live: Stack, clock: list[datetime]
) -> None:
    await go_live(live)
    script = recorded_live(list(PRODUCTS))
    started = int(utcnow().timestamp()) - script.duration_s - 60  # the live was recorded: it is over by now

    async def move(step: ScriptMove) -> None:
        clock[0] = from_epoch_s(started + step.at_s)
        await point(live, step.code)

    played = await play_live(script, live.emulator, VIDEO, float(started), move)
    assert len(played) >= 100 and len({c.user_id for c, _ in played}) >= 30

    async def decided() -> bool:
        rows = await live.rows(select(CommentLog.outcome).where(CommentLog.outcome.in_(["received", "pending"])))
        return not rows and len(await live.rows(select(CommentLog))) == len(played)

    await wait_until(decided, limit=120, what="every comment of the live decided")
    bare = [(c, cid) for c, cid in played if c.kind == "bare"]
    asked = [(c, cid) for c, cid in bare if len(expected_candidates(script, c.at_s)) > 1]
    direct = [(c, cid) for c, cid in bare if len(expected_candidates(script, c.at_s)) == 1]
    assert len(asked) >= 5 and len(direct) >= 30  # the script really tests both
    for c, cid in direct:
        assert await ordered(live, cid) == [(c.saw, c.qty)], c

    # Each viewer asked finds the products on screen in their private reply, taps the one they saw.
    async def all_asked() -> bool:
        found = {
            parse_point_payload(q["payload"])
            for r in await private_replies(live)
            for q in r["body"]["message"].get("quick_replies", [])
        }
        missing[:] = [(c, cid) for c, cid in asked if (cid, c.saw) not in found]
        return not missing

    missing: list[tuple[Any, str]] = []
    try:
        await wait_until(all_asked, limit=120, what="every ask-which-one reply")
    except AssertionError:
        logs = {r.comment_id: (r.outcome, r.reply_status, r.detail) for r in await live.rows(select(CommentLog))}
        raise AssertionError([(c, logs.get(cid)) for c, cid in missing]) from None
    quick_replies = {
        parse_point_payload(q["payload"]): q
        for r in await private_replies(live)
        for q in r["body"]["message"].get("quick_replies", [])
    }
    for c, cid in asked:
        offered = sorted(code for (comment_id, code) in quick_replies if comment_id == cid)
        assert offered == sorted(expected_candidates(script, c.at_s)), c
        tap = quick_replies[(cid, c.saw)]
        await live.emulator.deliver_message(PAGE_ID, c.user_id, tap["title"], quick_reply=tap["payload"])

    async def chosen() -> bool:
        return all([await claims_of(live, cid) for _c, cid in asked])

    await wait_until(chosen, limit=120, what="every tapped choice claimed")
    for c, cid in asked:
        assert await ordered(live, cid) == [(c.saw, c.qty)], c
    for c, cid in played:
        if c.kind == "coded":
            assert await ordered(live, cid) == [(c.code, c.qty)], c
        if c.kind == "chatter":
            assert await claims_of(live, cid) == [], c

    # Never oversold: the pearl earrings (6) ran out, held + sold never above stock, the rest waits in line.
    async def settled() -> bool:
        return not await live.rows(select(StockClaim).where(StockClaim.status == "pending"))

    await wait_until(settled, what="every claim decided")
    async with live.sessions() as session:
        for product in (await session.execute(select(Product))).scalars():
            assert product.held + product.sold <= (product.stock or 0), product.code
            held = (
                await session.execute(
                    select(func.coalesce(func.sum(StockClaim.qty), 0)).where(
                        StockClaim.product_id == product.id, StockClaim.status == "held"
                    )
                )
            ).scalar_one()
            assert held == product.held, product.code
        earrings = (await session.execute(select(Product).where(Product.code == "C"))).scalar_one()
        assert earrings.held == 6
        waitlisted = (
            await session.execute(
                select(func.count())
                .select_from(StockClaim)
                .where(StockClaim.product_id == earrings.id, StockClaim.status == "waitlisted")
            )
        ).scalar_one()
        assert waitlisted > 0
        # Every comment has its outcome in the trail.
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "tonight"))).scalar_one()
        trail = await fetch_trail(session, campaign, limit=None)
    assert len(trail) == len(played)
    assert all(row.outcome not in ("received", "pending", "") for row in trail)
    by_id = {r.comment_id: r.outcome for r in await live.rows(select(CommentLog))}
    assert {by_id[cid] for c, cid in asked} == {"product_chosen"}
    assert {by_id[cid] for c, cid in played if c.kind == "chatter"} == {"not_an_order"}

    # The chapters: each product's time on screen and the units its viewers ordered while they saw it.
    # Counted here from the script: units of each product ordered by comments written while it was on screen
    # or within the viewers' delay after it left (a bare order's product is the one its viewer saw).
    body = await (await live.client.get("/api/campaigns/tonight/pointer", headers=ADMIN)).json()
    shown = [(m, nxt) for m, nxt in zip(script.moves, script.moves[1:], strict=False) if m.code is not None]
    expected = [
        (
            m.code,
            (from_epoch_s(started + m.at_s)).isoformat(),
            (from_epoch_s(started + nxt.at_s)).isoformat(),
            sum(
                c.qty
                for c, _ in played
                if (c.saw if c.kind == "bare" else c.code) == m.code and m.at_s <= c.at_s < nxt.at_s + 15
            ),
        )
        for m, nxt in shown
    ]
    assert [(c["code"], c["start"], c["end"], c["ordered"]) for c in body["chapters"]] == expected
    assert all(units > 0 for *_, units in expected)


async def test_the_boards_form_moves_it_for_any_user_of_the_page_and_the_delay_is_the_owners(live: Stack) -> None:
    """The board without script: a CSRF-checked form post, then back to the board; refusals beside it."""
    async with live.sessions() as session, session.begin():
        await add_user(session, "assistant", PASSWORD, "agent", [PAGE_ID])
        await add_user(session, "stranger", PASSWORD, "agent", ["1000000000002"])
    await go_live(live)
    client = live.client
    assert (await sign_in(live, "stranger"))[0] == 303
    csrf = await csrf_of(live, "/inbox")
    resp = await client.post("/inbox/board/tonight/pointer", data={"csrf": csrf, "code": "A"}, allow_redirects=False)
    assert resp.status == 404  # another Page's campaign: not even there
    assert (await sign_in(live, "assistant"))[0] == 303
    csrf = await csrf_of(live, "/inbox/board/tonight")
    resp = await client.post("/inbox/board/tonight/pointer", data={"code": "A"}, allow_redirects=False)
    assert resp.status in (401, 403)  # no CSRF token: refused
    resp = await client.post("/inbox/board/tonight/pointer", data={"csrf": csrf, "code": "b"}, allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/inbox/board/tonight")
    resp = await client.post("/inbox/board/tonight/pointer", data={"csrf": csrf, "code": "E"}, allow_redirects=False)
    assert resp.status == 400 and "&#39;E&#39; is sold in campaign &#39;winter&#39;" in await resp.text()
    resp = await client.post("/inbox/board/tonight/pointer/grace", data={"csrf": csrf, "grace_s": "5"})
    assert resp.status == 403  # the delay is the owners' to set
    resp = await client.post("/inbox/board/tonight/pointer", data={"csrf": csrf, "code": ""}, allow_redirects=False)
    assert resp.status == 303
    assert await moves(live) == [("B", "assistant"), (None, "assistant")]
    assert await live.rows(select(LivePointer)) == []
    page = await (await client.get("/inbox/board/tonight/pointer?part=chapters")).text()
    assert "Silk scarf" in page and "Chapters" in page
