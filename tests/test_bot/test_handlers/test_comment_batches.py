"""New comments and our messages' echoes go through the worker in batches: the same result as one by one, and a bad
one fails alone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.background import build_dispatcher, build_router, worker_settings
from bot.handlers.comments import Allocator, CommentOrders
from bot.inbound import webhook_factory as wf
from bot.inbound.events import CommentEvent
from bot.inbound.ingest import IngestStream
from bot.inbound.recorders import ConversationRecorder, OwnEchoes, record_comment
from bot.inbound.router import Dispatcher, HandlerContext
from bot.inbound.worker import Worker
from bot.outbound.outbox import outbox_metadata
from bot.runtime.clock import utcnow
from bot.runtime.metrics import event_field
from bot.runtime.redis import redis_client
from bot.runtime.redis_keys import CONSUMER_GROUP, RedisKeys
from bot.store.conversations import fetch_or_create_conversation
from bot.store.db import create_engine, create_schema, session_factory
from bot.store.tables import CommentLog, Message, OutboxMessage
from carts.tables import Campaign, StockClaim
from tests.conftest import PAGE_ID, make_settings, wait_until
from tests.test_bot.test_handlers import test_comments as orders_tests
from tests.test_bot.test_handlers.test_comments import Shop, comment, seed_shop

shop = orders_tests.shop  # the fixture: a live campaign with product A (50 units, 3 per shopper) and B (sizes)

# Duplicates, one shopper going over the limit of 3 across comments, sizes, unknown codes, chatter.
COMMENTS = [
    (1, "A+1 B+1 D+2 好靚", "c1"),
    (2, "a+2", "c2"),
    (2, "A+2", "c3"),  # the same shopper: 1 more allowed, 1 over the limit
    (3, "so pretty!", "c4"),
    (1, "A+1 B+1 D+2 好靚", "c1"),  # Meta re-sent it: a replay in the same batch
    (4, "B+2 L", "c5"),
    (5, "＋１ A+1", "c6"),
]


@asynccontextmanager
async def open_shop(tmp_path: Path, redis_url: str) -> AsyncIterator[Shop]:
    """A second shop like the `shop` fixture's (stock 50, at most 3 per shopper), on its own database and keys."""
    settings = make_settings(tmp_path, redis_url, worker_batch_size=5)
    engine = await asyncio.to_thread(create_engine, settings.sqlalchemy_url)
    await create_schema(engine)
    sessions = session_factory(engine)
    await seed_shop(sessions, stock=50, per_shopper_limit=3)
    redis = redis_client(redis_url)
    try:
        yield Shop(settings, IngestStream(redis, RedisKeys(settings.key_prefix)), sessions)
    finally:
        await redis.aclose()
        await engine.dispose()


def plain_dispatcher(settings: Any) -> Dispatcher:
    """The bot exactly as `build_dispatcher` makes it, but with no batch handler: one event at a time."""
    dispatcher = Dispatcher(build_router(settings))
    dispatcher.add_recorder(ConversationRecorder(settings.app_id))
    dispatcher.add_recorder(record_comment)
    return dispatcher


def batch_worker(shop: Shop, dispatcher: Dispatcher) -> tuple[Worker, Allocator]:
    allocator = Allocator(shop.stream, shop.sessions)
    worker = Worker(
        shop.stream,
        shop.sessions,
        dispatcher,
        worker_settings(shop.settings),
        consumer="w",
        after_batch=allocator.run,
        in_batch=allocator.in_batch,
    )
    return worker, allocator


async def run_one_batch(shop: Shop, dispatcher: Dispatcher) -> Any:
    worker, allocator = batch_worker(shop, dispatcher)
    await shop.stream.ensure_group()
    entries = await shop.stream.read("w", 100, 10)
    result = await worker.process(entries)
    await allocator.run()  # what the worker's loop does next, the stream drained: the due replies
    return result


async def trail(shop: Shop) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with shop.sessions() as session:
        logs = (
            await session.execute(
                select(CommentLog.comment_id, CommentLog.outcome, CommentLog.detail, CommentLog.reply_status).order_by(
                    CommentLog.id
                )
            )
        ).all()
        claims = (
            await session.execute(
                select(
                    StockClaim.comment_id, StockClaim.product_id, StockClaim.variant, StockClaim.qty, StockClaim.status
                ).order_by(StockClaim.arrival, StockClaim.id)
            )
        ).all()
    return [tuple(r) for r in logs], [tuple(r) for r in claims]


async def test_a_batch_leaves_what_one_by_one_would(shop: Shop, tmp_path_factory: Any, redis_server: Any) -> None:
    for shopper, text, cid in COMMENTS:
        await shop.stream.append(comment(shopper, text, comment_id=f"2000000000001_{cid}"))
    dispatcher = build_dispatcher(shop.settings)
    assert dispatcher.batch_handler is not None
    result = await run_one_batch(shop, dispatcher)
    assert result.outcomes[event_field("comment", "duplicate")] == 1 and not result.failed
    batched = await trail(shop)

    # The same deliveries, in a fresh shop, one event at a time.
    async with open_shop(tmp_path_factory.mktemp("plain"), redis_server.url) as plain_shop:
        for shopper, text, cid in COMMENTS:
            await plain_shop.stream.append(comment(shopper, text, comment_id=f"2000000000001_{cid}"))
        await run_one_batch(plain_shop, plain_dispatcher(plain_shop.settings))
        one_by_one = await trail(plain_shop)

    assert batched == one_by_one
    logs, claims = batched
    outcomes = {cid: outcome for cid, outcome, _, _ in logs}
    assert outcomes == {
        "2000000000001_c1": "added",
        "2000000000001_c2": "added",
        "2000000000001_c3": "added",
        "2000000000001_c4": "not_an_order",
        "2000000000001_c5": "added",
        "2000000000001_c6": "added",
    }
    c3 = json.loads(next(d for cid, _, d, _ in logs if cid.endswith("c3")))["items"]
    assert [(i["qty"], i["outcome"]) for i in c3] == [(1, "over_limit"), (1, "claimed")]
    assert [(c[0].rsplit("_", 1)[1], c[3], c[4]) for c in claims] == [
        ("c1", 1, "held"),
        ("c2", 2, "held"),
        ("c3", 1, "held"),
        ("c5", 2, "held"),
        ("c6", 1, "held"),
    ]


class FailsOn(CommentOrders):
    """Comment orders that break on one comment's text, whichever way it comes (batch or one by one)."""

    async def handle_batch(self, session: Any, items: list[tuple[CommentEvent, HandlerContext]]) -> None:
        if any("BOOM" in (event.message or "") for event, _ in items):
            raise RuntimeError("cannot handle BOOM")
        await super().handle_batch(session, items)

    async def handle(self, event: CommentEvent, ctx: HandlerContext, campaign: Any) -> None:
        if "BOOM" in (event.message or ""):
            raise RuntimeError("cannot handle BOOM")
        await super().handle(event, ctx, campaign)


async def test_a_bad_comment_in_a_batch_fails_alone(shop: Shop) -> None:
    for shopper, text in [(1, "A+1"), (2, "A+1 BOOM"), (3, "A+2")]:
        await shop.stream.append(comment(shopper, text))
    orders = FailsOn()
    dispatcher = Dispatcher(build_router(shop.settings, orders), batch_handler=orders)
    dispatcher.add_recorder(record_comment)
    result = await run_one_batch(shop, dispatcher)
    assert len(result.done) == 2 and len(result.failed) == 1
    assert "cannot handle BOOM" in next(iter(result.failed.values()))
    logs, claims = await trail(shop)
    # Comment 3 is recorded, but waits for the allocator: the failed comment 2 came first and may still claim.
    assert {(cid.rsplit("_", 1)[1], outcome) for cid, outcome, _, _ in logs} == {("1", "added"), ("3", "pending")}
    assert [(c[0].rsplit("_", 1)[1], c[3], c[4]) for c in claims] == [("1", 1, "held"), ("3", 2, "pending")]
    pending = await shop.stream.redis.xpending(shop.stream.keys.ingest_stream, CONSUMER_GROUP)
    assert pending["pending"] == 1  # the bad one stays, to be retried and then dead-lettered


async def test_a_comment_after_the_sale_closed_gets_the_closed_reply(shop: Shop) -> None:
    async with shop.sessions() as session, session.begin():
        await session.execute(
            update(Campaign).values(ends_at=utcnow() - timedelta(minutes=1), closed_reply="Sold out, see you Friday!")
        )
    await shop.stream.append(comment(7, "A+1"))
    await run_one_batch(shop, build_dispatcher(shop.settings))
    logs, claims = await trail(shop)
    assert [(outcome, status) for _, outcome, _, status in logs] == [("campaign_closed", "queued")]
    assert claims == []
    async with shop.sessions() as session:
        payload = (await session.execute(select(OutboxMessage.payload))).scalar_one()
    assert "Sold out, see you Friday!" in json.dumps(json.loads(payload), ensure_ascii=False)


async def test_the_watermark_can_leave_out_the_callers_own_entries(shop: Shop) -> None:
    stream = shop.stream
    ids = [await stream.append(comment(i, "A+1")) for i in range(1, 6)]
    await stream.ensure_group()
    mine = await stream.read("me", 2, 10)  # the two oldest
    theirs = await stream.read("them", 1, 10)  # the third
    assert [e.id for e in mine] == ids[:2] and [e.id for e in theirs] == [ids[2]]
    assert await stream.watermark() == ids[0]
    assert await stream.watermark(excluding=[e.id for e in mine]) == ids[2]  # another worker's entry
    await stream.ack([ids[2]], {})
    assert await stream.watermark(excluding=[e.id for e in mine]) == ids[3]  # the first not delivered
    assert await stream.watermark(excluding=[ids[1]]) == ids[0]  # an older one of mine still counts


async def _sent_replies_and_their_echoes(shop: Shop) -> list[bytes]:
    """Three bot messages as the sender records them (two with their message row, one not yet), and the
    echoes Meta sends back for them, one of them twice."""
    echoes = []
    async with shop.sessions() as session, session.begin():
        for n in range(3):
            psid = f"30000000009{n}"
            row = OutboxMessage(
                idempotency_key=f"k{n}",
                page_id=PAGE_ID,
                kind="message",
                psid=psid,
                payload=json.dumps({"text": f"hello {n}"}),
                status="sending",
                attempts=1,
                created_at=utcnow(),
                next_attempt_at=utcnow(),
            )
            session.add(row)
            await session.flush()
            mid = f"m_echo_{n}"
            if n < 2:
                conversation = await fetch_or_create_conversation(
                    session, page_id=PAGE_ID, psid=psid, channel="messenger"
                )
                session.add(
                    Message(
                        conversation_id=conversation.id,  # type: ignore[arg-type]
                        direction="out",
                        author="bot",
                        kind="text",
                        text=f"hello {n}",
                        sent_at=utcnow(),
                        created_at=utcnow(),
                        outbox_id=row.id,
                    )
                )
            assert row.id is not None
            echo = wf.message_delivery(
                page_id=PAGE_ID, psid=psid, text=f"hello {n}", mid=mid, echo=True, metadata=outbox_metadata(row.id)
            )
            echoes.append(wf.encode(echo))
    return [*echoes, echoes[0]]


async def _echo_state(shop: Shop) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with shop.sessions() as session:
        outbox = await session.execute(
            select(OutboxMessage.idempotency_key, OutboxMessage.status, OutboxMessage.meta_id).order_by(
                OutboxMessage.id
            )
        )
        messages = await session.execute(
            select(Message.text, Message.mid, Message.status, Message.direction).order_by(Message.text)
        )
        confirmed = await session.execute(select(OutboxMessage.confirmed_at))
        assert all(at is not None for at in confirmed.scalars())
        return [tuple(r) for r in outbox.all()], [tuple(r) for r in messages.all()]


async def test_echoes_of_our_messages_in_a_batch_leave_what_one_by_one_would(
    shop: Shop, tmp_path_factory: Any, redis_server: Any
) -> None:
    for body in await _sent_replies_and_their_echoes(shop):
        await shop.stream.append(body)
    dispatcher = build_dispatcher(shop.settings)
    assert any(isinstance(h, OwnEchoes) for h in dispatcher.batch_handlers)
    result = await run_one_batch(shop, dispatcher)
    assert not result.failed and result.outcomes[event_field("message", "duplicate")] == 1
    batched = await _echo_state(shop)

    async with open_shop(tmp_path_factory.mktemp("plain-echoes"), redis_server.url) as plain_shop:
        for body in await _sent_replies_and_their_echoes(plain_shop):
            await plain_shop.stream.append(body)
        await run_one_batch(plain_shop, plain_dispatcher(plain_shop.settings))
        one_by_one = await _echo_state(plain_shop)

    assert batched == one_by_one
    outbox, messages = batched
    assert [status for _, status, _ in outbox] == ["sent", "sent", "sent"]
    assert [mid for _, _, mid in outbox] == ["m_echo_0", "m_echo_1", "m_echo_2"]
    # one row per message: found by its outbox id, or made from the echo when the sender had not yet
    assert messages == [
        ("hello 0", "m_echo_0", "sent", "out"),
        ("hello 1", "m_echo_1", "sent", "out"),
        ("hello 2", "m_echo_2", None, "out"),  # the sender's own record sets it when it commits
    ]


async def test_stock_decided_inside_a_batch_tells_the_open_inboxes(shop: Shop, redis: Any) -> None:
    """The allocator decides a batch's claims in its own transaction; open carts and live boards must hear of
    it then too, not only when the periodic allocator run decides something (a missed note left an agent's
    cart stale until a reload). `build_worker` is what `serve` and `plusone worker` both run."""
    from bot.background import build_worker
    from bot.inbox.live import channel_name
    from bot.outbound.outbox import OutboxNotifier

    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel_name(shop.settings.key_prefix))
    keys = RedisKeys(shop.settings.key_prefix)
    worker = build_worker(
        shop.settings,
        shop.stream,
        shop.sessions,
        redis,
        OutboxNotifier(redis, keys.outbox_wake),
        build_dispatcher(shop.settings),
    )
    worker.after_batch = None  # only the batch's own transaction may decide here
    await shop.stream.append(comment(1, "A+2", comment_id="2000000000001_n1"))
    await shop.stream.ensure_group()
    await worker.process(await shop.stream.read(worker.consumer, 100, 10))
    assert await shop.scalar(select(StockClaim.status).where(StockClaim.comment_id == "2000000000001_n1")) == "held"
    notes: list[dict[str, Any]] = []

    async def claims_note() -> bool:
        message = await pubsub.get_message(timeout=0.1)
        if message is not None:
            notes.append(json.loads(message["data"]))
        return any(n["kind"] == "claims" for n in notes)

    try:
        await wait_until(claims_note, what="the inbox note that stock was decided")
    finally:
        await pubsub.aclose()


async def test_a_later_batchs_comment_joins_the_reply_still_waiting_and_it_shows_both(shop: Shop) -> None:
    """A shopper's second comment, handled in a later batch within the reply window, joins the private reply
    queued for the first: one message, rendered again with both comments' lines and the whole cart."""
    await shop.stream.append(comment(7, "A+1", comment_id="2000000000001_j1"))
    await run_one_batch(shop, build_dispatcher(shop.settings))
    await shop.stream.append(comment(7, "B+2 M", comment_id="2000000000001_j2"))
    await run_one_batch(shop, build_dispatcher(shop.settings))
    async with shop.sessions() as session:
        [reply] = (await session.execute(select(OutboxMessage).where(OutboxMessage.kind == "private_reply"))).scalars()
        answered_by = dict((await session.execute(select(CommentLog.comment_id, CommentLog.reply_outbox_id))).all())
    assert answered_by == {"2000000000001_j1": reply.id, "2000000000001_j2": reply.id}
    text = json.loads(reply.payload)["attachment"]["payload"]["text"]
    assert "A Rose bouquet ×1 added" in text
    assert "B Linen shirt (M) ×2 added" in text
    assert "🛒 Cart: 3 items · HK$2,160" in text  # 380 + 2 × 890


async def test_echoes_between_a_lives_comments_leave_the_comments_one_run(shop: Shop) -> None:
    """Our messages' echoes come back while the live goes on, between new comments. They commute with the
    comments, so the worker gathers them: one run of comments and one of echoes, not a run per alternation
    (each run costs a savepoint and a few statements), with the same outcome."""
    echoes = await _sent_replies_and_their_echoes(shop)
    for n, echo in enumerate(echoes):
        await shop.stream.append(comment(20 + n, "A+1", comment_id=f"2000000000001_e{n}"))
        await shop.stream.append(echo)
    dispatcher = build_dispatcher(shop.settings)
    runs: list[tuple[str, int]] = []
    for handler in dispatcher.batch_handlers:
        original = handler.handle_batch

        async def counted(session: Any, items: list[Any], original: Any = original, handler: Any = handler) -> None:
            runs.append((type(handler).__name__, len(items)))
            await original(session, items)

        handler.handle_batch = counted  # type: ignore[method-assign]
    result = await run_one_batch(shop, dispatcher)
    assert not result.failed
    assert runs == [("CommentOrders", len(echoes)), ("OwnEchoes", len(echoes) - 1)]  # one echo came twice
    async with shop.sessions() as session:
        sent = await session.execute(select(OutboxMessage.status).where(OutboxMessage.kind == "message"))
        assert sent.scalars().all() == ["sent", "sent", "sent"]
        statuses = (await session.execute(select(StockClaim.status))).scalars().all()
    assert statuses == ["held"] * len(echoes)


async def test_a_batch_commits_its_decisions_and_the_drained_pass_composes_the_replies(shop: Shop) -> None:
    """A batch's transaction holds the comments' outcomes and stock decisions; their private replies are
    due, and the after-batch pass (which the worker runs once the stream is drained) queues them: one per
    shopper, answering all of the shopper's comments."""
    for shopper, text, cid in [(1, "A+1", "d1"), (1, "B+1 M", "d2"), (2, "Z+1", "d3"), (3, "hello", "d4")]:
        await shop.stream.append(comment(shopper, text, comment_id=f"2000000000001_{cid}"))
    worker, allocator = batch_worker(shop, build_dispatcher(shop.settings))
    await shop.stream.ensure_group()
    await worker.process(await shop.stream.read("w", 100, 10))

    logs, claims = await trail(shop)
    assert {cid.rsplit("_", 1)[1]: (outcome, reply) for cid, outcome, _, reply in logs} == {
        "d1": ("added", "due"),
        "d2": ("added", "due"),
        "d3": ("unknown_code", "due"),  # decided in the batch handler itself, without the allocator
        "d4": ("not_an_order", None),
    }
    assert [c[4] for c in claims] == ["held", "held"]  # the cart lines committed with the comments
    async with shop.sessions() as session:
        assert not (await session.execute(select(OutboxMessage.id))).all()
        # A due comment that turns out to need no reply leaves the due state instead of being looked at again.
        await session.execute(
            update(CommentLog).where(CommentLog.comment_id == "2000000000001_d4").values(reply_status="due")
        )
        await session.commit()

    await allocator.run()
    logs, _ = await trail(shop)
    assert {cid.rsplit("_", 1)[1]: reply for cid, _, _, reply in logs} == {
        "d1": "queued",
        "d2": "queued",
        "d3": "queued",
        "d4": None,
    }
    async with shop.sessions() as session:
        replies = dict((await session.execute(select(OutboxMessage.psid, OutboxMessage.payload))).all())
        answered_by = dict((await session.execute(select(CommentLog.comment_id, CommentLog.reply_outbox_id))).all())
    assert len(replies) == 2  # shoppers 1 and 2; "hello" is not an order
    assert answered_by["2000000000001_d1"] == answered_by["2000000000001_d2"] != answered_by["2000000000001_d3"]
    one = next(p for p in replies.values() if "A Rose bouquet" in p)
    assert "B Linen shirt (M)" in one  # both of shopper 1's comments in one message


async def test_a_live_starting_tells_the_open_boards_to_enable_the_pointer(shop: Shop, redis: Any) -> None:
    """A board opened before its live starts shows the "now selling" buttons disabled; the live's status
    webhook must reach open boards (a `pointer` note for the Page), or they stay disabled until a reload."""
    from bot.background import build_worker
    from bot.inbox.live import channel_name
    from bot.outbound.outbox import OutboxNotifier

    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel_name(shop.settings.key_prefix))
    keys = RedisKeys(shop.settings.key_prefix)
    worker = build_worker(
        shop.settings,
        shop.stream,
        shop.sessions,
        redis,
        OutboxNotifier(redis, keys.outbox_wake),
        build_dispatcher(shop.settings),
    )
    payload = {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": 1,
                "changes": [{"field": "live_videos", "value": {"id": "7770009", "status": "live"}}],
            }
        ],
    }
    await shop.stream.append(json.dumps(payload).encode())
    await shop.stream.ensure_group()
    await worker.process(await shop.stream.read(worker.consumer, 100, 10))
    notes: list[dict[str, Any]] = []

    async def pointer_note() -> bool:
        message = await pubsub.get_message(timeout=0.1)
        if message is not None:
            notes.append(json.loads(message["data"]))
        return any(n["kind"] == "pointer" and n["page"] == PAGE_ID for n in notes)

    try:
        await wait_until(pointer_note, what="the inbox note that the live's status changed")
    finally:
        await pubsub.aclose()
