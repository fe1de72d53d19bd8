"""Bad bytes from strangers and bad numbers from anyone (issue 16): every one a 4xx with a reason, never a
500, and nothing changed. The requests are written on a raw socket, since aiohttp's client will not send
a header that is not ASCII, a charset it does not know or a multipart body without its boundary.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.store.tables import Conversation
from bot.web.numbers import json_int, read_decimal, read_int
from tests.conftest import ADMIN_TOKEN, PAGE_ID
from tests.test_bot.stack import Stack, start_stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_inbox.test_inbox import csrf_of, sign_in, users
from tests.test_fuzz import snapshot

FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"
ADMIN = b"Authorization: Bearer " + ADMIN_TOKEN.encode() + b"\r\n"
JSON = ADMIN + b"Content-Type: application/json\r\n"
MULTIPART = b"Content-Type: multipart/form-data; boundary=zz\r\n"
DIGITS_5000 = b"9" * 5000
BEYOND_SQL = b"9" * 20  # past a 64-bit integer, so past every id column


@dataclass
class Site:
    stack: Stack
    conversation_id: int
    checkout: str  # a checkout token's path
    cookie: bytes  # the signed-in owner's cookies, as a header line
    csrf: str


@pytest.fixture
async def site(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Site]:  # type: ignore[no-untyped-def]
    """The bot with a shop, a payment secret, a conversation and an owner signed in to the inbox."""
    async for stack in start_stack(aiohttp_client, tmp_path, redis_server, payment_secret=SecretStr("pay-secret")):
        await seed_shop(stack.sessions)
        await users(stack)
        async with stack.sessions() as session, session.begin():
            row = Conversation(page_id=PAGE_ID, psid="3000000000901", channel="messenger", created_at=datetime.now(UTC))
            session.add(row)
            await session.flush()
            conversation_id = row.id
        assert conversation_id is not None and (await sign_in(stack, "owner"))[0] == 303
        csrf = await csrf_of(stack, f"/inbox/c/{conversation_id}")
        cookie = b"Cookie: " + "; ".join(f"{c.key}={c.value}" for c in stack.client.session.cookie_jar).encode()
        yield Site(stack, conversation_id, "/checkout/no-such-token", cookie + b"\r\n", csrf)


async def send(stack: Stack, request_line: bytes, headers: bytes = b"", body: bytes = b"") -> tuple[int, str]:
    """One request exactly as written (HTTP/1.1, closed after the answer): the status and the body."""
    url = stack.client.make_url("/")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    head = request_line + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" + headers
    writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split(b" ")[1]), rest.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


async def assert_refused(
    site: Site, status: int, reason: str, request_line: bytes, headers: bytes, body: bytes
) -> None:
    before = await snapshot(site.stack)
    answer, text = await send(site.stack, request_line, headers, body)
    assert (answer, reason in text) == (status, True), text[:300]
    assert await snapshot(site.stack) == before


# (status, a words of the reason, request line, headers, body); {conv} {checkout} {cookie} {csrf} filled in.
UNAUTHENTICATED = {
    "webhook signature, not UTF-8": (
        401, "does not match", b"POST /webhook", b"X-Hub-Signature-256: sha256=\xff\xfe\r\n", b"{}"
    ),
    "webhook signature, UTF-8 but not ASCII": (
        401, "does not match", b"POST /webhook", "X-Hub-Signature-256: sha256=é\r\n".encode(), b"{}"
    ),
    "admin token, not UTF-8": (401, "wrong admin token", b"GET /api/orders", b"Authorization: Bearer \xff\r\n", b""),
    "payment signature, not UTF-8": (
        401, "wrong signature", b"POST /api/payments", b"X-PlusOne-Signature: sha256=\xff\r\n", b"{}"
    ),
    "payment signature, UTF-8 but not ASCII": (
        401, "wrong signature", b"POST /api/payments", "X-PlusOne-Signature: sha256=é\r\n".encode(), b"{}"
    ),
    "session cookie, not UTF-8 (GET)": (303, "", b"GET /inbox", b"Cookie: plusone_inbox=\xff\xfe\r\n", b""),
    "session cookie, not UTF-8 (POST)": (
        401, "sign in first", b"POST /inbox/logout", b"Cookie: plusone_inbox=\xff\xfe\r\n", b""
    ),
    "sign-in CSRF cookie, not UTF-8": (
        403, "no valid CSRF token", b"POST /inbox/login", b"Cookie: plusone_login_csrf=\xff\r\n" + FORM, b"csrf=%ff"
    ),
    "sign-in form, unknown charset": (
        400, "unknown encoding: nope", b"POST /inbox/login",
        b"Content-Type: application/x-www-form-urlencoded; charset=nope\r\n", b"csrf=a",
    ),
    "sign-in form, not UTF-8": (400, "can't decode byte 0xff", b"POST /inbox/login", FORM, b"csrf=\xff"),
    "sign-in form, broken multipart": (400, "Invalid HTTP header", b"POST /inbox/login", MULTIPART, b"--zz\r\njunk"),
    "sign-in form, multipart without a boundary": (
        400, "boundary missed", b"POST /inbox/login", b"Content-Type: multipart/form-data\r\n", b"--zz\r\n"
    ),
    "checkout form, unknown charset": (
        400, "unknown encoding: nope", b"POST {checkout}",
        b"Content-Type: application/x-www-form-urlencoded; charset=nope\r\n", b"nonce=a",
    ),
    "checkout form, broken multipart": (400, "Invalid HTTP header", b"POST {checkout}", MULTIPART, b"--zz\r\njunk"),
    "checkout form, a part in an unknown charset": (
        400, "unknown encoding: nope", b"POST {checkout}", MULTIPART,
        b'--zz\r\nContent-Disposition: form-data; name="a"\r\nContent-Type: text/plain; charset=nope\r\n\r\nx\r\n'
        b"--zz--\r\n",
    ),
}  # fmt: skip


def fill(site: Site, raw: bytes) -> bytes:
    values = {"conv": str(site.conversation_id), "checkout": site.checkout, "cookie": "", "csrf": site.csrf}
    raw = raw.replace(b"{cookie}", site.cookie)
    return re.sub(rb"\{(conv|checkout|csrf)\}", lambda m: values[m.group(1).decode()].encode(), raw)


@pytest.mark.parametrize(("status", "reason", "line", "headers", "body"), UNAUTHENTICATED.values(), ids=UNAUTHENTICATED)
async def test_a_strangers_bad_bytes_get_a_4xx_with_the_reason_and_change_nothing(
    site: Site, status: int, reason: str, line: bytes, headers: bytes, body: bytes
) -> None:
    """Each was a 500: `hmac.compare_digest` on non-ASCII text, `str.encode()` of the surrogates aiohttp
    decodes undecodable header bytes to, and aiohttp's form reader raising on what it cannot decode."""
    await assert_refused(site, status, reason, fill(site, line), fill(site, headers), fill(site, body))


SIGNED_IN = {
    "CSRF header, not UTF-8": (
        403, "no valid CSRF token", b"POST /inbox/c/{conv}/note", b"{cookie}X-CSRF-Token: \xff\r\n" + FORM, b"text=x"
    ),
    "conversation id past SQL's integers": (
        404, "no such conversation", b"GET /inbox/c/" + BEYOND_SQL, b"{cookie}", b""
    ),
    "conversation id past SQL's integers (POST)": (
        404, "no such conversation", b"POST /inbox/c/" + BEYOND_SQL + b"/note", b"{cookie}" + FORM,
        b"csrf={csrf}&text=x",
    ),
    "product id past SQL's integers": (
        400, "That line is no longer in the cart", b"POST /inbox/c/{conv}/cart/qty", b"{cookie}" + FORM,
        b"csrf={csrf}&qty=1&product_id=" + BEYOND_SQL,
    ),
    "claim id past SQL's integers": (
        404, "no such claim", b"POST /inbox/c/{conv}/member/claims/" + BEYOND_SQL + b"/join", b"{cookie}" + FORM,
        b"csrf={csrf}",
    ),
    "saved reply id past PostgreSQL's integers": (
        404, "no such saved reply", b"POST /inbox/saved-replies/99999999999/delete", b"{cookie}" + FORM, b"csrf={csrf}"
    ),
    "quantity in Arabic-Indic digits": (
        400, "Quantity: a whole number from 1 to 99", b"POST /inbox/c/{conv}/cart/add", b"{cookie}" + FORM,
        b"csrf={csrf}&code=A&qty=%D9%A3",
    ),
    "dead letters' limit of 5000 digits": (
        400, "limit: a whole number from 1 to 1000", b"GET /api/dead-letters?limit=" + DIGITS_5000, ADMIN, b""
    ),
    "outbox limit of 5000 digits": (
        400, "limit: a whole number from 1 to 1000", b"GET /api/outbox?limit=" + DIGITS_5000, ADMIN, b""
    ),
    "orders' limit of 5000 digits": (
        400, "limit: a whole number from 1 to 1000", b"GET /api/orders?limit=" + DIGITS_5000, ADMIN, b""
    ),
    "RFM days of 5000 digits": (
        400, "new_days: no longer taken", b"GET /api/members/rfm?new_days=" + DIGITS_5000, ADMIN, b""
    ),
    "member id past PostgreSQL's integers": (404, "no member", b"GET /api/members/999999999999999999", ADMIN, b""),
    "returned quantity past SQL's integers": (
        400, "lines[0].qty: a whole number from 1 to 2147483647", b"POST /api/orders/X/return", JSON,
        b'{"lines": [{"code": "A", "qty": ' + BEYOND_SQL + b"}]}",
    ),
    "live video id of 70 digits": (
        400, "video_id must be", b"POST /api/live-videos", JSON,
        b'{"campaign": "live", "video_id": 1' + b"0" * 70 + b"}",
    ),
    "live video id in superscript digits": (
        400, "video_id must be", b"POST /api/live-videos", JSON, b'{"campaign": "live", "video_id": "\\u00b3"}'
    ),
    "lone surrogate in a FAQ rule": (
        400, "reply: a lone surrogate", b"PUT /api/pages/" + PAGE_ID.encode() + b"/faq/hours", JSON,
        b'{"keywords": ["hours"], "reply": "open \\ud800"}',
    ),
    "lone surrogate in a field's name": (
        400, "body (a key): a lone surrogate", b"PATCH /api/products/A", JSON, b'{"\\udfff": 1}'
    ),
    "lone surrogate in a live video's campaign": (
        400, "campaign: a lone surrogate", b"POST /api/live-videos", JSON, b'{"campaign": "\\ud800", "video_id": "1"}'
    ),
    "lone surrogate deep in a return": (
        400, "lines[0].variant.size: a lone surrogate", b"POST /api/orders/X/return", JSON,
        b'{"lines": [{"code": "A", "qty": 1, "variant": {"size": "\\udc00"}}]}',
    ),
}  # fmt: skip


@pytest.mark.parametrize(("status", "reason", "line", "headers", "body"), SIGNED_IN.values(), ids=SIGNED_IN)
async def test_a_signed_in_users_bad_numbers_and_text_get_a_4xx_with_the_reason_and_change_nothing(
    site: Site, status: int, reason: str, line: bytes, headers: bytes, body: bytes
) -> None:
    """Ids past the columns' range reached the SQL driver (OverflowError), 5000 digits reached int(), and
    a lone surrogate from JSON reached SQL or the answer's encoder: each a 500 (some on PostgreSQL only)."""
    await assert_refused(site, status, reason, fill(site, line), fill(site, headers), fill(site, body))


@pytest.mark.parametrize(
    ("text", "low", "high", "expected"),
    [
        ("12", 1, 100, 12),
        (" 12 ", 1, 100, 12),
        ("-5", -10, 10, -5),
        ("+5", -10, 10, 5),
        ("0012", 1, 100, 12),
        ("-5", 1, 10, None),  # no sign where negatives are not allowed
        ("³", 1, 100, None),  # str.isdigit() says yes
        ("٣", 1, 100, None),  # int() says 3
        ("1_0", 1, 100, None),  # int() says 10
        ("", 1, 100, None),
        ("101", 1, 100, None),
        ("9" * 5000, 1, 100, None),  # int() raises
        ("9" * 41, 1, 10**50, None),  # no longer text is read
    ],
)
def test_a_whole_number_is_ascii_digits_within_its_bounds(text: str, low: int, high: int, expected: int | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match=rf"^a whole number from {low} to {high}$"):
            read_int(text, low, high)
    else:
        assert read_int(text, low, high) == expected


@pytest.mark.parametrize(
    ("value", "ok"), [(5, True), (0, False), (11, False), (True, False), ("5", False), (5.0, False)]
)
def test_a_json_whole_number_is_an_int_within_its_bounds(value: object, ok: bool) -> None:
    if ok:
        assert json_int(value, 1, 10) == value
    else:
        with pytest.raises(ValueError, match=r"^a whole number from 1 to 10$"):
            json_int(value, 1, 10)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("128.00", Decimal("128.00")),
        (" 12.5 ", Decimal("12.5")),
        (12, Decimal(12)),
        (Decimal("0.01"), Decimal("0.01")),
        ("9e9999999", None),  # finite, and ten million digits when printed
        ("1e-9999999", None),
        ("NaN", None),
        ("Infinity", None),
        ("-1", None),
        ("1.001", None),
        ("1000", None),  # the bound is exclusive
        (True, None),
        (None, None),
        ("1" * 41, None),
    ],
)
def test_a_decimal_is_finite_within_its_bounds_and_places(value: object, expected: Decimal | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match=r"^a number from 0 to below 1,000, 2 decimals at most$"):
            read_decimal(value, Decimal(0), Decimal(1000))
    else:
        assert read_decimal(value, Decimal(0), Decimal(1000)) == expected
