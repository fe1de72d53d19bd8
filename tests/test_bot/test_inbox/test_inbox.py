"""HTTP tests of the inbox (no browser): sign-in limits, access by Page, CSRF, CSV export, the CLI, pure rules."""

from __future__ import annotations

import asyncio
import codecs
import csv
import dataclasses
import hashlib
import io
import json
import logging
import re
import sys
import threading
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from typing import Any
from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request
from sqlalchemy import select, update

from bot.cli.main import main as plusone
from bot.inbound.ingest import StreamEntry
from bot.inbox import auth
from bot.inbox.auth import SESSION_COOKIE, UserError, add_user, client_address
from bot.inbox.core import (
    ReplyMode,
    asks_for_person,
    describe_failure,
    fill_placeholders,
    labels_column,
    message_state,
    parse_labels,
    reply_state,
    trail_csv,
)
from bot.inbox.tables import InboxUser, InboxUserPage, SavedReply
from bot.inbox.users import change_user, remove_user
from bot.runtime.clock import utcnow
from bot.runtime.redis_keys import RedisKeys
from bot.services import INBOX_HUB, INBOX_SIGNIN_LIMITER, INGEST, REDIS
from bot.store.tables import CommentLog, Conversation, OutboxMessage
from carts.order_rules import CheckoutForm
from carts.order_tables import Order, OrderLine
from carts.orders import fetch_checkout, fetch_or_create_checkout_token, place_order
from carts.tables import Product, ShopInfo, StockClaim
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes, start_stack
from tests.test_bot.test_handlers.test_comments import POST, seed_shop

PASSWORD = "correct horse battery"
FORM = CheckoutForm("Chan Tai Man", "+852 9123 4567", "delivery", "1 Queen's Road, Central")


async def sign_in(stack: Stack, name: str, password: str = PASSWORD, via: str | None = None) -> tuple[int, str]:
    """Sign in with the client's cookie jar; the status and the page (or the CSRF token of the next page).
    `via`: the client's address as a reverse proxy forwards it."""
    headers = {"X-Forwarded-For": via} if via else {}
    page = await (await stack.client.get("/inbox/login")).text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    response = await stack.client.post(
        "/inbox/login",
        data={"csrf": csrf, "name": name, "password": password},
        allow_redirects=False,
        headers=headers,
    )
    return response.status, await response.text()


async def csrf_of(stack: Stack, path: str) -> str:
    page = await (await stack.client.get(path)).text()
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


async def users(stack: Stack) -> None:
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "other", PASSWORD, "agent", ["1000000000002"])


def hold_the_limiters_clock(stack: Stack) -> None:
    """The sign-in limiter's time stands still: five tries a minute must not earn a try back while a busy
    machine takes seconds to hash each wrong password."""
    stack.client.app[INBOX_SIGNIN_LIMITER].clock = lambda: 1_800_000_000_000_000


async def test_failed_sign_ins_are_rate_limited_and_then_even_the_right_password_waits(bot_stack: Stack) -> None:
    await users(bot_stack)
    hold_the_limiters_clock(bot_stack)
    statuses = [(await sign_in(bot_stack, "owner", "wrong"))[0] for _ in range(7)]
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429
    status, page = await sign_in(bot_stack, "owner")
    assert status == 429 and "Too many failed sign-ins" in page
    assert "plusone_inbox" not in {c.key for c in bot_stack.client.session.cookie_jar}


@pytest.fixture
async def proxied_stack(aiohttp_client, tmp_path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The bot behind a reverse proxy on 127.0.0.1 (the test client's address), as the docs recommend."""
    async for running in start_stack(aiohttp_client, tmp_path, redis_server, trusted_proxies="127.0.0.1"):
        yield running


async def test_strangers_failed_sign_ins_lock_no_one_else_out(proxied_stack: Stack) -> None:
    stack = proxied_stack
    await users(stack)
    hold_the_limiters_clock(stack)
    # 24 names sprayed from the proxy's one address (no forwarded address: the proxy's own)...
    statuses = {(await sign_in(stack, f"guess{n}", "wrong"))[0] for n in range(24)}
    assert statuses == {401}
    assert (await sign_in(stack, "other"))[0] == 303  # ...and another user still signs in from it
    stack.client.session.cookie_jar.clear()
    # 8 wrong passwords for the owner from one client lock out that client, not the owner elsewhere.
    tries = [(await sign_in(stack, "owner", "wrong", via="203.0.113.7"))[0] for _ in range(8)]
    assert tries[:5] == [401] * 5 and tries[-1] == 429
    assert (await sign_in(stack, "owner", via="203.0.113.7"))[0] == 429
    assert (await sign_in(stack, "owner", via="198.51.100.9"))[0] == 303


async def test_throttled_tries_are_refused_before_hashing_and_hashing_is_off_the_loop(
    bot_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await users(bot_stack)
    hashed_in: list[str] = []
    check = auth.check_password

    def counted(password_hash: str, password: str) -> bool:
        hashed_in.append(threading.current_thread().name)
        return check(password_hash, password)

    monkeypatch.setattr(auth, "check_password", counted)
    statuses = [(await sign_in(bot_stack, "owner", "wrong"))[0] for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    assert len(hashed_in) == 5  # the three refused tries cost no argon2 time
    # A burst at once, as an attacker sends it: still only the limit's worth of hashes.
    burst = await asyncio.gather(*(sign_in(bot_stack, "other", "wrong") for _ in range(12)))
    assert sorted(status for status, _ in burst) == [401] * 5 + [429] * 7
    assert len(hashed_in) == 10
    # Every hash ran in the bounded pool of its own, never on the event loop's thread.
    assert all(name.startswith("plusone-argon2") for name in hashed_in), set(hashed_in)
    assert threading.current_thread().name not in hashed_in


async def test_a_spray_of_sign_ins_waits_in_a_bounded_line_and_the_rest_are_refused_at_once(
    bot_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await users(bot_stack)
    monkeypatch.setattr(auth, "HASHING_WAITING_MAX", 2)
    gate = threading.Event()
    check = auth.check_password

    def held(password_hash: str, password: str) -> bool:
        gate.wait(30)  # every hashing thread busy until the test lets go
        return check(password_hash, password)

    monkeypatch.setattr(auth, "check_password", held)
    # Names sprayed from many addresses: no throttle bucket stops them, only the line's length.
    line = [
        asyncio.create_task(sign_in(bot_stack, f"guess{n}", "wrong", via=f"203.0.113.{n}"))
        for n in range(auth.HASHING_THREADS + 2)
    ]

    async def line_full() -> bool:
        return auth._in_pool == auth.HASHING_THREADS + 2

    await wait_until(line_full, what="the hashing threads busy and the line full")
    status, _ = await sign_in(bot_stack, "owner", "wrong", via="198.51.100.9")
    assert status == 429  # refused at once, without hashing or waiting
    gate.set()
    assert {status for status, _ in await asyncio.gather(*line)} == {401}
    assert auth._in_pool == 0
    assert (await sign_in(bot_stack, "owner", via="198.51.100.9"))[0] == 303  # not counted as a failure


def test_the_forwarded_address_is_believed_only_from_trusted_proxies() -> None:
    def address(peer: str, forwarded: str | None, trusted: tuple[str, ...]) -> str:
        transport = mock.Mock()
        transport.get_extra_info.return_value = (peer, 4321)
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        return client_address(make_mocked_request("POST", "/inbox/login", headers, transport=transport), trusted)

    proxies = ("10.0.0.0/8",)
    assert address("198.51.100.9", "203.0.113.7", proxies) == "198.51.100.9"  # not our proxy: a forgery
    assert address("10.0.0.2", "203.0.113.7", proxies) == "203.0.113.7"
    # The client wrote a forged hop first; our proxies appended the real one (and their own) after it.
    assert address("10.0.0.2", "1.2.3.4, 203.0.113.7, 10.0.0.3", proxies) == "203.0.113.7"
    assert address("10.0.0.2", "garbage, 10.0.0.3", proxies) == "10.0.0.3"
    assert address("10.0.0.2", None, proxies) == "10.0.0.2"
    assert address("10.0.0.2", "203.0.113.7", ()) == "10.0.0.2"  # no trusted proxies: the peer


async def test_sign_in_without_the_forms_token_is_refused(bot_stack: Stack) -> None:
    await users(bot_stack)
    response = await bot_stack.client.post("/inbox/login", data={"name": "owner", "password": PASSWORD})
    assert response.status == 403


async def test_another_pages_agent_can_neither_read_nor_change_a_conversation(bot_stack: Stack) -> None:
    await users(bot_stack)
    await shopper_writes(bot_stack, "3000000000901", "hi")
    conversation = (await bot_stack.rows(select(Conversation)))[0]
    assert (await sign_in(bot_stack, "other"))[0] == 303
    csrf = await csrf_of(bot_stack, "/inbox")
    for path in ("reply", "note", "labels", "cart/send"):
        response = await bot_stack.client.post(
            f"/inbox/c/{conversation.id}/{path}", data={"csrf": csrf, "text": "x", "nonce": "n1", "labels": "vip"}
        )
        assert response.status == 404, path
    assert not await bot_stack.rows(select(OutboxMessage).where(OutboxMessage.author == "agent"))
    listing = await (await bot_stack.client.get("/inbox")).text()
    assert f"/inbox/c/{conversation.id}" not in listing


async def test_a_reply_then_the_same_form_again_queues_one_message(bot_stack: Stack) -> None:
    await users(bot_stack)
    await shopper_writes(bot_stack, "3000000000902", "hi")
    conversation = (await bot_stack.rows(select(Conversation)))[0]
    await sign_in(bot_stack, "owner")
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    form = {"csrf": csrf, "text": "Hello from the shop", "nonce": "same-form"}
    for _ in range(2):
        response = await bot_stack.client.post(f"/inbox/c/{conversation.id}/reply", data=form, allow_redirects=False)
        assert response.status == 303
    rows = await bot_stack.rows(select(OutboxMessage).where(OutboxMessage.author == "agent"))
    assert len(rows) == 1
    empty = await bot_stack.client.post(f"/inbox/c/{conversation.id}/reply", data={**form, "text": " ", "nonce": "b"})
    assert empty.status == 400 and "Type a reply first" in await empty.text()


async def test_without_the_human_agent_permission_the_composer_says_why_it_cannot_send_after_24_hours(
    bot_stack: Stack,
) -> None:
    await users(bot_stack)
    psid = "3000000000904"
    await shopper_writes(bot_stack, psid, "hi")
    conversation = (await bot_stack.rows(select(Conversation)))[0]
    await bot_stack.set_last_user_at(psid, hours_ago=30)
    await sign_in(bot_stack, "owner")
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    assert "Human Agent permission" in page and "utility template" in page
    assert "HUMAN_AGENT tag (" not in page  # no offer of the tag
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    form = {"csrf": csrf, "text": "Sorry for the wait", "nonce": "late-1"}
    response = await bot_stack.client.post(f"/inbox/c/{conversation.id}/reply", data=form, allow_redirects=False)
    assert response.status == 409 and "Human Agent permission" in await response.text()
    assert not await bot_stack.rows(select(OutboxMessage).where(OutboxMessage.author == "agent"))


async def test_the_comment_trail_exports_as_csv_with_formulas_kept_as_text(bot_stack: Stack) -> None:
    await users(bot_stack)
    await seed_shop(bot_stack.sessions)
    reply = await bot_stack.emulator.deliver_comment(PAGE_ID, POST.split("_")[1], "3000000000903", "=HYPERLINK(1) A+1")
    assert reply["status"] == 200

    async def decided() -> bool:
        response = await bot_stack.client.get("/inbox/board/live.csv")
        return response.status == 200 and "added" in await response.text()

    await sign_in(bot_stack, "owner")
    await wait_until(decided, what="the comment decided")
    body = await (await bot_stack.client.get("/inbox/board/live.csv")).read()
    assert body.startswith(codecs.BOM_UTF8)  # Excel reads it as UTF-8
    header, row = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[:2]
    assert header == [
        "Time",
        "Shopper",
        "Comment",
        "Read as",
        "What happened",
        "Private reply",
        "Why not sent",
        "outcome",
        "reply_status",
        "reply_reason",
    ]
    assert row[2] == "'=HYPERLINK(1) A+1" and row[3] == "A ×1"
    assert row[4] == "Added to the cart" and row[7] == "added"  # words for people, the code for programs
    board = await (await bot_stack.client.get("/inbox/board/live")).text()
    assert "Rose bouquet" in board


async def test_the_comment_trail_csv_is_in_the_readers_words_and_the_shops_time(bot_stack: Stack) -> None:
    await users(bot_stack)
    await seed_shop(bot_stack.sessions)
    async with bot_stack.sessions() as session, session.begin():
        session.add(ShopInfo(id=1, name="Blossom", currency="HKD", timezone="Asia/Hong_Kong", updated_at=utcnow()))
    await bot_stack.emulator.deliver_comment(PAGE_ID, POST.split("_")[1], "3000000000904", "A+1")
    await sign_in(bot_stack, "owner")

    async def rows() -> list[list[str]]:
        body = await (await bot_stack.client.get("/inbox/board/live.csv?lang=zh_Hant")).read()
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))

    async def sent() -> bool:
        found = await rows()
        return len(found) == 2 and found[1][8] == "sent"

    await wait_until(sent, what="the comment's private reply sent")
    header, row = await rows()
    assert header[:7] == ["時間", "顧客", "留言", "讀成", "結果", "私訊回覆", "未送出原因"]
    assert header[7:] == ["outcome", "reply_status", "reply_reason"]  # codes read the same in every language
    assert row[4] == "已加入購物車" and row[5] == "已送出" and row[7] == "added"
    received = (await bot_stack.rows(select(CommentLog)))[0].received_at
    assert row[0] == (received.replace(tzinfo=UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")  # Hong Kong


async def test_dead_letters_are_for_owners(bot_stack: Stack) -> None:
    await users(bot_stack)
    await sign_in(bot_stack, "other")
    assert (await bot_stack.client.get("/inbox/dead-letters")).status == 403
    bot_stack.client.session.cookie_jar.clear()
    await sign_in(bot_stack, "owner")
    page = await bot_stack.client.get("/inbox/dead-letters")
    assert page.status == 200 and "Every notification was processed." in await page.text()
    csrf = await csrf_of(bot_stack, "/inbox/dead-letters")
    missing = await bot_stack.client.post("/inbox/dead-letters/1-0/retry", data={"csrf": csrf})
    assert missing.status == 404


async def test_a_dead_letter_with_a_lone_surrogate_shows(bot_stack: Stack) -> None:
    await users(bot_stack)
    await sign_in(bot_stack, "owner")
    # The owner's Page, since an inbox shows only its own Pages' dead letters.
    body = (
        b'{"object":"page","entry":[{"id":"%s","messaging":[{"message":{"text":"A+1 \\ud83d"}}]}]}' % PAGE_ID.encode()
    )
    entry = StreamEntry(id="1-0", body=body, received_at_ms=1, source="webhook")
    await bot_stack.client.app[INGEST].dead_letter(entry, "message mid:m: failed", 3)
    # An error may quote what it failed on: Redis takes UTF-8 only.
    await bot_stack.client.app[INGEST].dead_letter(entry, "message mid:m: failed on 'A+1 \ud83d'", 3)
    page = await bot_stack.client.get("/inbox/dead-letters")
    assert page.status == 200
    assert (await page.text()).count("A+1 \ufffd") == 3  # two bodies, one error


async def test_a_closed_tab_ends_its_live_updates_in_one_quiet_line(bot_stack: Stack, caplog) -> None:  # type: ignore[no-untyped-def]
    await users(bot_stack)
    await sign_in(bot_stack, "owner")
    caplog.set_level(logging.DEBUG)
    stream = await bot_stack.client.get("/inbox/events")
    assert (await stream.content.readline()).startswith(b"event: hello")
    stream.connection.transport.abort()  # type: ignore[union-attr]  # the tab is closed
    hub = bot_stack.client.app[INBOX_HUB]

    async def gone() -> bool:
        hub.dispatch({"page": PAGE_ID, "kind": "message"})  # a note finds the browser gone, once the server knows
        return any("went away" in r.getMessage() for r in caplog.records)

    await wait_until(gone, what="the stream ended")
    web_records = [r for r in caplog.records if r.name.startswith(("aiohttp", "bot.inbox"))]
    assert not [r for r in web_records if r.levelno >= logging.WARNING]


def test_plusone_user_add(tmp_path, monkeypatch, capsys, blockbuster) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PLUSONE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert plusone(["user", "add", "alice", "--role", "owner", "--page", PAGE_ID, "--password-stdin"]) == 2
    assert "at least 8 characters" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    assert plusone(["user", "add", "alice", "--role", "boss", "--page", PAGE_ID, "--password-stdin"]) == 2
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    code = plusone(["user", "add", "alice", "--role", "agent", "--page", PAGE_ID, "2000", "--password-stdin"])
    assert code == 0 and "saved alice (agent)" in capsys.readouterr().out
    import sqlite3

    with sqlite3.connect(tmp_path / "plusone.db") as db:
        (hashed,) = db.execute(f"SELECT password_hash FROM {InboxUser.__tablename__}").fetchone()
        pages = sorted(p for (p,) in db.execute(f"SELECT page_id FROM {InboxUserPage.__tablename__}"))
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert pages == sorted([PAGE_ID, "2000"])


def test_the_reply_box_follows_metas_windows() -> None:
    now = utcnow()
    assert reply_state(now, now - timedelta(hours=2)).mode is ReplyMode.NORMAL
    late = reply_state(now, now - timedelta(hours=30), human_agent=True)
    assert (late.mode, late.tag) == (ReplyMode.HUMAN_AGENT, "HUMAN_AGENT")
    # Without Meta's Human Agent permission the composer is closed after 24 hours, and says why and what can go.
    plain = reply_state(now, now - timedelta(hours=30))
    assert (plain.mode, plain.tag) == (ReplyMode.DISABLED, None)
    assert "Human Agent permission" in plain.why and "utility template" in plain.why
    closed = reply_state(now, now - timedelta(days=8))
    assert closed.mode is ReplyMode.DISABLED and "7 days" in closed.why
    assert reply_state(now, None).mode is ReplyMode.DISABLED


def test_message_states_and_metas_reasons_in_words() -> None:
    assert message_state("out", "failed", None, None, "(#10) outside", 10, 2018278).reason.startswith(  # type: ignore[union-attr]
        "Meta refused it: outside the 24-hour window"
    )
    assert message_state("out", "sent", utcnow(), utcnow(), None).label == "read"
    assert message_state("out", "pending", None, None, None, outbox_status="sent").label == "sent"
    assert message_state("out", "pending", None, None, None).label == "sending"
    assert describe_failure(551, None, None).startswith("Meta refused it: this person isn't available")


@pytest.mark.parametrize(("text", "asks"), [("can I talk to a real person?", True), ("真人客服", True), ("A+1", False)])
def test_asking_for_a_person(text: str, asks: bool) -> None:
    assert asks_for_person(text) is asks


def test_labels_and_csv_cells() -> None:
    assert parse_labels(" VIP, friday  live,vip,,") == ["vip", "friday live"]
    assert labels_column(["vip"]) == ",vip,"
    assert trail_csv([{"comment": "@SUM(A1)", "author": "-1"}]).splitlines()[1] == '"","\'-1","\'@SUM(A1)","","","",""'


@pytest.mark.parametrize(
    ("comment", "as_text"),
    [
        ("x;=1+1;", "x;'=1+1;"),  # Excel in a ; locale splits here: the second cell must not be a formula
        ("x, =1+1", "x,' =1+1"),
        ("   =1+1", "'   =1+1"),  # spaces before the = do not make it text
        ("\t+1", "'\t'+1"),  # a tab starts a formula, and read as a separator, so does what follows it
        ("a|@SUM(A1)", "a|'@SUM(A1)"),
        ("\r-1", "'\r'-1"),
        ("A+1 紅色", "A+1 紅色"),
    ],
)
def test_no_csv_cell_can_start_a_formula_whatever_the_separator(comment: str, as_text: str) -> None:
    text = trail_csv([{"comment": comment}])
    assert text.startswith("\ufeff")  # the BOM: Excel opens Chinese as UTF-8
    lines = text[1:].split("\r\n")[:-1]  # the csv module ends rows with CRLF; a lone CR is inside a cell
    assert all(line.startswith('"') for line in lines)  # every cell quoted, whichever separator reads it
    assert list(csv.reader(io.StringIO(text[1:])))[1][2] == as_text
    for separator in ",;\t|":
        # Read with the wrong separator and ignoring quotes, as a spreadsheet's import might: no formula.
        for line in lines[1:]:
            for cell in line.split(separator):
                assert not cell.strip(' "').startswith(("=", "+", "-", "@")), (separator, cell)


async def test_an_owner_marks_an_order_paid_and_takes_back_a_returned_unit(bot_stack: Stack) -> None:
    await users(bot_stack)
    await seed_shop(bot_stack.sessions, stock=5)
    psid = "3000000000903"
    await shopper_writes(bot_stack, psid, "hi")
    await bot_stack.emulator.deliver_comment(PAGE_ID, POST.split("_", 1)[1], psid, "A+2", comment_id=f"{POST}_903")

    async def held() -> bool:
        return [c.status for c in await bot_stack.rows(select(StockClaim))] == ["held"]

    await wait_until(held, what="the comment's units held")
    async with bot_stack.sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE_ID, psid, utcnow())
        info = await fetch_checkout(session, token, utcnow())
        assert info is not None
        number = (await place_order(session, token, info.nonce, FORM, utcnow())).order.number
    conversation = (await bot_stack.rows(select(Conversation)))[0]
    await sign_in(bot_stack, "owner")
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    paid = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/orders/{number}/paid", data={"csrf": csrf}, allow_redirects=False
    )
    assert paid.status == 303
    order = (await bot_stack.rows(select(Order).where(Order.number == number)))[0]
    assert order.status == "paid"
    line = (await bot_stack.rows(select(OrderLine).where(OrderLine.order_id == order.id)))[0]
    too_many = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/orders/{number}/return", data={"csrf": csrf, f"line:{line.id}": "3"}
    )
    assert too_many.status in (400, 409)  # two were sold: nothing changes
    assert (await bot_stack.rows(select(Product).where(Product.code == "A")))[0].sold == 2
    returned = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/orders/{number}/return",
        data={"csrf": csrf, f"line:{line.id}": "1"},
        allow_redirects=False,
    )
    assert returned.status == 303
    product = (await bot_stack.rows(select(Product).where(Product.code == "A")))[0]
    assert (product.sold, product.held) == (1, 0)  # the returned unit is back on sale


@pytest.mark.parametrize("assignee", ["³", "12x", "999999", "-1"])
async def test_assigning_to_no_such_user_is_refused(bot_stack: Stack, assignee: str) -> None:
    await users(bot_stack)
    await shopper_writes(bot_stack, "3000000000904", "hi")
    conversation = (await bot_stack.rows(select(Conversation)))[0]
    await sign_in(bot_stack, "owner")
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    response = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/assign", data={"csrf": csrf, "assignee": assignee}, allow_redirects=False
    )
    assert response.status == 400 and "no such user" in await response.text()


async def test_redis_keeps_a_hash_of_the_session_token_never_the_token(bot_stack: Stack) -> None:
    await users(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    token = next(c.value for c in bot_stack.client.session.cookie_jar if c.key == SESSION_COOKIE)
    redis = bot_stack.client.app[REDIS]
    keys = [key.decode() async for key in redis.scan_iter(f"{bot_stack.settings.key_prefix}:inbox:session:*")]
    assert keys == [RedisKeys(bot_stack.settings.key_prefix).inbox_session(hashlib.sha256(token.encode()).hexdigest())]
    assert token not in (await redis.get(keys[0])).decode()
    assert (await bot_stack.client.get("/inbox")).status == 200  # and the cookie still opens the session


@pytest.mark.parametrize(
    "change",
    [
        {"password": "a brand new password"},
        {"role": "agent"},
        {"pages": ["1000000000002"]},
        {"active": False},
        {"sign_out": True},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_changing_a_user_ends_their_open_sessions(bot_stack: Stack, change: dict[str, Any]) -> None:
    await users(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    csrf = await csrf_of(bot_stack, "/inbox")
    async with bot_stack.sessions() as session, session.begin():
        await change_user(session, "owner", **change)
    page = await bot_stack.client.get("/inbox", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"].startswith("/inbox/login")
    post = await bot_stack.client.post("/inbox/logout", data={"csrf": csrf}, allow_redirects=False)
    assert post.status == 401
    keys = [
        key async for key in bot_stack.client.app[REDIS].scan_iter(f"{bot_stack.settings.key_prefix}:inbox:session:*")
    ]
    assert keys == []  # the ended session's key is gone too


async def test_an_unchanged_user_stays_signed_in_and_an_author_of_notes_is_disabled_not_removed(
    bot_stack: Stack,
) -> None:
    await users(bot_stack)
    await shopper_writes(bot_stack, "3000000000905", "hi")
    conversation = (await bot_stack.rows(select(Conversation)))[0]
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    async with bot_stack.sessions() as session, session.begin():
        await change_user(session, "owner", pages=[PAGE_ID], role="owner", active=True)  # all as they were
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    note = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/note", data={"csrf": csrf, "text": "VIP"}, allow_redirects=False
    )
    assert note.status == 303
    with pytest.raises(UserError, match="user disable owner"):
        async with bot_stack.sessions() as session, session.begin():
            await remove_user(session, "owner")
    async with bot_stack.sessions() as session, session.begin():
        await remove_user(session, "other")
    assert [u.name for u in await bot_stack.rows(select(InboxUser))] == ["owner"]


PAGE_2 = "1000000000002"


async def owners_of_two_pages(stack: Stack) -> None:
    await users(stack)  # owner: Page 1; other: an agent of Page 2
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner2", PASSWORD, "owner", [PAGE_2])


async def save_reply(stack: Stack, title: str, text: str, page_id: str | None = None, path: str = "") -> int:
    csrf = await csrf_of(stack, "/inbox/saved-replies")
    data = {"csrf": csrf, "title": title, "text": text, **({"page_id": page_id} if page_id else {})}
    response = await stack.client.post(f"/inbox/saved-replies{path}", data=data, allow_redirects=False)
    return response.status


async def test_saved_replies_are_per_page(bot_stack: Stack) -> None:
    await owners_of_two_pages(bot_stack)
    await sign_in(bot_stack, "owner")
    assert await save_reply(bot_stack, "Hours", "We open at 10.") == 303
    (ours,) = await bot_stack.rows(select(SavedReply))
    bot_stack.client.session.cookie_jar.clear()

    await sign_in(bot_stack, "owner2")
    assert "We open at 10." not in await (await bot_stack.client.get("/inbox/saved-replies")).text()
    assert await save_reply(bot_stack, "Hours", "Closed today.") == 303  # Page 2's own, not Page 1's
    assert await save_reply(bot_stack, "Hours", "Closed today.", page_id=PAGE_ID) == 400
    assert await save_reply(bot_stack, "Hours", "Closed today.", path=f"/{ours.id}") == 404
    assert await save_reply(bot_stack, "x", "x", path=f"/{ours.id}/delete") == 404
    replies = {(r.page_id, r.title): r.text for r in await bot_stack.rows(select(SavedReply))}
    assert replies == {(PAGE_ID, "Hours"): "We open at 10.", (PAGE_2, "Hours"): "Closed today."}
    bot_stack.client.session.cookie_jar.clear()

    await sign_in(bot_stack, "owner")  # Page 1's owner edits and deletes their own
    assert await save_reply(bot_stack, "Opening hours", "We open at 11.", path=f"/{ours.id}") == 303
    assert await save_reply(bot_stack, "Bad", "Hi {nmae}") == 400
    replies = {(r.page_id, r.title): r.text for r in await bot_stack.rows(select(SavedReply))}
    assert replies[(PAGE_ID, "Opening hours")] == "We open at 11." and (PAGE_ID, "Bad") not in replies
    assert await save_reply(bot_stack, "", "", path=f"/{ours.id}/delete") == 303
    assert [r.page_id for r in await bot_stack.rows(select(SavedReply))] == [PAGE_2]


async def test_a_saved_reply_is_filled_for_the_conversation(bot_stack: Stack) -> None:
    await owners_of_two_pages(bot_stack)
    await seed_shop(bot_stack.sessions, stock=5)
    psid = "3000000000906"
    await shopper_writes(bot_stack, psid, "hi")
    await bot_stack.emulator.deliver_comment(PAGE_ID, POST.split("_", 1)[1], psid, "A+1", comment_id=f"{POST}_906")

    async def held() -> bool:
        return [c.status for c in await bot_stack.rows(select(StockClaim))] == ["held"]

    await wait_until(held, what="the comment's unit held")

    async def named_by_meta() -> bool:  # the User Profile API's fill, which would replace the name set below
        return all(c.profile_fetched_at is not None for c in await bot_stack.rows(select(Conversation)))

    await wait_until(named_by_meta, what="the shopper's profile fetched")
    async with bot_stack.sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE_ID, psid, utcnow())
        info = await fetch_checkout(session, token, utcnow())
        assert info is not None
        number = (await place_order(session, token, info.nonce, FORM, utcnow())).order.number
        await session.execute(update(Conversation).where(Conversation.psid == psid).values(name="Chan Tai Man"))
    conversation = (await bot_stack.rows(select(Conversation)))[0]
    await sign_in(bot_stack, "owner")
    assert await save_reply(bot_stack, "Thanks", "Thank you {name}, order {order} is on its way.") == 303
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    assert f'value="Thank you Chan Tai Man, order {number} is on its way."' in page
    assert fill_placeholders("{name}: {order}", {"name": "Ann", "order": None}) == "Ann: {order}"  # no order yet


async def test_dead_letters_are_shown_and_retried_only_to_their_pages_owners(bot_stack: Stack) -> None:
    await owners_of_two_pages(bot_stack)
    ingest = bot_stack.client.app[INGEST]

    async def dead(page_id: str, marker: str) -> str:
        body = json.dumps({"object": "page", "entry": [{"id": page_id, "time": 1, "changes": [{"marker": marker}]}]})
        return await ingest.dead_letter(StreamEntry(f"1-{marker[-1]}", body.encode(), 1, "webhook"), "boom", 3)

    ours, theirs = await dead(PAGE_ID, "page-one-1"), await dead(PAGE_2, "page-two-2")
    await sign_in(bot_stack, "owner2")
    page = await (await bot_stack.client.get("/inbox/dead-letters")).text()
    assert "page-two-2" in page and "page-one-1" not in page
    csrf = await csrf_of(bot_stack, "/inbox/dead-letters")
    refused = await bot_stack.client.post(f"/inbox/dead-letters/{ours}/retry", data={"csrf": csrf})
    assert refused.status == 404
    assert [d.id for d in await ingest.list_dead_letters()] == [ours, theirs]  # Page 1's still there
    retried = await bot_stack.client.post(
        f"/inbox/dead-letters/{theirs}/retry", data={"csrf": csrf}, allow_redirects=False
    )
    assert retried.status == 303
    assert [d.id for d in await ingest.list_dead_letters()] == [ours]


async def test_a_user_sees_and_assigns_only_people_of_the_conversations_page(bot_stack: Stack) -> None:
    await owners_of_two_pages(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "agent1", PASSWORD, "agent", [PAGE_ID])
    await shopper_writes(bot_stack, "3000000000907", "hi")
    conversation = (await bot_stack.rows(select(Conversation)))[0]
    ids = {u.name: u.id for u in await bot_stack.rows(select(InboxUser))}
    await sign_in(bot_stack, "owner")
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    directory = set(re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', page))
    assert directory == {(str(ids["owner"]), "owner"), (str(ids["agent1"]), "agent1")}
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    for outsider in ("other", "owner2"):
        response = await bot_stack.client.post(
            f"/inbox/c/{conversation.id}/assign", data={"csrf": csrf, "assignee": str(ids[outsider])}
        )
        assert response.status == 400 and "no such user" in await response.text()
    fine = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/assign", data={"csrf": csrf, "assignee": str(ids["agent1"])}, allow_redirects=False
    )
    assert fine.status == 303


def test_an_echoed_button_template_shows_its_text_not_a_placeholder() -> None:
    from bot.inbound import webhook_factory as wf
    from bot.inbound.events import MessageEvent
    from bot.inbound.payloads import parse_delivery
    from bot.inbox.queries import _describe_payload

    template = {"type": "template", "payload": {"template_type": "button", "text": "購物車：HK$520", "buttons": []}}
    assert _describe_payload("attachment", json.dumps({"attachments": [template]})) == "購物車：HK$520"
    assert _describe_payload("attachment", json.dumps({"attachments": [{"type": "video"}]})) == "[video]"
    # As the recorder stores Meta's echo of it: the template's text parsed as the attachment's title.
    item = wf.message_item(page_id=PAGE_ID, psid="3000000000905", attachments=[template], echo=True, app_id="555")
    event = parse_delivery(json.dumps(wf.messaging_delivery(PAGE_ID, [item])))[0]
    assert isinstance(event, MessageEvent)
    stored = {"attachments": [dataclasses.asdict(a) for a in event.attachments]}
    assert _describe_payload("attachment", json.dumps(stored)) == "購物車：HK$520"
