"""Fuzz the running server (issue 9, "bad input"): junk webhook bodies and junk admin requests.

The whole bot runs as `plusone serve` runs it (`tests/test_bot/stack.py`: web, worker, outbox, real Redis
and SQLite). Hypothesis draws the junk (`tests/fuzz_strategies.py`), derandomized so every run and CI
sees the same bodies (a fixed @seed; no example database). About 90 s for the webhook part and 20 s for
the admin part on a 2-core machine:

- Webhook: FUZZ_BODIES bodies (default 10,000), each signed with the app secret so it passes the
  signature check and reaches the worker, posted concurrently with valid order comments interleaved.
  After each example (50 bodies): no answer is a 5xx, the worker and the other loops still run; every
  10 examples and after the last: the stream drains, every valid comment has its outcome and decided
  stock claim, dead letters hold only junk that failed (with its error), never junk it could only ignore.
- Admin API: FUZZ_REQUESTS requests (default 1,000) to every route the app's router has under /api/
  and /checkout/ (checkout and payments included), with junk or real ids, query strings and bodies (JSON,
  forms, bytes; signed payments too), mostly with the admin token. No answer is a 5xx, every 4xx says why,
  and a refused request changes no row of any table (the outbox aside).

Cases the fuzzer found are kept at the end as plain tests.

A longer fuzz: `FUZZ_BODIES=100000 FUZZ_REQUESTS=20000 .venv/bin/pytest tests/test_fuzz.py -q
-p no:timeout` (add FUZZ_SEED=<n> for other bodies than CI's, FUZZ_SHRINK=1 to let Hypothesis shrink a
failing example to its smallest form; off by default, since each try replays a batch against the server).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlmodel import SQLModel

from bot.inbound import webhook_factory as wf
from bot.inbound.events import IgnoredEvent, TestPingEvent
from bot.inbound.live_payloads import parse_graph_time
from bot.inbound.payloads import parse_delivery
from bot.inbound.signature import sign_body
from bot.outbound.outbox import parse_outbox_metadata
from bot.runtime.clock import utcnow
from bot.runtime.metrics import event_field
from bot.services import JOURNEY_RUNNER, WORKER
from bot.store.tables import CommentLog, OutboxMessage
from bot.web.orders_api import SIGNATURE_HEADER, signature_of
from carts.order_tables import Order
from carts.tables import StockClaim
from tests.conftest import ADMIN_TOKEN, APP_SECRET, PAGE_ID, wait_until
from tests.fuzz_strategies import MAX_BODY, POST, json_bodies, path_ids, query_values, webhook_bodies
from tests.test_bot.stack import Stack, start_stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_web.test_checkout import VALID, comment_and_wait, form_of
from tests.test_bot.test_web.test_orders_api import order_for

BODIES = int(os.environ.get("FUZZ_BODIES", "10000"))
REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "1000"))
PER_EXAMPLE = 50  # bodies posted together (more would overrun what Hypothesis draws for one example)
EXAMPLES = max(1, BODIES // PER_EXAMPLE)
CHECK_EVERY = 10  # examples between checkpoints (and after the last one)
VALID_EVERY = 5  # one valid order comment after every 5 junk bodies
CONCURRENCY = 32
PAYMENT_SECRET = "payment-secret-for-fuzz"
SEED = int(os.environ.get("FUZZ_SEED", "20260509"))

FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,  # nothing read from or written to .hypothesis/: the same bodies every run
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.generate, *((Phase.shrink,) if os.environ.get("FUZZ_SHRINK") else ())),
    # One server serves every example (starting one per example would cost more than the fuzzing), and
    # the bodies are big on purpose.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@dataclass
class Run:
    """What one test's examples share: the server and what was sent to it."""

    stack: Stack
    unchecked: set[str] = field(default_factory=set)  # valid comments posted since the last checkpoint
    valid_bodies: set[bytes] = field(default_factory=set)
    posted: int = 0
    valid: int = 0
    examples: int = 0
    checkpoints: int = 0
    ignored_sent: int = 0  # accepted bodies with nothing but ignored events in them, since the last checkpoint
    ignored_counted: int = 0  # the server's count of ignored events at the last checkpoint


@pytest.fixture
async def run(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Run]:  # type: ignore[no-untyped-def]
    """The whole bot with the comment-order shop (a payment secret too, so /api/payments is reachable)."""
    async for stack in start_stack(
        aiohttp_client,
        tmp_path,
        redis_server,
        fallback_cooldown_s=3600,
        payment_secret=SecretStr(PAYMENT_SECRET),
    ):
        # Meta's echoes of the bot's thousands of answers would only double the worker's load: echoes are
        # among the fuzzed kinds already, and the time goes to the junk instead.
        stack.emulator.config.send_echoes = False
        # Plenty of stock: junk orders on the campaign post must not be what decides a valid comment.
        await seed_shop(stack.sessions, stock=10_000_000)
        yield Run(stack)


def background_tasks(stack: Stack) -> dict[str, asyncio.Task[Any]]:
    return {t.get_name(): t for t in asyncio.all_tasks() if t.get_name().startswith("plusone-")}


async def assert_running(stack: Stack) -> None:
    """The worker and the other background loops are alive: none finished, none crashed."""
    tasks = background_tasks(stack)
    assert {"plusone-worker", "plusone-outbox", "plusone-crm", "plusone-live-comments"} <= set(tasks)
    for name, task in tasks.items():
        assert not task.done(), f"{name} stopped: {task.exception() if not task.cancelled() else 'cancelled'}"
    assert not stack.client.app[WORKER].finished.is_set()


# --- webhook ---------------------------------------------------------------------------------------------

_valid_numbers = itertools.count(1)


def valid_comment() -> tuple[str, bytes]:
    """An order comment on the campaign post by a new shopper: its comment id and body."""
    n = next(_valid_numbers)
    comment_id = f"2000000000001_7{n:09d}"
    body = wf.encode(
        wf.comment_delivery(
            page_id=PAGE_ID, post_id=POST, message="A+1", user_id=str(3_100_000_000 + n), comment_id=comment_id
        )
    )
    return comment_id, body


async def post_all(stack: Stack, bodies: list[bytes]) -> list[tuple[int, str]]:
    """Post every body, signed, CONCURRENCY at a time; each answer's status and text."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(body: bytes) -> tuple[int, str]:
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign_body(body, APP_SECRET)}
        async with gate, stack.client.post("/webhook", data=body, headers=headers) as response:
            return response.status, await response.text()

    return await asyncio.gather(*(one(b) for b in bodies))


def ignored_only(body: bytes) -> bool:
    """The server cannot do anything with it: every event in it is ignored (parse_delivery never raises)."""
    return all(isinstance(e, IgnoredEvent | TestPingEvent) for e in parse_delivery(body))


def excerpt(body: bytes) -> str:
    return repr(body[:300]) + (f"... ({len(body)} bytes)" if len(body) > 300 else "")


async def counter(stack: Stack, name: str) -> int:
    return int((await stack.client.app[WORKER].stream.counters()).get(name.encode(), 0))


async def checkpoint(run: Run) -> None:
    """Everything posted so far is settled: the stream drained, every valid comment has its outcome and
    its decided claim, dead letters hold only junk that had something to fail on, each with its error."""
    stack, stream = run.stack, run.stack.client.app[WORKER].stream

    async def drained() -> bool:
        gauges = await stream.gauges()
        return gauges.backlog == 0 and gauges.pending == 0

    await wait_until(drained, limit=60, what="the ingest stream to drain (every entry acknowledged or dead)")
    await assert_running(stack)
    valid = list(run.unchecked)

    async def decided() -> bool:
        claims = await stack.rows(select(StockClaim).where(StockClaim.comment_id.in_(valid)))
        return len(claims) == len(valid) and all(c.status in ("held", "waitlisted") for c in claims)

    await wait_until(decided, what="a decided stock claim for every valid comment")
    logged = await stack.rows(select(CommentLog).where(CommentLog.comment_id.in_(valid)))
    assert sorted((row.comment_id, row.outcome in ("added", "waitlisted")) for row in logged) == sorted(
        (comment_id, True) for comment_id in valid
    )
    for letter in await stream.list_dead_letters(count=100_000):
        assert letter.body not in run.valid_bodies, f"a valid comment was dead-lettered: {letter.error}"
        assert letter.error.strip(), f"dead letter {letter.id} has no error"
        # What the server cannot do anything with is acknowledged as ignored, never retried to death.
        assert not ignored_only(letter.body), f"junk it could only ignore was dead-lettered: {letter.error}"
    ignored = await counter(stack, event_field("ignored", "ignored"))
    assert ignored - run.ignored_counted >= run.ignored_sent
    run.unchecked.clear()
    run.ignored_counted, run.ignored_sent = ignored, 0
    run.checkpoints += 1


@pytest.mark.timeout(600)  # about 90 s here; more on a busy machine or PostgreSQL, never a hang
@settings(FUZZ_SETTINGS, max_examples=EXAMPLES)
@seed(SEED)
@given(junk=st.lists(webhook_bodies, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
async def test_junk_webhook_bodies_get_no_5xx_stop_no_worker_and_lose_no_valid_comment(
    run: Run, junk: list[bytes]
) -> None:
    bodies: list[bytes] = []
    for i, body in enumerate(junk):
        bodies.append(body)
        if i % VALID_EVERY == VALID_EVERY - 1:
            comment_id, comment = valid_comment()
            run.unchecked.add(comment_id)
            run.valid += 1
            run.valid_bodies.add(comment)
            bodies.append(comment)

    answers = await post_all(run.stack, bodies)
    run.posted += len(junk)
    run.examples += 1
    failures = [(s, t, excerpt(b)) for (s, t), b in zip(answers, bodies, strict=True) if s >= 500]
    assert not failures, f"{len(failures)} answers were 5xx, the first: {failures[0]}"
    for (status, reason), body in zip(answers, bodies, strict=True):
        # Signed, so accepted; only a body over the size limit is refused, and it says why.
        expected = 413 if len(body) > MAX_BODY else 200
        assert (status, bool(reason.strip())) == (expected, True), excerpt(body)
        if status == 200 and ignored_only(body):
            run.ignored_sent += 1
    await assert_running(run.stack)
    # Settling takes a while (junk is retried before it is dead-lettered), so not after every example.
    if run.examples % CHECK_EVERY == 0 or run.examples == EXAMPLES:
        await checkpoint(run)
    if run.examples == EXAMPLES:  # what the run did, for `pytest -s` (and a failure's captured output)
        counters = await run.stack.client.app[WORKER].stream.counters()
        print(
            f"fuzz: {run.posted} junk bodies, {run.valid} valid comments;",
            {k.decode(): int(v) for k, v in counters.items()},
        )


# --- admin API -------------------------------------------------------------------------------------------

# The outbox's rows change as the sender works through them, whatever the admin API does.
VOLATILE_TABLES = {"outbox"}


async def snapshot(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the admin API can change, in a stable order."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    async with stack.sessions() as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in VOLATILE_TABLES:
                continue
            rows = (await session.execute(select(table))).all()
            state[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return state


async def settled(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    """The snapshot once background work has caught up: the outbox sent what it had, Meta's echoes of it
    came back through the webhook, the CRM consumer read the order events, the journeys took a round;
    nothing moved for a second."""
    stream = stack.client.app[WORKER].stream
    journeys = stack.client.app[JOURNEY_RUNNER]
    state, same = await snapshot(stack), 0
    for _ in range(100):
        await asyncio.sleep(0.25)
        if journeys is not None:  # its loop looks every few seconds: a round now, not after the settle
            await journeys.run_once(utcnow())
        busy = await stack.rows(select(OutboxMessage.id).where(OutboxMessage.status.in_(["pending", "sending"])))
        again = await snapshot(stack)
        same = same + 1 if again == state and not busy and (await stream.gauges()).backlog == 0 else 0
        if same == 4:
            return state
        state = again
    raise AssertionError("the database kept changing with no request in flight")


def diff(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> str:
    changed = [name for name in before if before[name] != after.get(name)]
    return ", ".join(f"{n}: {len(before[n])} -> {len(after[n])} rows" for n in changed)


@dataclass(frozen=True)
class AdminRequest:
    method: str
    path: str
    query: dict[str, str]
    body: bytes | None
    headers: dict[str, str]


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
QUERY_NAMES = ["active", "status", "psid", "limit", "after", "q", "new_days", "sleeping_days", "x"]
CONTENT_TYPES = [
    "application/json",
    "application/yaml",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
]


def fuzz_routes(stack: Stack) -> list[tuple[str, str]]:
    """(method, path template) of every admin and checkout route, from the app's router."""
    found = set()
    for route in stack.client.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and path.startswith(("/api/", "/checkout/")):
            found.add((route.method, path))
    return sorted(found)


@st.composite
def admin_request(draw: st.DrawFn, routes: list[tuple[str, str]], known: dict[str, list[str]]) -> AdminRequest:
    method, template = draw(st.sampled_from(routes))
    if draw(st.integers(0, 19)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))  # often the wrong one
    path = template
    for name in ("code", "key", "number", "page_id", "psid", "video_id", "id", "token"):
        if "{" + name + "}" in path:
            # Half the time a real id (the handler goes deeper), else junk.
            value = draw(st.sampled_from(known.get(name, ["x"])) | path_ids)
            path = path.replace("{" + name + "}", quote(value, safe=""))
    query = draw(st.dictionaries(st.sampled_from(QUERY_NAMES), query_values, max_size=3))
    body = draw(st.none() | json_bodies) if method != "GET" else None
    headers = dict(ADMIN) if draw(st.integers(0, 9)) else draw(st.sampled_from([{}, {"Authorization": "Bearer x"}]))
    headers["Content-Type"] = draw(st.sampled_from(CONTENT_TYPES)) if body is not None else "application/json"
    if template == "/api/payments" and body is not None and draw(st.booleans()):
        headers[SIGNATURE_HEADER] = signature_of(PAYMENT_SECRET.encode(), body)  # signed junk
    return AdminRequest(method, path, query, body, headers)


@dataclass
class AdminRun:
    routes: list[tuple[str, str]]
    known: dict[str, list[str]]
    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    accepted_changes: list[str] = field(default_factory=list)
    state: dict[str, list[tuple[Any, ...]]] | None = None  # the database as the last request left it


@pytest.fixture
async def admin(run: Run) -> AdminRun:
    """An order, a member, an FAQ rule, a conversation: real ids for the fuzzed paths to find."""
    stack = run.stack
    number = await order_for(stack, "3000000000777", "A+1")
    rule = {"keywords": ["hours", "營業時間"], "reply": "10:00-20:00"}
    response = await stack.client.put(f"/api/pages/{PAGE_ID}/faq/hours", json=rule, headers=ADMIN)
    assert response.status == 201, await response.text()
    async with stack.sessions() as session:
        token = (await session.execute(text("select token from checkout_token limit 1"))).scalar_one()
        member = (await session.execute(text("select id from crm_member limit 1"))).scalar_one_or_none()
    known = {
        "code": ["A", "b"],
        "key": ["live", "hours"],
        "number": [number, number.lower()],
        "page_id": [PAGE_ID],
        "psid": ["3000000000777"],
        "token": [token],
        "id": [str(member or 1), "1-0"],
        "video_id": ["5000000000001"],
    }
    return AdminRun(fuzz_routes(stack), known)


async def send(stack: Stack, request: AdminRequest) -> tuple[int, str, str]:
    async with stack.client.request(
        request.method, request.path, params=request.query, data=request.body, headers=request.headers
    ) as response:
        return response.status, response.content_type, await response.text()


@pytest.mark.timeout(600)
@settings(FUZZ_SETTINGS, max_examples=max(1, REQUESTS // 50))
@seed(SEED)
@given(data=st.data())
async def test_junk_admin_requests_get_no_5xx_and_a_refused_one_changes_nothing(
    run: Run, admin: AdminRun, data: st.DataObject
) -> None:
    stack = run.stack
    assert ("PATCH", "/api/products/{code}") in admin.routes and ("POST", "/api/payments") in admin.routes
    before = admin.state if admin.state is not None else await settled(stack)
    for _ in range(50):
        request = data.draw(admin_request(admin.routes, admin.known))
        status, content_type, reason = await send(stack, request)
        admin.sent += 1
        admin.by_status[status] = admin.by_status.get(status, 0) + 1
        where = f"{request.method} {request.path} {request.query} {excerpt(request.body or b'')}"
        assert status < 500, f"{where} -> {status}: {reason[:500]}"
        if status >= 400:
            assert reason.strip(), f"{where} -> {status} without a reason"
            if content_type == "application/json":
                assert json.loads(reason).get("error"), f"{where} -> {status}: {reason[:300]}"
        if request.method == "GET":
            continue  # reads: compared with the database after the next change, which is enough and quicker
        if status >= 400:
            after = await snapshot(stack)
            assert after == before, f"{where} -> {status} changed {diff(before, after)}"
        else:
            admin.accepted_changes.append(f"{request.method} {request.path}")
            before = await settled(stack)  # an accepted request may change what it was asked to
    admin.state = before
    await assert_running(stack)
    if admin.sent >= REQUESTS:
        print(f"fuzz: {admin.sent} admin requests;", sorted(admin.by_status.items()), admin.accepted_changes)
    # The shop still works: its catalogue, campaigns, FAQ and orders load.
    for path in ("/api/products", "/api/campaigns", f"/api/pages/{PAGE_ID}/faq", "/api/orders"):
        response = await stack.client.get(path, headers=ADMIN)
        assert response.status == 200, f"{path}: {await response.text()}"


# --- what the fuzzer found, kept as plain cases --------------------------------------------------------


async def test_a_checkout_post_that_is_no_form_gets_400_and_places_nothing(run: Run) -> None:
    """A multipart body without its boundary made aiohttp's form reader raise: the checkout answered 500."""
    bot_stack = run.stack
    token = await comment_and_wait(bot_stack, "A+1", psid="3000000000901")
    response = await bot_stack.client.post(
        f"/checkout/{token}", data=b"null", headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert response.status == 400 and "could not be read" in await response.text()
    assert await bot_stack.rows(select(Order)) == []
    assert (await bot_stack.client.get(f"/checkout/{token}")).status == 200  # the checkout is still there


def odd_time_delivery(value: str) -> bytes:
    item = {
        "sender": {"id": "3100000000001"},
        "recipient": {"id": PAGE_ID},
        "timestamp": value,
        "message": {"mid": "m_1"},
    }
    return json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": value, "messaging": [item]}]}).encode()


@pytest.mark.parametrize("value", ["³", "1²", "①"])
def test_a_time_in_digits_int_cannot_read_is_ignored_not_raised(value: str) -> None:
    """str.isdigit() says yes to "³" and int() says no: parse_delivery raised, against its promise."""
    [event] = parse_delivery(odd_time_delivery(value))
    assert isinstance(event, IgnoredEvent) and event.reason == "messaging item without sender, recipient or time"


async def test_a_delivery_with_such_a_time_costs_no_valid_comment_beside_it(run: Run) -> None:
    """It failed the worker's whole batch, so the valid comments read with it were retried to death."""
    stream = run.stack.client.app[WORKER].stream
    comment_id, comment = valid_comment()
    # Appended together, so the worker reads them in one batch.
    await asyncio.gather(stream.append(odd_time_delivery("³")), stream.append(comment))

    async def decided() -> bool:
        claims = await run.stack.rows(select(StockClaim).where(StockClaim.comment_id == comment_id))
        return [c.status for c in claims] == ["held"]

    await wait_until(decided, what="the valid comment's stock held")
    assert await stream.list_dead_letters() == []


async def test_if_the_parser_ever_raises_only_that_entry_fails(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker parsed outside its per-entry guard: one raising body failed every entry of its batch."""
    import bot.inbound.worker

    def parser_with_a_bug(body: bytes) -> list[Any]:
        if b"PARSER-BUG" in body:
            raise RuntimeError("a parser bug")
        return parse_delivery(body)

    monkeypatch.setattr(bot.inbound.worker, "parse_delivery", parser_with_a_bug)
    stream = run.stack.client.app[WORKER].stream
    comment_id, comment = valid_comment()
    await asyncio.gather(stream.append(b'{"object": "PARSER-BUG"}'), stream.append(comment))

    async def settled() -> bool:
        gauges = await stream.gauges()
        claims = await run.stack.rows(select(StockClaim).where(StockClaim.comment_id == comment_id))
        # Held once the bad entry, before it in the stream, has left it (the allocator keeps to arrival order).
        return (gauges.backlog, gauges.dead_letters, [c.status for c in claims]) == (0, 1, ["held"])

    await wait_until(settled, what="the bad entry dead-lettered and the valid comment's stock held")
    [letter] = await stream.list_dead_letters()
    assert letter.body == b'{"object": "PARSER-BUG"}' and "a parser bug" in letter.error


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/members/%C2%B3", 404),
        ("/api/members/%C2%B3/orders", 404),
        ("/api/members/rfm?new_days=%C2%B3", 400),
        ("/api/orders?limit=%C2%B3", 400),
    ],
)
async def test_numbers_in_digits_int_cannot_read_get_4xx(run: Run, path: str, status: int) -> None:
    """`"³".isdigit()` let these through to int(), which raised: 500."""
    response = await run.stack.client.get(path, headers=ADMIN)
    assert response.status == status and (await response.json())["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/dead-letters?after=%C2%AD%C3%B6"),
        ("GET", "/api/dead-letters?after=1-2-3"),
        ("POST", "/api/dead-letters/%C2%B3-0/retry"),
        ("POST", "/api/dead-letters/99999999999999999999-0/retry"),
    ],
)
async def test_dead_letter_ids_redis_would_refuse_get_400(run: Run, method: str, path: str) -> None:
    """They went to XRANGE as they were, and Redis' "Invalid stream ID" error became a 500."""
    response = await run.stack.client.request(method, path, headers=ADMIN)
    assert response.status == 400 and "1700000000000-0" in await response.text()


async def test_checkout_points_in_digits_int_cannot_read_are_a_form_error(run: Run) -> None:
    """The checkout's optional points field went to int() after isdigit(): "³" answered 500."""
    stack = run.stack
    token = await comment_and_wait(stack, "A+1", psid="3000000000902")
    hidden = form_of(await (await stack.client.get(f"/checkout/{token}")).text())
    response = await stack.client.post(f"/checkout/{token}", data={**VALID, **hidden, "points": "³"})
    assert response.status == 400 and "whole number of points" in await response.text()
    assert await stack.rows(select(Order)) == []


@pytest.mark.parametrize("parse", [parse_outbox_metadata, parse_graph_time])
def test_other_readers_of_digits_take_only_ascii_ones(parse: Any) -> None:
    """Meta's echo metadata (a forged one) and a live comment's time: "³" raised in the worker and the live reader."""
    prefix = "plusone:outbox:" if parse is parse_outbox_metadata else ""
    assert parse(prefix + "³") is None and parse(prefix + "١٢٣") is None
    assert parse(prefix + "123") == 123


@pytest.mark.parametrize("field_name", [["comments"], {"comments": 1}])
def test_an_instagram_change_whose_field_is_no_text_is_ignored_not_raised(field_name: Any) -> None:
    """`field in {"comments", ...}` raised TypeError (unhashable) for a list or object."""
    body = {
        "object": "instagram",
        "entry": [{"id": "17841400000000001", "changes": [{"field": field_name, "value": {}}]}],
    }
    [event] = parse_delivery(json.dumps(body).encode())
    assert isinstance(event, IgnoredEvent) and event.reason == "unknown field"
