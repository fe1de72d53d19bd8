"""The lucky draw: reproducible from its published seed and entrants, eligibility from the database, each
winner told once, and every refusal changing nothing."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.cli.main import main as plusone
from bot.inbox.draw_rules import DrawRules, commitment, draw_winners, new_seed, order_entrants, parse_draw_form
from bot.inbox.draws import fetch_entrants
from bot.inbox.tables import LuckyDraw, LuckyDrawSeed
from bot.runtime.clock import utcnow
from bot.store.blocked_buyers import block_buyer
from bot.store.tables import CommentLog, OutboxMessage
from carts.order_tables import Order
from carts.tables import Campaign, StockClaim
from crm_bridge.members import fetch_or_create_member
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends, shopper_writes
from tests.test_bot.test_handlers.test_comments import private_replies, seed_shop
from tests.test_bot.test_inbox.test_blocked_buyers import staff
from tests.test_bot.test_inbox.test_inbox import csrf_of, sign_in

POST_OBJECT = "2000000000001"


def independent_draw(seed: str, entrants: list[str], k: int) -> list[str]:
    """The documented algorithm, written again from its description (not the code under test)."""
    ordered = sorted(set(entrants))
    key = hashlib.sha256(f"{seed}\n{chr(10).join(ordered)}".encode()).digest()
    blocks = iter(range(10**9))

    def u(m: int) -> int:
        while True:
            x = int(hashlib.sha256(key + next(blocks).to_bytes(8, "big")).hexdigest(), 16)
            if x < 2**256 - (2**256 % m):
                return x % m

    pool = ordered[:]
    for i in range(k):
        j = i + u(len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]


# --- the algorithm ------------------------------------------------------------------------------------


def test_the_draw_is_what_the_documented_algorithm_gives_whatever_order_the_list_comes_in() -> None:
    entrants = [f"3000000000{n:03d}" for n in range(57)]
    for seed in ("00" * 16, "5f3a9c0e1b2d4f6a8c0e1b2d4f6a8c0e", new_seed()):
        for k in (1, 3, 57):
            winners = draw_winners(seed, order_entrants(entrants), k)
            assert winners == independent_draw(seed, entrants, k)
            assert len(set(winners)) == k and set(winners) <= set(entrants)
            assert draw_winners(seed, order_entrants(reversed(entrants + entrants[:5])), k) == winners
    assert commitment("abc") == hashlib.sha256(b"abc").hexdigest()
    with pytest.raises(ValueError):
        draw_winners("seed", ["1"], 2)


def test_every_entrant_has_the_same_chance() -> None:
    entrants = [str(n) for n in range(1, 6)]
    firsts = {e: 0 for e in entrants}
    for n in range(2000):
        firsts[draw_winners(f"seed-{n}", entrants, 1)[0]] += 1
    assert all(300 < count < 500 for count in firsts.values()), firsts  # 400 each expected


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"winners": "0"}, "winners"),
        ({"winners": "101"}, "winners"),
        ({"winners": "two"}, "winners"),
        ({"winners": ""}, "winners"),
        ({"winners": "1", "keyword": "抽" * 41}, "keyword"),
    ],
)
def test_a_bad_form_names_its_field(form: dict[str, str], field: str) -> None:
    from bot.inbox.draw_rules import DrawRuleError

    with pytest.raises(DrawRuleError) as caught:
        parse_draw_form(form)
    assert caught.value.field == field


def test_the_verifier_runs_the_draw_again_and_checks_the_commitment(tmp_path: Path, capsys: Any) -> None:
    entrants = [f"3000000000{n:03d}" for n in range(12)]
    listing = tmp_path / "entrants.txt"
    listing.write_text("\n".join(reversed(entrants)) + "\n\n", encoding="utf-8")
    seed = new_seed()
    args = ["draw", "verify", "--seed", seed, "--entrants", str(listing), "--winners", "3"]
    assert plusone([*args, "--commitment", hashlib.sha256(seed.encode()).hexdigest()]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"commitment_ok": True, "entrants": 12, "winners": independent_draw(seed, entrants, 3)}
    assert plusone([*args, "--commitment", "0" * 64]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[0])["commitment_ok"] is False
    assert plusone([*args[:-1], "13"]) == 2
    assert "--winners" in capsys.readouterr().err
    assert plusone(["draw", "verify", "--seed", seed, "--entrants", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err


# --- against the database and Meta (the emulator) ------------------------------------------------------


async def comment(stack: Stack, psid: str, text: str, n: int, name: str = "Shopper") -> str:
    comment_id = f"{POST_OBJECT}_{n}"
    await stack.emulator.deliver_comment(PAGE_ID, POST_OBJECT, psid, text, user_name=name, comment_id=comment_id)

    async def decided() -> bool:
        rows = await stack.rows(select(CommentLog).where(CommentLog.comment_id == comment_id))
        return bool(rows) and rows[0].outcome not in ("received", "pending")

    await wait_until(decided, what=f"comment {comment_id} decided")
    return comment_id


async def campaign_of(stack: Stack) -> Campaign:
    [campaign] = await stack.rows(select(Campaign).where(Campaign.key == "live"))
    return campaign


async def entrants_for(stack: Stack, **rules: Any) -> set[str]:
    campaign = await campaign_of(stack)
    async with stack.sessions() as session:
        return set(await fetch_entrants(session, campaign, DrawRules(**rules)))


async def test_eligibility_is_read_from_the_database_and_the_rules_combine(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions, stock=50)
    keyword_only, ordered, order_no_keyword, member, blocked, paid = (f"300000000080{n}" for n in range(6))
    await comment(bot_stack, keyword_only, "抽獎！", 801)
    await comment(bot_stack, ordered, "抽獎 A+1", 802)
    await comment(bot_stack, order_no_keyword, "A+1", 803)
    await comment(bot_stack, member, "ＰＩＣＫ ME 抽獎", 804)  # full width: read as the parser reads it
    await comment(bot_stack, blocked, "抽獎", 805)
    await comment(bot_stack, paid, "抽獎 A+2", 806)
    await comment(bot_stack, PAGE_ID, "抽獎 rules: comment to enter", 807)  # the Page's own comment
    now = utcnow()
    async with bot_stack.sessions() as session, session.begin():
        await fetch_or_create_member(session, PAGE_ID, member, name="Mei", now=now)
        await block_buyer(session, PAGE_ID, blocked, None, "owner", now)
        order = Order(
            page_id=PAGE_ID,
            psid=paid,
            checkout_nonce="paid-nonce",
            status="paid",
            currency="HKD",
            subtotal=Decimal(760),
            total=Decimal(760),
            customer_name="Paid",
            phone="91234567",
            delivery_method="pickup",
            placed_at=now,
            paid_at=now,
            updated_at=now,
        )
        session.add(order)
        await session.flush()
        await session.execute(
            update(StockClaim).where(StockClaim.psid == paid).values(status="sold", order_id=order.id)
        )

    everyone = {keyword_only, ordered, order_no_keyword, member, paid}  # blocked buyers and the Page left out
    assert await entrants_for(bot_stack) == everyone
    assert await entrants_for(bot_stack, exclude_blocked=False) == everyone | {blocked}
    assert await entrants_for(bot_stack, exclude_page=False) == everyone | {PAGE_ID}
    assert await entrants_for(bot_stack, keyword="抽獎") == everyone - {order_no_keyword}
    assert await entrants_for(bot_stack, keyword="pick me") == {member}
    assert await entrants_for(bot_stack, ordered=True) == {ordered, order_no_keyword, paid}
    assert await entrants_for(bot_stack, keyword="抽獎", ordered=True) == {ordered, paid}
    assert await entrants_for(bot_stack, paid=True) == {paid}
    assert await entrants_for(bot_stack, member=True) == {member}
    assert await entrants_for(bot_stack, member=True, ordered=True) == set()
    assert await entrants_for(bot_stack, keyword="抽獎", exclude_blocked=False, exclude_page=False) == (
        everyone - {order_no_keyword}
    ) | {blocked, PAGE_ID}


async def announce(stack: Stack, **form: str) -> Any:
    csrf = await csrf_of(stack, "/inbox/board/live")
    data = {"csrf": csrf, "exclude_blocked": "1", "exclude_page": "1", "exclude_winners": "1", **form}
    return await stack.client.post("/inbox/board/live/draw/announce", data=data, allow_redirects=False)


async def draw_now(stack: Stack) -> Any:
    page = await (await stack.client.get("/inbox/board/live")).text()
    found = re.search(r'name="commitment" value="([0-9a-f]{64})"', page)
    csrf = await csrf_of(stack, "/inbox/board/live")
    shown = found.group(1) if found else ""
    return await stack.client.post(
        "/inbox/board/live/draw", data={"csrf": csrf, "commitment": shown}, allow_redirects=False
    )


async def test_winners_each_get_one_private_reply_and_the_draw_can_be_checked(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await staff(bot_stack)
    players = {f"300000000081{n}": n for n in range(4)}
    comments = {}
    for psid, n in players.items():
        comments[psid] = await comment(bot_stack, psid, "抽獎" if n % 2 else "lucky me", 810 + n, name=f"Fan {n}")
    await sign_in(bot_stack, "owner")
    assert (await announce(bot_stack, winners="2")).status == 303
    [announced] = await bot_stack.rows(select(LuckyDrawSeed))
    board = await (await bot_stack.client.get("/inbox/board/live")).text()
    assert announced.commitment in board and announced.seed not in board  # the seed stays secret until the draw
    assert "4 commenters meet the rules now." in board

    response = await draw_now(bot_stack)
    assert response.status == 303
    [made] = await bot_stack.rows(select(LuckyDraw))
    assert response.headers["Location"] == f"/inbox/board/live/draws/{made.id}"
    assert (made.seed, made.commitment) == (announced.seed, announced.commitment)
    assert hashlib.sha256(made.seed.encode()).hexdigest() == made.commitment
    entrants = json.loads(made.entrants)
    assert entrants == sorted(players)
    winners = [w["psid"] for w in json.loads(made.winners)]
    assert winners == independent_draw(made.seed, list(players), 2)
    assert await bot_stack.rows(select(LuckyDrawSeed)) == []  # the next draw gets a new seed

    async def draw_replies() -> list[dict[str, Any]]:
        return [
            c for c in await private_replies(bot_stack) if c["body"]["recipient"]["comment_id"] in comments.values()
        ]

    async def told() -> bool:
        return len(await draw_replies()) >= 2

    await wait_until(told, what="the winners' private replies")
    replies = await draw_replies()
    assert sorted(c["body"]["recipient"]["comment_id"] for c in replies) == sorted(comments[w] for w in winners)
    for call in replies:
        psid = next(p for p, c in comments.items() if c == call["body"]["recipient"]["comment_id"])
        text = call["body"]["message"]["text"]
        if players[psid] % 2:  # wrote in Chinese: told in Chinese
            assert text.startswith("🎉 恭喜 Fan！")
        else:
            assert text.startswith("🎉 Congratulations Fan!")

    page = await (await bot_stack.client.get(f"/inbox/board/live/draws/{made.id}")).text()
    assert made.seed in page and made.commitment in page
    assert all(psid in page for psid in players)
    listing = await (await bot_stack.client.get(f"/inbox/board/live/draws/{made.id}/entrants.txt")).text()
    assert listing.split() == entrants

    # A second click on the same board: refused, nothing more drawn or sent.
    again = await bot_stack.client.post(
        "/inbox/board/live/draw",
        data={"csrf": await csrf_of(bot_stack, "/inbox/board/live"), "commitment": made.commitment},
        allow_redirects=False,
    )
    assert again.status == 409
    assert len(await bot_stack.rows(select(LuckyDraw))) == 1
    assert len([r for r in await bot_stack.rows(select(OutboxMessage)) if r.comment_id in comments.values()]) == 2
    assert await bot_stack.rows(select(OutboxMessage).where(OutboxMessage.idempotency_key.like("draw:%"))) == []

    # A second round: the first round's winners are left out, so the other two win and are told.
    assert await entrants_for(bot_stack, exclude_winners=False) == set(players)
    assert (await announce(bot_stack, winners="2")).status == 303
    assert (await draw_now(bot_stack)).status == 303
    second = (await bot_stack.rows(select(LuckyDraw).order_by(LuckyDraw.id.desc())))[0]
    others = sorted(set(players) - set(winners))
    assert json.loads(second.entrants) == others
    assert sorted(w["psid"] for w in json.loads(second.winners)) == others
    assert {w["told"] for w in json.loads(second.winners)} == {"private_reply"}

    async def all_told() -> bool:
        return len(await draw_replies()) == 4

    await wait_until(all_told, what="the second round's private replies")


async def nothing_drawn(stack: Stack) -> None:
    assert await stack.rows(select(LuckyDraw)) == []
    assert [r for r in await stack.rows(select(OutboxMessage)) if "Congratulations" in r.payload] == []


async def test_a_draw_nobody_can_win_is_refused_and_changes_nothing(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await staff(bot_stack)
    await comment(bot_stack, "3000000000821", "hello", 821)
    await comment(bot_stack, "3000000000822", "抽獎", 822)
    await sign_in(bot_stack, "owner")

    assert (await announce(bot_stack, winners="1", keyword="SALE", member="1")).status == 303
    [first] = await bot_stack.rows(select(LuckyDrawSeed))
    again = await announce(bot_stack, winners="5")  # a second announcement (another tab): refused
    assert again.status == 409 and "already announced" in await again.text()
    [kept] = await bot_stack.rows(select(LuckyDrawSeed))
    assert (kept.seed, kept.rules) == (first.seed, first.rules)
    response = await draw_now(bot_stack)
    page = await response.text()
    assert response.status == 409 and "No commenter meets the draw&#39;s rules yet" in page
    await nothing_drawn(bot_stack)
    assert len(await bot_stack.rows(select(LuckyDrawSeed))) == 1  # still announced, as it was

    assert (
        await bot_stack.client.post(
            "/inbox/board/live/draw/cancel", data={"csrf": await csrf_of(bot_stack, "/inbox/board/live")}
        )
    ).status == 200
    assert await bot_stack.rows(select(LuckyDrawSeed)) == []
    assert (await announce(bot_stack, winners="3")).status == 303
    response = await draw_now(bot_stack)
    assert response.status == 409 and "3 winners asked for, but only 2 commenters" in await response.text()
    await nothing_drawn(bot_stack)


async def test_bad_forms_unknown_lives_and_agents_are_refused(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await staff(bot_stack)
    await sign_in(bot_stack, "owner")
    response = await announce(bot_stack, winners="0", keyword="抽獎")
    page = await response.text()
    assert response.status == 400 and 'id="draw-field-error"' in page and "from 1 to 100" in page
    assert 'value="抽獎"' in page  # what was typed stays
    assert await bot_stack.rows(select(LuckyDrawSeed)) == []
    csrf = await csrf_of(bot_stack, "/inbox/board/live")
    for path in ("/inbox/board/no-such-live/draw/announce", "/inbox/board/no-such-live/draw"):
        assert (await bot_stack.client.post(path, data={"csrf": csrf, "winners": "1"})).status == 404
    assert (await bot_stack.client.get("/inbox/board/live/draws/999")).status == 404

    await sign_in(bot_stack, "agent")
    board = await (await bot_stack.client.get("/inbox/board/live")).text()
    assert "Only an owner can run a lucky draw." in board
    assert (await announce(bot_stack, winners="1")).status == 403
    assert await bot_stack.rows(select(LuckyDrawSeed)) == []
    await sign_in(bot_stack, "other")  # another Page's user: the live is not theirs, it is not found
    csrf = await csrf_of(bot_stack, "/inbox/blocked")
    response = await bot_stack.client.post("/inbox/board/live/draw/announce", data={"csrf": csrf, "winners": "1"})
    assert response.status == 404
    assert await bot_stack.rows(select(LuckyDrawSeed)) == []


async def test_a_winner_whose_window_is_open_is_told_in_messenger(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await staff(bot_stack)
    psid = "3000000000831"
    await shopper_writes(bot_stack, psid, "hi")
    await comment(bot_stack, psid, "抽獎", 831, name="Amy Chan")
    await sign_in(bot_stack, "owner")
    assert (await announce(bot_stack, winners="1")).status == 303
    assert (await draw_now(bot_stack)).status == 303

    async def messaged() -> bool:
        return any(
            c["body"]["recipient"].get("id") == psid and "恭喜 Amy" in (c["body"]["message"].get("text") or "")
            for c in await sends(bot_stack)
        )

    await wait_until(messaged, what="the winner's message")
    assert [c for c in await private_replies(bot_stack) if c["body"]["recipient"]["comment_id"].endswith("_831")] == []
    [made] = await bot_stack.rows(select(LuckyDraw))
    assert json.loads(made.winners)[0]["told"] == "message"
