"""The console in the reader's language (bot.web.rendering, bot.replies.statuses): the language switcher and
the sign-in page's choice, `/` and the styled error pages, the messages not delivered with their Retry,
the live board's words and times, and the zh-Hant page walk over every GET page of the app's router.
"""

from __future__ import annotations

import dataclasses
import html as html_module
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from babel.messages.pofile import read_po
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox.auth import add_user, invite_user
from bot.inbox.draw_rules import DrawRules
from bot.inbox.tables import InboxUser, LuckyDraw
from bot.inbox.undelivered import retry_can_work
from bot.replies.i18n import LOCALE_DIR
from bot.replies.statuses import RAW_WORDS
from bot.runtime.clock import utcnow
from bot.store.tables import CommentLog, Conversation, FaqRuleRow, Message, OutboxMessage
from bot.web.error_pages import accept_languages, styled_errors
from carts.coupon_tables import Coupon
from carts.tables import Campaign
from crm_bridge.program import apply_program, fetch_program
from crm_bridge.segment_rules import parse_segment_definition
from crm_bridge.segments import save_segment
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_handlers.test_comments import POST
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_inbox.test_inbox_orders import shop

PSID = "3000000000961"
WALKER = "陳美玲"  # the owner who walks the pages


async def owner_and_agent(stack: Stack) -> None:
    async with stack.sessions() as session, session.begin():
        await add_user(session, "boss", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "helper", PASSWORD, "agent", [PAGE_ID])


async def locale_of(stack: Stack, name: str) -> str | None:
    return (await stack.rows(select(InboxUser.locale).where(InboxUser.name == name)))[0]


# --- language -----------------------------------------------------------------------------------------


async def test_the_switcher_saves_the_users_language_and_every_page_follows_it(bot_stack: Stack) -> None:
    stack = bot_stack
    await owner_and_agent(stack)
    await sign_in(stack, "boss")
    page = await (await stack.client.get("/inbox/orders")).text()
    assert '<html lang="en">' in page and ">Orders</a>" in page
    csrf = await csrf_of(stack, "/inbox/orders")
    form = {"csrf": csrf, "locale": "zh_Hant", "next": "/inbox/orders?status=paid&lang=en"}
    response = await stack.client.post("/inbox/language", data=form, allow_redirects=False)
    # Back to the page, without its ?lang= (which would outvote the choice just saved).
    assert response.status == 303 and response.headers["Location"] == "/inbox/orders?status=paid"
    assert await locale_of(stack, "boss") == "zh_Hant"
    page = await (await stack.client.get("/inbox/board")).text()
    assert '<html lang="zh-Hant">' in page and "直播看板" in page and "Live board" not in page
    for bad in ({"csrf": csrf, "locale": "fr"}, {"csrf": csrf}, {"csrf": csrf, "locale": "zh_Hans"}):
        response = await stack.client.post("/inbox/language", data=bad, allow_redirects=False)
        assert response.status == 400 and "locale: one of en, zh_Hant" in await response.text()
    no_csrf = await stack.client.post("/inbox/language", data={"locale": "en"}, allow_redirects=False)
    assert no_csrf.status == 403
    assert await locale_of(stack, "boss") == "zh_Hant"  # nothing changed by the refused posts


async def test_the_sign_in_page_offers_both_languages_and_keeps_the_choice(bot_stack: Stack) -> None:
    stack = bot_stack
    await owner_and_agent(stack)
    english = await (await stack.client.get("/inbox/login")).text()
    assert '<html lang="en">' in english and 'href="/inbox/login?lang=zh_Hant' in english
    chinese = await (await stack.client.get("/inbox/login?lang=zh-HK")).text()
    assert '<html lang="zh-Hant">' in chinese and "登入收件匣" in chinese and 'href="/inbox/login?lang=en' in chinese
    csrf = re.search(r'name="csrf" value="([^"]+)"', chinese).group(1)  # type: ignore[union-attr]
    wrong = {"csrf": csrf, "name": "boss", "password": "wrong", "lang": "zh_Hant"}
    response = await stack.client.post("/inbox/login?lang=zh_Hant", data=wrong)
    text = await response.text()
    assert response.status == 401 and "名稱或密碼錯誤。" in text and 'value="boss"' in text  # the name kept
    right = {**wrong, "password": PASSWORD}
    response = await stack.client.post("/inbox/login?lang=zh_Hant", data=right, allow_redirects=False)
    assert response.status == 303
    assert await locale_of(stack, "boss") == "zh_Hant"


# --- / and the error pages ------------------------------------------------------------------------------


async def test_the_start_page_explains_the_server_to_a_visitor_and_sends_a_user_to_the_inbox(bot_stack: Stack) -> None:
    stack = bot_stack
    await owner_and_agent(stack)
    response = await stack.client.get("/")
    text = await response.text()
    assert response.status == 200 and response.content_type == "text/html"
    assert '<html lang="en">' in text and "Facebook" in text and 'href="/inbox/login?lang=en"' in text
    chinese = await (await stack.client.get("/", headers={"Accept-Language": "fr;q=0.9, zh-TW;q=0.8, en;q=0.5"})).text()
    assert '<html lang="zh-Hant">' in chinese and "登入收件匣" in chinese
    chosen = await (await stack.client.get("/?lang=en", headers={"Accept-Language": "zh-HK"})).text()
    assert '<html lang="en">' in chosen
    await sign_in(stack, "boss")
    response = await stack.client.get("/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/inbox"
    await stack.client.post("/inbox/logout", data={"csrf": await csrf_of(stack, "/inbox/orders")})
    assert (await stack.client.get("/", allow_redirects=False)).status == 200  # signed out: the page again


async def test_pages_get_styled_error_pages_and_the_apis_keep_their_json(bot_stack: Stack) -> None:
    stack = bot_stack
    await owner_and_agent(stack)
    response = await stack.client.get("/no/such/page", headers={"Accept-Language": "zh-HK"})
    text = await response.text()
    assert response.status == 404 and response.content_type == "text/html"
    assert '<html lang="zh-Hant">' in text and "找不到頁面" in text and 'href="/"' in text
    await sign_in(stack, "helper")
    response = await stack.client.get("/inbox/not-delivered")
    text = await response.text()
    assert response.status == 403 and "Not allowed" in text and 'href="/inbox"' in text
    response = await stack.client.get("/inbox/c/999999")
    assert response.status == 404 and "Page not found" in await response.text()
    api = await stack.client.get("/api/no-such-thing")
    assert api.status == 404 and api.content_type == "application/json" and "error" in await api.json()
    wrong_method = await stack.client.delete("/api/outbox")
    assert wrong_method.status == 405 and "error" in await wrong_method.json()


async def test_a_pages_failure_is_a_styled_500_without_a_stack_trace() -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app = web.Application(middlewares=[styled_errors])
    app.router.add_get("/inbox/broken", broken)
    app.router.add_get("/api/broken", broken)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/inbox/broken", headers={"Accept-Language": "zh-Hant"})
        text = await response.text()
        assert response.status == 500 and "出現錯誤" in text and 'href="/inbox"' in text
        assert "secret internals" not in text and "Traceback" not in text
        assert (await client.get("/api/broken")).content_type != "text/html"  # an API's failure is not a page


def test_accept_language_is_read_by_weight() -> None:
    assert accept_languages("en;q=0.3, zh-HK, fr;q=0.5, *;q=0.1, de;q=0") == ["zh-HK", "fr", "en"]
    assert accept_languages(None) == []


# --- messages not delivered --------------------------------------------------------------------------


async def outbox_row(stack: Stack, key: str, status: str, reason: str, created_at: datetime, text: str) -> int:
    async with stack.sessions() as session, session.begin():
        row = OutboxMessage(
            idempotency_key=key,
            page_id=PAGE_ID,
            kind="message",
            psid=PSID,
            author="agent",
            payload=json.dumps({"text": text}),
            status=status,
            attempts=1,
            next_attempt_at=created_at,
            error_class=reason,
            error_code=551 if reason == "unavailable" else None,
            error_message="(#551) This person isn't available right now." if status == "failed" else "window closed",
            created_at=created_at,
        )
        session.add(row)
        await session.flush()
        conversation = (await session.execute(select(Conversation).where(Conversation.psid == PSID))).scalar_one()
        session.add(
            Message(
                conversation_id=conversation.id,  # type: ignore[arg-type]
                direction="out",
                author="agent",
                kind="text",
                text=text,
                sent_at=created_at,
                status=status,
                error=f"Meta said {reason}",
                outbox_id=row.id,
                created_at=created_at,
            )
        )
        assert row.id is not None
        return row.id


async def test_messages_not_delivered_say_why_in_words_and_retry_only_where_it_can_work(bot_stack: Stack) -> None:
    stack = bot_stack
    await owner_and_agent(stack)
    await shopper_writes(stack, PSID, "hello?")  # the window is open now
    two_hours_ago = utcnow() - timedelta(hours=2)
    late = await outbox_row(stack, "t:late", "refused", "outside_window", two_hours_ago, "Your parcel left today")
    gone = await outbox_row(stack, "t:gone", "failed", "unavailable", two_hours_ago, "Are you there?")
    await sign_in(stack, "boss")
    page = await (await stack.client.get("/inbox/not-delivered")).text()
    assert "Messages not delivered" in page and "Your parcel left today" in page
    assert "Outside the 24-hour window" in page and "The shopper cannot receive messages from the Page" in page
    assert f'action="/inbox/not-delivered/{late}/retry"' in page
    assert f'action="/inbox/not-delivered/{gone}/retry"' not in page  # Meta would refuse it again
    csrf = await csrf_of(stack, "/inbox/not-delivered")
    refused = await stack.client.post(f"/inbox/not-delivered/{gone}/retry", data={"csrf": csrf})
    assert refused.status == 409 and "cannot work" in await refused.text()
    assert (await stack.outbox(gone)).status == "failed"
    for bad, status in (("abc", 400), ("99999999", 404)):
        response = await stack.client.post(f"/inbox/not-delivered/{bad}/retry", data={"csrf": csrf})
        assert response.status == status, bad
    response = await stack.client.post(f"/inbox/not-delivered/{late}/retry", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    sent = await stack.settled(late, "sent")  # the same row, its idempotency key unchanged
    assert sent.idempotency_key == "t:late" and sent.error_class is None
    again = await stack.client.post(f"/inbox/not-delivered/{late}/retry", data={"csrf": csrf})
    assert again.status == 404  # delivered now: nothing to retry, nothing sent twice
    shown = await stack.rows(select(Message.status).where(Message.outbox_id == late))
    assert shown[0] != "refused"
    # Chinese, and for owners only.
    async with stack.sessions() as session, session.begin():
        await session.execute(update(InboxUser).where(InboxUser.name == "boss").values(locale="zh_Hant"))
    page = await (await stack.client.get("/inbox/not-delivered")).text()
    assert "未送達的訊息" in page and "顧客目前無法接收此專頁的訊息" in page
    stack.client.session.cookie_jar.clear()
    await sign_in(stack, "helper")
    assert (await stack.client.get("/inbox/not-delivered")).status == 403
    csrf = await csrf_of(stack, "/inbox/orders")
    assert (await stack.client.post(f"/inbox/not-delivered/{gone}/retry", data={"csrf": csrf})).status == 403


def test_retry_can_work_only_for_passing_faults_the_pages_state_or_a_window_opened_since() -> None:
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    queued = now - timedelta(hours=3)
    assert retry_can_work("message", "retry_later", queued, None, now)
    assert retry_can_work("message", "bad_token", queued, None, now)
    assert not retry_can_work("message", "unavailable", queued, now, now)
    assert not retry_can_work("message", "invalid_request", queued, now, now)
    assert not retry_can_work("private_reply", "private_reply_used", queued, now, now)
    assert not retry_can_work("message", "outside_window", queued, None, now)  # never wrote
    assert not retry_can_work("message", "outside_window", queued, queued - timedelta(hours=1), now)  # not since
    assert retry_can_work("message", "outside_window", queued, now - timedelta(minutes=5), now)
    assert not retry_can_work("message", "outside_window", queued, now - timedelta(hours=25), now - timedelta(hours=-1))


# --- the live board ------------------------------------------------------------------------------------


async def test_the_live_boards_trail_is_in_words_and_its_minutes_in_the_shops_zone(bot_stack: Stack) -> None:
    stack = bot_stack
    await shop(stack)  # Hong Kong time, the "live" campaign on POST, an owner
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        session.add(
            CommentLog(
                event_key="t:needs",
                page_id=PAGE_ID,
                channel="facebook",
                post_id=POST,
                comment_id=f"{POST}_c1",
                author_id="3000000000971",
                author_name="Lam Mei",
                verb="add",
                message="B+1",
                outcome="needs_variant",
                detail=json.dumps({"items": [{"code": "B", "qty": 1, "outcome": "needs_variant"}]}),
                reply_status="queued",
                received_at=now,
            )
        )
    await sign_in(stack, "owner")
    page = await (await stack.client.get("/inbox/board/live")).text()
    assert "Waiting for an option (size, colour…)" in page and "needs_variant<" not in page
    assert ">needs_variant" not in page and "Waiting to be sent" in page
    hong_kong = (now + timedelta(hours=8)).strftime("%H:%M")
    utc_minute = now.strftime("%H:%M")
    assert f">{hong_kong}</span>" in page and f">{utc_minute}</span>" not in page
    async with stack.sessions() as session, session.begin():
        await session.execute(update(InboxUser).where(InboxUser.name == "owner").values(locale="zh_Hant"))
    page = await (await stack.client.get("/inbox/board/live")).text()
    assert "等待選擇款式（尺碼、顏色…）" in page and "留言紀錄" in page


# --- the zh-Hant page walk -------------------------------------------------------------------------------

# Pages owned by another part of issue 19 whose translation arrives with its merge (inbox-daily: the chat
# list and the conversation). A route listed here that walks clean fails the test: take it off the list.
PENDING_ELSEWHERE: frozenset[str] = frozenset()  # pages another part still had to translate: none left
# A stream, files, and the Demo mailbox: it exists only in demo mode (test_email_browser reads it in Chinese).
SKIPPED = frozenset({"/inbox/events", "/inbox/static/{name}", "/inbox/mailbox", r"/inbox/mailbox/{id}.html"})
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})


class _VisibleText(HTMLParser):
    """The text a reader sees, leaving out what is marked English on purpose (`lang="en"`: the language
    switcher's "English", an alert given in both languages)."""

    def __init__(self) -> None:
        super().__init__()
        self.english_depth = 0
        self.stack: list[bool] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        english = any(k == "lang" and (v or "").startswith("en") for k, v in attrs)
        self.stack.append(english)
        self.english_depth += english

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not self.stack:
            return
        self.english_depth -= self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not self.english_depth:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def english_texts() -> list[re.Pattern[str]]:
    """A pattern per English msgid of the catalog that has a different Chinese text: its words, whole."""
    with (LOCALE_DIR / "zh_Hant" / "LC_MESSAGES" / "messages.po").open("rb") as file:
        catalog = read_po(file, locale="zh_Hant")
    translations = [m.string for m in catalog if m.id and isinstance(m.string, str) and m.string]
    patterns = []
    for message in catalog:
        if not message.id or not isinstance(message.id, str) or message.string in ("", message.id):
            continue
        # The longest literal run between parameters ({name}, %(name)s), if it is words enough to tell.
        run = max(re.split(r"\{\w+\}|%\(\w+\)s|\{\{\s*\w+\s*\}\}", message.id), key=len).strip(" :·,.")
        if len(run) < 3 or not re.search(r"[A-Za-z]{2}", run) or any(run in text for text in translations):
            continue
        patterns.append(re.compile(rf"(?<![\w-]){re.escape(run)}(?![\w-])"))
    return patterns


def raw_words() -> re.Pattern[str]:
    return re.compile(rf"(?<![\w/]){'|'.join(sorted(map(re.escape, RAW_WORDS), key=len, reverse=True))}(?![\w/])")


async def walk_seed(stack: Stack) -> dict[str, list[str]]:
    """A shop with a conversation, orders, a campaign with a comment, a message not delivered; the owner
    reads Chinese. The values for each path parameter of the router's GET pages."""
    numbers = await shop(stack)
    # Meta's profile gives the shopper's name (else the emulator's stand-in, "Shopper 0961", would be data
    # in English on the pages); wait for it, so no page shows the conversation before it is named.
    await stack.emulator.describe_person(PAGE_ID, PSID, "大文", "陳")
    await shopper_writes(stack, PSID, "想問 A 仲有冇貨？")

    async def named() -> bool:
        names = await stack.rows(select(Conversation.name).where(Conversation.psid == PSID))
        return bool(names) and "大文" in (names[0] or "")

    await wait_until(named, what="the shopper's name from Meta's profile")
    await outbox_row(stack, "t:walk", "refused", "outside_window", utcnow() - timedelta(hours=30), "你的包裹已寄出")
    async with stack.sessions() as session, session.begin():
        # Names and keys as a Hong Kong shop writes them: an English name or key is data, not a text left
        # untranslated, and would only blur what the walk looks for.
        await session.execute(update(InboxUser).where(InboxUser.name == "owner").values(locale="zh_Hant", name=WALKER))
        await session.execute(update(Campaign).where(Campaign.key == "live").values(key="xmas-2026", title="聖誕直播"))
        session.add(
            CommentLog(
                event_key="t:walk-comment",
                page_id=PAGE_ID,
                channel="facebook",
                post_id=POST,
                comment_id=f"{POST}_w1",
                author_id=PSID,
                author_name="陳大文",
                verb="add",
                message="A+1",
                outcome="over_limit",
                detail=json.dumps({"items": [{"code": "A", "qty": 1, "outcome": "over_limit"}]}),
                reply_status="refused",
                received_at=utcnow(),
            )
        )
    conversation = (await stack.rows(select(Conversation.id).where(Conversation.psid == PSID)))[0]
    async with stack.sessions() as session, session.begin():
        session.add(
            FaqRuleRow(
                page_id=PAGE_ID,
                key="營業時間",
                keywords=json.dumps(["幾點開", "營業時間"], ensure_ascii=False),
                reply=json.dumps({"text": "我哋每日 11:00 至 20:00 營業。"}, ensure_ascii=False),
                updated_at=utcnow(),
            )
        )
        _user, token = await invite_user(session, "阿明", "agent", [PAGE_ID], "zh_Hant", utcnow())
        # The programme's tiers as the shop names them (the default's "Member" is data in English).
        program = await fetch_program(session)
        tiers = tuple(dataclasses.replace(tier, name="會員") for tier in program.tiers)
        await apply_program(session, dataclasses.replace(program, tiers=tiers), utcnow())
        vip = parse_segment_definition({"match": [{"field": "napl", "op": "in", "value": ["active"]}]})
        segment = await save_segment(session, "常客", vip, utcnow())
        run_id = await walk_journeys(session)
    walker = (await stack.rows(select(InboxUser.id).where(InboxUser.name == WALKER)))[0]
    draw = await lucky_draw(stack, "xmas-2026")
    offer = await walk_offer(stack)
    coupon = (await stack.rows(select(Coupon.id).order_by(Coupon.id)))[0]  # the offer's vouchers' coupon
    return {
        "id": [str(conversation)],
        "key": ["xmas-2026"],
        "number": [numbers["chan"]],
        "part": ["thread", "panel"],
        # Where a route's parameter names something else than its name says elsewhere: by route.
        "/inbox/faq/{key}:key": ["營業時間"],
        "/inbox/users/{id}:id": [str(walker)],
        "/inbox/password/{token}:token": [token],
        "/inbox/catalog/p/{code}:code": ["A"],
        "/inbox/board/{key}/draws/{id}:id": [str(draw)],
        "/inbox/board/{key}/draws/{id}/entrants.txt:id": [str(draw)],
        "/inbox/offers/{offer_id}:offer_id": [str(offer)],
        "/inbox/segments/{id}:id": [str(segment.id)],
        "coupon_id": [str(coupon)],
        "/inbox/journeys/{key}:key": ["welcome"],
        "/inbox/journeys/{key}/runs:key": ["welcome"],
        "/inbox/journeys/runs/{id}:id": [str(run_id)],
    }


async def walk_journeys(session: AsyncSession) -> int:
    """The playbook's journeys, and a run of the welcome for the walk's shopper with its history; the run's id."""
    from bot.inbox.views.journeys import add_playbook
    from crm_bridge.journey_rules import EventKind
    from crm_bridge.journey_tables import JourneyMessage, JourneyRun, JourneyVersion
    from crm_bridge.journeys import add_event, fetch_journey, save_journey
    from crm_bridge.members import fetch_or_create_member

    now = utcnow()
    await add_playbook(session, now, None, WALKER)
    # The welcome as a shop that writes only Chinese has it: the English box's text would be data in English.
    journey = await fetch_journey(session, "welcome")
    version = await session.get(JourneyVersion, journey.current_version_id)
    definition = json.loads(version.definition)
    definition["steps"][0]["text"]["en"] = ""
    await save_journey(session, "welcome", journey.name, definition, approved_templates=set(), by=WALKER, now=now)
    member, _ = await fetch_or_create_member(session, PAGE_ID, PSID, now=now)
    run = JourneyRun(
        journey_id=journey.id,
        version_id=journey.current_version_id,
        member_id=member.id,
        trigger_key="joined",
        status="done",
        started_at=now,
        ended_at=now,
        end_reason="end",
    )
    session.add(run)
    await session.flush()
    session.add(
        JourneyMessage(
            run_id=run.id,
            step_id="welcome",
            journey_id=journey.id,
            member_id=member.id,
            status="sent",
            channel="messenger",
            locale="zh_Hant",
            text="歡迎加入！",
            created_at=now,
            sent_at=now,
        )
    )
    await add_event(session, run.id, EventKind.ENTERED, now, code="joined")
    await add_event(session, run.id, EventKind.SENT, now, step_id="welcome", channel="messenger")
    return run.id


async def lucky_draw(stack: Stack, key: str) -> int:
    """A lucky draw made on the campaign (its record page is walked too); its id."""
    [campaign] = await stack.rows(select(Campaign).where(Campaign.key == key))
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        draw = LuckyDraw(
            campaign_id=campaign.id,
            page_id=PAGE_ID,
            seed="ab" * 16,
            commitment="cd" * 32,
            rules=DrawRules(winners=1, keyword="抽獎").to_json(),
            entrants=json.dumps([PSID]),
            winners=json.dumps([{"psid": PSID, "name": "陳大文", "comment_id": None, "told": "none"}]),
            announced_at=now,
            drawn_by=WALKER,
            drawn_at=now,
        )
        session.add(draw)
        await session.flush()
        return draw.id or 0


async def walk_offer(stack: Stack) -> int:
    """A first-N offer on the campaign, its keyword as a Hong Kong shop writes it (its page is walked)."""
    from carts.coupon_rules import Discount, DiscountKind, OfferSpec
    from carts.coupons import create_offer

    async with stack.sessions() as session, session.begin():
        campaign = (await session.execute(select(Campaign).where(Campaign.key == "xmas-2026"))).scalar_one()
        spec = OfferSpec(("優惠",), 20, Discount(DiscountKind.PERCENT, Decimal(10)), None, None)
        return (await create_offer(session, campaign, spec, utcnow())).id


def page_paths(app: web.Application, values: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(route, path) for every GET route of the app under /inbox and `/`, its parameters filled."""
    found = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if route.method != "GET" or canonical in SKIPPED or not (canonical == "/" or canonical.startswith("/inbox")):
            continue
        paths = [canonical]
        for name in re.findall(r"\{(\w+)\}", canonical):
            given = values.get(f"{canonical}:{name}") or values.get(name)
            assert given, f"the walk has no value for {{{name}}} of {canonical}: add one to walk_seed"
            paths = [p.replace(f"{{{name}}}", v) for p in paths for v in given]
        found += [(canonical, path) for path in paths]
    return found


async def test_every_page_in_chinese_has_no_english_left_and_no_raw_status(bot_stack: Stack) -> None:
    stack = bot_stack
    values = await walk_seed(stack)
    await sign_in(stack, WALKER)
    english, raw = english_texts(), raw_words()
    problems: dict[str, list[str]] = {}
    walked = 0
    for route, path in page_paths(stack.client.app, values):
        # As a Hong Kong browser asks: the sign-in page, before it knows the user, goes by it.
        response = await stack.client.get(path, allow_redirects=False, headers={"Accept-Language": "zh-HK,zh;q=0.9"})
        if route == "/" and response.status == 303:
            continue  # a signed-in user goes on to the inbox, walked on its own
        assert response.status == 200, (path, response.status)
        if response.content_type != "text/html":
            continue  # an export
        walked += 1
        html = await response.text()
        if html.lstrip().lower().startswith("<!doctype html>"):
            assert '<html lang="zh-Hant">' in html, path
        text = visible_text(html)
        left = sorted({m.group(0) for pattern in english for m in pattern.finditer(text)})
        left += sorted({m.group(0) for m in raw.finditer(text)})
        if left:
            problems.setdefault(route, []).append(f"{path}: {left}")
    assert walked >= 12
    ours = {route: found for route, found in problems.items() if route not in PENDING_ELSEWHERE}
    assert not ours, "English or raw words on Chinese pages:\n" + "\n".join(
        line for found in ours.values() for line in found
    )
    clean = sorted(PENDING_ELSEWHERE - set(problems))
    assert not clean, f"translated now: take {clean} off PENDING_ELSEWHERE"


async def test_the_start_and_error_pages_in_chinese_have_no_english_left(bot_stack: Stack) -> None:
    stack = bot_stack
    english = english_texts()
    for path, status in (("/?lang=zh_Hant", 200), ("/nothing-here?lang=zh_Hant", 404), ("/inbox/login?lang=zh", 200)):
        response = await stack.client.get(path)
        html = await response.text()
        assert response.status == status and '<html lang="zh-Hant">' in html, path
        text = visible_text(html)
        assert not [m.group(0) for pattern in english for m in pattern.finditer(text)], (path, text)


@pytest.mark.parametrize("amount", [Decimal("1280"), Decimal("450.5")])
def test_money_in_the_readers_locale(amount: Decimal) -> None:
    from bot.web.rendering import build_environment

    env = build_environment({"t": "{{ a|money('HKD') }} {{ a|money('TWD') }}"})
    english = env.get_template("t").render(locale="en", a=amount)
    chinese = env.get_template("t").render(locale="zh_Hant", a=amount)
    whole = amount == amount.to_integral_value()
    # Whole amounts without cents; Taiwan's dollar is written without cents, as Taiwanese shops write it
    # (and as the bot's replies show it).
    assert english == ("HK$1,280 NT$1,280" if whole else "HK$450.50 NT$451")
    assert chinese == english  # Hong Kong's way in Chinese too: NT$ for Taiwan's dollar, not a bare $


async def test_exports_are_in_the_readers_language_with_the_shops_times(bot_stack: Stack) -> None:
    stack = bot_stack
    n = await shop(stack)
    async with stack.sessions() as session, session.begin():
        await session.execute(update(InboxUser).where(InboxUser.name == "owner").values(locale="zh_Hant"))
    await sign_in(stack, "owner")
    text = (await (await stack.client.get("/inbox/orders/export.csv")).read()).decode("utf-8-sig")
    header, *rows = text.splitlines()
    assert header.startswith('"訂單","狀態","下單時間","付款時間","買家"')
    chan = next(row for row in rows if n["chan"] in row)
    assert '"已付款"' in chan and '"送貨"' in chan and '"2026-12-03 23:30"' in chan
    assert "pending_payment" not in text and "等待付款" in text
    english = (await (await stack.client.get("/inbox/orders/export.csv?lang=en")).read()).decode("utf-8-sig")
    assert english.splitlines()[0].startswith('"Order","Status","Placed","Paid at","Buyer"')


async def test_a_reply_joined_into_one_already_sent_is_not_waiting_for_ever_on_the_board(bot_stack: Stack) -> None:
    stack = bot_stack
    await shop(stack)
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        reply = OutboxMessage(
            idempotency_key=f"private_reply:{POST}_first",
            page_id=PAGE_ID,
            kind="private_reply",
            comment_id=f"{POST}_first",
            payload=json.dumps({"text": "✅ A ×2"}),
            status="sent",
            next_attempt_at=now,
            created_at=now,
        )
        session.add(reply)
        await session.flush()
        # The second comment's reply was joined into the first one's (one message): the log still says
        # queued, as it did when the reply was queued; the reply's own row says what became of it.
        session.add(
            CommentLog(
                event_key="t:joined",
                page_id=PAGE_ID,
                channel="facebook",
                post_id=POST,
                comment_id=f"{POST}_second",
                author_id="3000000000972",
                author_name="Lam Mei",
                verb="add",
                message="A+1",
                outcome="added",
                reply_status="queued",
                reply_outbox_id=reply.id,
                received_at=now,
            )
        )
    await sign_in(stack, "owner")
    page = await (await stack.client.get("/inbox/board/live")).text()
    assert '<span class="reply">Reply: Sent</span>' in page
    assert "Waiting to be sent" not in page


# --- bad forms and filters, read in Chinese ------------------------------------------------------------

_ERROR_TEXT = re.compile(r'<(\w+)[^>]*class="[^"]*\b(?:field-error|error|detail)\b[^"]*"[^>]*>(.*?)</\1>', re.S)
_HAN = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[A-Za-z][A-Za-z']{2,}")
# What a refusal may keep in Latin letters: an example of the format it asks for, the codes a select offers
# (only a forged post sends another), currency codes and zones it names, and field paths of the shop file
# (`tiers[0].spend`), which are names, not words.
_ALLOWED = re.compile(
    r"\b(?:HKD|TWD|USD|IANA|any|all|exact|en|zh_Hant|Asia/\w+|UTC|\w+(?:-\w+)+|\w+(?:[.\[][\w\].]+)+)\b"
)

BAD_REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/inbox/orders?from=31/12/2026", {}),
    ("GET", "/inbox/orders?status=lost", {}),
    ("GET", "/inbox/orders?method=cheque", {}),
    ("GET", "/inbox/orders?from=2026-12-31&to=2026-12-01", {}),
    ("GET", "/inbox/orders/export.csv?page=0", {}),
    ("POST", "/inbox/settings", {"shop.name": "", "shop.currency": "HKD", "shop.timezone": "Asia/Hong_Kong"}),
    ("POST", "/inbox/settings", {"shop.name": "花店", "shop.currency": "HKD", "shop.timezone": "Mars/Olympus"}),
    ("POST", "/inbox/settings", {"shop.name": "花店", "shop.currency": "HKD", "orders.pay_within": "forever"}),
    ("POST", "/inbox/faq", {"key": "營業 時間!", "keywords_en": "", "keywords_zh": "", "match": "any", "reply": ""}),
    ("POST", "/inbox/faq", {"key": "地址", "keywords_zh": "地址", "match": "any", "priority": "many", "reply": "旺角"}),
    ("POST", "/inbox/catalog/new", {"code": "", "name": "", "price": "free"}),
    ("POST", "/inbox/catalog/new", {"code": "R", "name": "玫瑰", "price": "10", "stock": "-1"}),
    ("POST", "/inbox/campaigns/_new", {"title": "", "starts_at": "tomorrow", "ends_at": ""}),
    ("POST", "/inbox/users", {"name": "有 空格", "role": "king"}),
    ("POST", "/inbox/membership", {"tiers[0].key": "member", "tiers[0].spend": "-5", "tiers[0].earn_points": "x"}),
    (
        "POST",
        "/inbox/membership",
        {
            "tiers[0].key": "member",
            "tiers[0].spend": "0",
            "tiers[0].earn_points": "1",
            "tiers[0].earn_per": "10",
            "tiers[0].redeem_points": "10",
            "tiers[0].redeem_value": "1",
            "referral.levels[0].signup": "lots",
        },
    ),
    (
        "POST",
        "/inbox/membership",
        {
            "tiers[0].key": "member",
            "tiers[0].spend": "0",
            "tiers[0].earn_points": "1",
            "tiers[0].earn_per": "10",
            "tiers[0].redeem_points": "10",
            "tiers[0].redeem_value": "1",
            "tiers[1].key": "member",
            "tiers[1].spend": "0",
        },
    ),
    ("POST", "/inbox/settings", {"shop.name": "花店", "shop.currency": "DOLLARS", "shop.timezone": "Asia/Hong_Kong"}),
    ("POST", "/inbox/settings", {"shop.name": "花店", "shop.currency": "HKD", "shop.language": "fr"}),
    ("POST", "/inbox/faq", {"key": "hours", "keywords_zh": "幾點", "match": "sometimes", "reply": "11點"}),
    ("POST", "/inbox/catalog/new", {"code": "R R", "name": "玫瑰", "price": "10", "variants": "size S, M"}),
    (
        "POST",
        "/inbox/campaigns/_new",
        {
            "title": "聖誕",
            "key": "x",
            "per_shopper_limit": "lots",
            "hold_minutes": "-3",
            "starts_at": "2026-12-01T10:00",
            "ends_at": "2026-11-01T10:00",
        },
    ),
    ("POST", "/inbox/users", {"name": "阿強", "role": "owner", "pages": "999"}),
]


def english_left(html: str, typed: dict[str, str]) -> list[str]:
    """The English words in the answer's error texts, leaving out what was typed and names of things."""
    found = []
    for _tag, inner in _ERROR_TEXT.findall(html):
        text = html_module.unescape(re.sub(r"<[^>]+>", " ", inner))
        for value in typed.values():
            if value:
                text = text.replace(value, " ")
        text = _ALLOWED.sub(" ", text)
        words = _WORD.findall(text)
        if words or (text.strip() and not _HAN.search(text)):
            found.append(" ".join(inner.split())[:200])
    return found


async def test_bad_forms_and_filters_are_refused_in_the_readers_chinese(bot_stack: Stack) -> None:
    stack = bot_stack
    await walk_seed(stack)
    await sign_in(stack, WALKER)
    problems = []
    for method, path, data in BAD_REQUESTS:
        if method == "GET":
            response = await stack.client.get(path)
        else:
            csrf = await csrf_of(stack, "/inbox/orders")
            response = await stack.client.post(path, data={"csrf": csrf, **data}, allow_redirects=False)
        html = await response.text()
        assert response.status == 400, (path, data, response.status, html[:300])
        assert _ERROR_TEXT.search(html), (path, data, "no error shown")
        if left := english_left(html, data):
            problems.append(f"{method} {path} {data}: {left}")
    assert not problems, "English in refusals on Chinese pages:\n" + "\n".join(problems)


async def test_the_orders_days_chosen_are_written_in_the_readers_words_beside_the_date_boxes(bot_stack: Stack) -> None:
    # Debian's Chromium shows <input type=date> as 12/31/2026 whatever the page's or the browser's language:
    # the page says the chosen days itself, in the reader's language. The boxes keep ISO on the wire.
    stack = bot_stack
    await owner_and_agent(stack)
    await sign_in(stack, "boss")
    year = utcnow().astimezone(ZoneInfo("Asia/Hong_Kong")).year  # this year's days are written without it
    query = f"from={year}-12-01&to={year + 1}-01-03"
    page = await (await stack.client.get(f"/inbox/orders?{query}&lang=zh_Hant")).text()
    days = re.search(r'id="order-days">([^<]+)<', page)
    assert days and days.group(1) == f"下單日期：12月1日 至 {year + 1}年1月3日（按商店時區）"
    assert f'name="from" value="{year}-12-01"' in page
    page = await (await stack.client.get(f"/inbox/orders?to={year + 1}-01-03&lang=en")).text()
    days = re.search(r'id="order-days">([^<]+)<', page)
    assert days and days.group(1) == f"Placed until Jan 3, {year + 1}, days in the shop's time zone"
    assert 'id="order-days"' not in await (await stack.client.get("/inbox/orders")).text()
