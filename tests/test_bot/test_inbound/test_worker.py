"""The worker, end to end through the real web edge, Redis stream and SQLite database."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import create_app
from bot.background import build_dispatcher, worker_settings
from bot.inbound import webhook_factory as wf
from bot.inbound.events import CommentEvent, EventKind, MessageEvent
from bot.inbound.ingest import IngestStream
from bot.inbound.router import Router
from bot.inbound.worker import Worker
from bot.runtime.redis_keys import CONSUMER_GROUP
from bot.services import INGEST, SESSIONS, WORKER
from bot.store.conversations import BOT_METADATA_PREFIX
from bot.store.tables import CommentLog, Conversation, Message, ProcessedEvent
from config.settings import Settings
from tests.conftest import ADMIN_TOKEN, APP_SECRET, PAGE_ID, load_sample, wait_until

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def start(aiohttp_client, settings: Settings, router: Router | None = None) -> TestClient:  # type: ignore[no-untyped-def]
    """The spine alone: recorders, plus only the bot handlers a test registers."""
    return await aiohttp_client(create_app(settings, dispatcher=build_dispatcher(settings, router or Router())))


async def post(client: TestClient, payload: dict[str, Any] | bytes) -> None:
    body, headers = wf.signed(payload, APP_SECRET)
    resp = await client.post("/webhook", data=body, headers=headers)
    assert resp.status == 200, await resp.text()


async def count(client: TestClient, model: Any, *where: Any) -> int:
    async with client.app[SESSIONS]() as session:
        return (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


async def rows(client: TestClient, stmt: Any) -> list[Any]:
    async with client.app[SESSIONS]() as session:
        return list((await session.execute(stmt)).scalars())


async def drained(client: TestClient) -> bool:
    gauges = await client.app[INGEST].gauges()
    return gauges.backlog == 0


async def test_every_sample_webhook_is_stored_as_the_right_effect(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    samples = [
        "feed_comment_add.json",
        "feed_comment_reply.json",
        "feed_comment_edited.json",
        "feed_comment_remove.json",
        "feed_reaction_add_on_comment.json",
        "live_videos_status_live.json",
        "messenger_echo.json",
        "messenger_image_attachment.json",
        "messenger_postback.json",
        "messenger_quick_reply.json",
        "messenger_referral_mme_existing_thread.json",
        "messenger_text.json",
    ]
    for name in samples:
        await post(client, load_sample(name))
    await wait_until(lambda: drained(client), what="stream drained")

    comments = await rows(client, select(CommentLog).order_by(CommentLog.id))
    assert [(c.verb, c.outcome) for c in comments] == [
        ("add", "ignored"),  # the Page's own comment (from.id == page id)
        ("add", "received"),
        ("edited", "received"),
        ("remove", "ignored"),  # the sample's remover is the Page itself
    ]
    assert comments[1].message == "Good" and comments[1].author_name == "user"
    messages = await rows(client, select(Message).order_by(Message.id))
    assert [(m.author, m.kind, m.text) for m in messages] == [
        ("agent", "text", "text"),  # echo from another app (the Page inbox): a human agent
        ("shopper", "attachment", None),
        ("shopper", "postback", None),
        ("shopper", "quick_reply", "Red"),
        ("shopper", "referral", None),
        ("shopper", "text", "text"),
    ]
    assert json.loads(messages[3].payload)["quick_reply"] == "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED"
    assert json.loads(messages[4].payload)["referral"]["ref"] == "aaaa"
    # The three postback/quick-reply/image events share one Page and shopper: one conversation.
    assert await count(client, Conversation, Conversation.page_id == "404217156637689") == 1
    assert await count(client, ProcessedEvent, ProcessedEvent.kind == "live_video") == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'plusone_events_total{kind="ignored",outcome="ignored"} 1.0' in metrics  # the reaction
    assert 'plusone_events_total{kind="message",outcome="processed"} 3.0' in metrics
    assert 'plusone_events_total{kind="message",outcome="own"} 1.0' in metrics  # the echo


async def test_a_batch_of_1000_changes_is_1000_effects(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    changes = [
        wf.comment_change(
            page_id=PAGE_ID, post_id="55", message=f"A+{i % 5 + 1}", user_id=str(10_000 + i), comment_id=f"55_{i}"
        )
        for i in range(1000)
    ]
    await post(client, wf.page_delivery([{"id": PAGE_ID, "time": 1, "changes": changes}]))
    # A thousand effects take a busy 2-core machine (PostgreSQL, other test processes) well over 10 s.
    await wait_until(lambda: drained(client), limit=120, what="stream drained")
    assert await count(client, CommentLog, CommentLog.outcome == "received") == 1000
    logged = await rows(client, select(CommentLog.comment_id).order_by(CommentLog.id))
    assert logged == [f"55_{i}" for i in range(1000)]


async def test_the_same_delivery_twice_has_one_effect(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    payload = wf.comment_delivery(page_id=PAGE_ID, post_id="55", message="B+2", user_id="42", comment_id="55_1")
    message = wf.message_delivery(page_id=PAGE_ID, psid="42", text="hi", mid="m-once")
    for _ in range(2):
        await post(client, payload)
        await post(client, message)
    await wait_until(lambda: drained(client), what="stream drained")
    assert await count(client, CommentLog) == 1
    assert await count(client, Message) == 1
    conversation = (await rows(client, select(Conversation)))[0]
    assert conversation.unread == 1
    text = await (await client.get("/metrics")).text()
    assert 'plusone_events_total{kind="comment",outcome="duplicate"} 1.0' in text


async def test_an_entry_read_by_a_crashed_worker_is_reclaimed_and_applied_once(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    app_worker = client.app[WORKER]
    app_worker.stop()  # stop the app's own worker so the crash can be staged by hand
    await wait_until(lambda: _stopped(app_worker), what="app worker stopped")
    stream: IngestStream = client.app[INGEST]
    await stream.ensure_group()

    # Worker A reads entry 1 and dies before doing anything.
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="one", mid="m-1"))
    assert len(await stream.read("worker-a", 10, 10)) == 1
    # Worker B reads entry 2, commits its effects, and dies before acknowledging.
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="two", mid="m-2"))
    worker_b = Worker(stream, client.app[SESSIONS], build_dispatcher(settings), worker_settings(settings), "worker-b")
    entries = await stream.read("worker-b", 10, 10)
    result = await worker_b._apply(entries)  # commit without the acknowledgement
    assert result.done == [entries[0].id]
    pending = await stream.redis.xpending(stream.keys.ingest_stream, CONSUMER_GROUP)
    assert pending["pending"] == 2

    # Worker C comes up and, once the entries are idle long enough, takes both over.
    worker_c = Worker(stream, client.app[SESSIONS], build_dispatcher(settings), worker_settings(settings), "worker-c")
    import asyncio

    task = asyncio.create_task(worker_c.run())
    try:
        await wait_until(lambda: drained(client), what="entries reclaimed")
    finally:
        worker_c.stop()
        await task
    texts = await rows(client, select(Message.text).order_by(Message.id))
    assert texts == ["two", "one"]  # each applied exactly once
    assert (await stream.redis.xpending(stream.keys.ingest_stream, CONSUMER_GROUP))["pending"] == 0


async def _stopped(worker: Worker) -> bool:
    return worker.finished.is_set()


class Boom(RuntimeError):
    pass


async def test_a_failing_handler_dead_letters_the_entry_and_retry_works(aiohttp_client, settings) -> None:
    router = Router()
    state = {"broken": True, "handled": []}

    @router.on(EventKind.MESSAGE)
    async def fragile(event: MessageEvent, ctx) -> None:  # type: ignore[no-untyped-def]
        if state["broken"] and event.text == "poison":
            raise Boom("cannot handle poison")
        state["handled"].append(event.text)

    client = await start(aiohttp_client, settings, router)
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="poison", mid="m-poison"))
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="43", text="fine", mid="m-fine"))

    async def dead_lettered() -> bool:
        resp = await client.get("/api/dead-letters", headers=ADMIN)
        return len((await resp.json())["dead_letters"]) == 1

    await wait_until(dead_lettered, what="dead letter")
    await wait_until(lambda: drained(client), what="stream drained")
    letters = (await (await client.get("/api/dead-letters", headers=ADMIN)).json())["dead_letters"]
    assert letters[0]["attempts"] == settings.worker_max_attempts
    assert "cannot handle poison" in letters[0]["error"]
    assert letters[0]["body"]["entry"][0]["messaging"][0]["message"]["text"] == "poison"
    assert state["handled"] == ["fine"]  # the entry beside it was not held up
    assert await count(client, Message) == 1  # the poison's effects were rolled back

    assert (await client.get("/api/dead-letters")).status == 401
    assert (await client.post(f"/api/dead-letters/{letters[0]['id']}/retry")).status == 401
    assert (await client.post("/api/dead-letters/1-0/retry", headers=ADMIN)).status == 404
    assert (await client.post("/api/dead-letters/nonsense/retry", headers=ADMIN)).status == 400
    assert (await client.get("/api/dead-letters?limit=0", headers=ADMIN)).status == 400

    state["broken"] = False  # the merchant's fix is deployed
    resp = await client.post(f"/api/dead-letters/{letters[0]['id']}/retry", headers=ADMIN)
    assert resp.status == 200
    await wait_until(lambda: drained(client), what="retried entry processed")
    assert state["handled"] == ["fine", "poison"]
    assert await count(client, Message) == 2
    assert (await (await client.get("/api/dead-letters", headers=ADMIN)).json())["dead_letters"] == []
    metrics = await (await client.get("/metrics")).text()
    assert 'plusone_dead_letters_total{action="added"} 1.0' in metrics
    assert 'plusone_dead_letters_total{action="retried"} 1.0' in metrics


async def test_echoes_and_the_pages_own_comments_never_reach_the_bot(aiohttp_client, settings) -> None:
    router = Router()
    seen: list[str] = []

    @router.on(EventKind.MESSAGE, EventKind.COMMENT)
    async def bot_handler(event, ctx) -> None:  # type: ignore[no-untyped-def]
        seen.append(event.key)

    client = await start(aiohttp_client, settings, router)
    shopper = "3000000000042"
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid=shopper, text="hi", mid="m-shopper"))
    await post(
        client,
        wf.message_delivery(
            page_id=PAGE_ID,
            psid=shopper,
            text="Hello, how can I help?",
            mid="m-agent",
            echo=True,
            app_id="263902037430900",
        ),
    )
    await post(
        client,
        wf.message_delivery(
            page_id=PAGE_ID, psid=shopper, text="Your cart", mid="m-bot", echo=True, app_id=settings.app_id
        ),
    )
    await post(
        client,
        wf.message_delivery(
            page_id=PAGE_ID,
            psid=shopper,
            text="Sent by us",
            mid="m-bot2",
            echo=True,
            metadata=f"{BOT_METADATA_PREFIX}outbox:9",
        ),
    )
    await post(
        client,
        wf.comment_delivery(
            page_id=PAGE_ID, post_id="55", message="Thanks! A+1 is in your cart", user_id=PAGE_ID, comment_id="55_page"
        ),
    )
    await post(
        client,
        wf.comment_delivery(page_id=PAGE_ID, post_id="55", message="A+1", user_id=shopper, comment_id="55_shopper"),
    )
    await wait_until(lambda: drained(client), what="stream drained")
    assert seen == ["mid:m-shopper", "comment:55_shopper:add"]
    authors = await rows(client, select(Message.author).order_by(Message.id))
    assert authors == ["shopper", "agent", "bot", "bot"]
    outcomes = await rows(client, select(CommentLog.outcome).order_by(CommentLog.id))
    assert outcomes == ["ignored", "received"]


async def test_router_first_match_wins_and_filters_feed_arguments(aiohttp_client, settings) -> None:
    router = Router()
    calls: list[tuple[str, Any]] = []

    def order_filter(event: CommentEvent, ctx) -> dict[str, str] | bool:  # type: ignore[no-untyped-def]
        return {"order": event.message.upper()} if event.message and "+" in event.message else False

    @router.on(EventKind.COMMENT, filters=[order_filter])
    async def handle_order(event, ctx, order: str) -> None:  # type: ignore[no-untyped-def]
        calls.append(("order", order))

    @router.on(EventKind.COMMENT)
    async def handle_any_comment(event, ctx) -> None:  # type: ignore[no-untyped-def]
        calls.append(("chatter", event.message))

    @router.on(EventKind.COMMENT)
    async def never_reached(event, ctx) -> None:  # type: ignore[no-untyped-def]
        calls.append(("never", event.message))

    client = await start(aiohttp_client, settings, router)
    await post(client, wf.comment_delivery(page_id=PAGE_ID, post_id="55", message="a+1", user_id="7", comment_id="1"))
    await post(
        client, wf.comment_delivery(page_id=PAGE_ID, post_id="55", message="so pretty", user_id="7", comment_id="2")
    )
    await wait_until(lambda: drained(client), what="stream drained")
    assert calls == [("order", "A+1"), ("chatter", "so pretty")]


async def test_delivery_and_read_watermarks_mark_outgoing_messages(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    psid = "3000000000077"
    t0 = 1_790_000_000_000
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid=psid, text="hi", mid="in-1", timestamp=t0))
    for i, ts in enumerate([t0 + 1000, t0 + 2000, t0 + 5000]):
        await post(
            client,
            wf.message_delivery(
                page_id=PAGE_ID,
                psid=psid,
                text=f"reply {i}",
                mid=f"out-{i}",
                timestamp=ts,
                echo=True,
                app_id=settings.app_id,
            ),
        )
    base = {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": t0 + 6000}
    await post(client, wf.messaging_delivery(PAGE_ID, [{**base, "delivery": {"watermark": t0 + 2000}}]))
    await post(client, wf.messaging_delivery(PAGE_ID, [{**base, "read": {"watermark": t0 + 1000}}]))
    await wait_until(lambda: drained(client), what="stream drained")
    out = await rows(client, select(Message).where(Message.direction == "out").order_by(Message.sent_at))
    assert [m.delivered_at is not None for m in out] == [True, True, False]
    assert [m.read_at is not None for m in out] == [True, False, False]
    conversation = (await rows(client, select(Conversation)))[0]
    assert conversation.unread == 0  # the shopper read the thread
    assert conversation.last_user_at is not None
    assert conversation.last_user_at.timestamp() * 1000 == t0  # echoes do not open the window


async def test_healthz_reports_redis_database_and_lag(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["checks"]["redis"] == "ok" and body["checks"]["database"] == "ok"
    assert body["checks"]["stream"]["backlog"] == 0


async def test_stop_finishes_and_returns(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    worker = client.app[WORKER]
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="last one", mid="m-last"))
    await wait_until(lambda: drained(client), what="stream drained")
    worker.stop()
    await wait_until(lambda: _stopped(worker), what="stop")
    assert worker.processed_entries == 1


async def test_a_database_outage_holds_the_batch_and_charges_no_attempt(aiohttp_client, tmp_path, redis_server) -> None:  # type: ignore[no-untyped-def]
    """While the database is down (restarting, say) every batch fails as a whole: that is not the entries'
    fault, so none may be dead-lettered however long it lasts; the batch is applied once it is back."""
    import asyncio

    from bot.store.db import create_engine, session_factory
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, redis_server.url, worker_max_attempts=1)  # any charged failure: a dead letter
    client = await start(aiohttp_client, settings)
    worker = client.app[WORKER]
    working = worker.sessions
    gone = session_factory(await asyncio.to_thread(create_engine, f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/x.db"))
    tries = {"n": 0}

    def down():  # type: ignore[no-untyped-def]
        tries["n"] += 1
        return gone()

    worker.sessions = down
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="44", text="during the outage", mid="m-outage"))

    async def tried_again() -> bool:
        return tries["n"] >= 3

    await wait_until(tried_again, what="the worker retrying the held batch")
    letters = (await (await client.get("/api/dead-letters", headers=ADMIN)).json())["dead_letters"]
    assert letters == []
    worker.sessions = working  # the database is back
    await wait_until(lambda: drained(client), what="the held batch applied")
    assert [m.text for m in await rows(client, select(Message))] == ["during the outage"]
    assert (await (await client.get("/api/dead-letters", headers=ADMIN)).json())["dead_letters"] == []


class StillClock:
    """A monotonic clock that stands still until a test moves it."""

    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at

    def move(self, seconds: float) -> None:
        self.at += seconds


async def _worker_with_pass(client: TestClient, settings: Settings, calls: list[int]) -> Worker:
    """A second worker beside the app's (stopped) one, with an in-batch hook and an after-batch pass that
    notes how many entries the stream still had waiting when it ran."""
    app_worker = client.app[WORKER]
    app_worker.stop()
    await wait_until(lambda: _stopped(app_worker), what="app worker stopped")
    stream: IngestStream = client.app[INGEST]
    await stream.ensure_group()

    async def after_batch() -> None:
        calls.append(len(await stream.redis.xrange(stream.keys.ingest_stream)))

    async def in_batch(_session: Any, _ids: list[str]) -> list[Any]:
        return []

    worker = Worker(
        stream,
        client.app[SESSIONS],
        build_dispatcher(settings),
        worker_settings(settings),
        "w",
        after_batch=after_batch,
        in_batch=in_batch,
        monotonic=StillClock(1_000.0),  # it moves only when a test moves it: a slow machine changes nothing
    )
    worker._last_after_batch = worker.monotonic()  # its first pass, at startup, is behind it
    return worker


async def test_the_after_batch_pass_waits_for_the_entries_already_in_the_stream(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    calls: list[int] = []
    worker = await _worker_with_pass(client, settings, calls)
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="one", mid="m-1"))
    await worker.process(await worker.stream.read("w", 1, 10))
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="two", mid="m-2"))

    await worker._after_batch_when_due(worked=True)
    assert calls == []  # "two" was waiting: it goes first, already read
    waiting = [eid.decode() for eid, _ in await worker.stream.redis.xrange(worker.stream.keys.ingest_stream)]
    ready = await worker._next_entries()
    assert [e.id for e in ready] == waiting and len(waiting) == 1
    await worker.process(ready)
    await worker._after_batch_when_due(worked=True)
    assert calls == [0]  # drained: the pass runs, with nothing left in the stream
    await worker._after_batch_when_due(worked=False)
    assert calls == [0]  # idle, it waits its second


async def test_the_after_batch_pass_runs_at_least_once_a_second_however_busy(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    calls: list[int] = []
    worker = await _worker_with_pass(client, settings, calls)
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="one", mid="m-1"))
    assert isinstance(worker.monotonic, StillClock)
    worker.monotonic.move(1.5)  # a second and a half of batches go by without the pass
    await worker._after_batch_when_due(worked=True)
    assert calls == [1]  # it ran though an entry was waiting


async def test_entries_read_ahead_are_applied_before_the_worker_stops(aiohttp_client, settings) -> None:
    client = await start(aiohttp_client, settings)
    worker = await _worker_with_pass(client, settings, [])
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="one", mid="m-1"))
    await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="two", mid="m-2"))
    await worker.process(await worker.stream.read("w", 1, 10))
    await worker._after_batch_when_due(worked=True)  # reads "two" ahead
    worker.stop()
    await worker.run()
    assert await rows(client, select(Message.text).order_by(Message.id)) == ["one", "two"]
    assert (await worker.stream.redis.xpending(worker.stream.keys.ingest_stream, CONSUMER_GROUP))["pending"] == 0


async def test_without_an_in_batch_hook_the_pass_follows_every_batch_and_idles_at_once_a_second(
    aiohttp_client, settings
) -> None:
    client = await start(aiohttp_client, settings)
    calls: list[int] = []
    worker = await _worker_with_pass(client, settings, calls)
    worker.in_batch = None  # the pass decides the batches itself
    await worker._after_batch_when_due(worked=False)
    assert calls == []  # idle: not before its second is up
    await worker._after_batch_when_due(worked=True)
    await worker._after_batch_when_due(worked=True)
    assert calls == [0, 0]  # after every batch


async def test_a_worker_that_finds_redis_slow_at_start_waits_for_it_and_then_reads(
    aiohttp_client, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A busy machine's Redis that times out at the worker's first call must not kill the worker (before, the
    stream stayed unread until the process restarted)."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    client = await start(aiohttp_client, settings)
    app_worker = client.app[WORKER]
    app_worker.stop()
    await wait_until(lambda: _stopped(app_worker), what="app worker stopped")
    stream: IngestStream = client.app[INGEST]
    real = stream.ensure_group
    refusals = 2

    async def slow_then_fine() -> None:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise RedisTimeoutError("Timeout connecting to server")
        await real()

    monkeypatch.setattr(stream, "ensure_group", slow_then_fine)
    worker = Worker(stream, client.app[SESSIONS], build_dispatcher(settings), worker_settings(settings), "late")
    task = asyncio.create_task(worker.run())
    try:
        await post(client, wf.message_delivery(page_id=PAGE_ID, psid="42", text="still read", mid="m-late"))
        await wait_until(lambda: drained(client), what="the stream read by the late worker")
    finally:
        worker.stop()
        await task
    assert refusals == 0
    assert await rows(client, select(Message.text)) == ["still read"]
