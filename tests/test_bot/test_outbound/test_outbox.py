"""Outbound to Meta, against the project's Graph emulator: the adapter, the outbox and Meta's rules.

Every test runs the real app (web, worker, outbox sender) on the real Redis and SQLite, pointed at the
emulator, which also plays Meta's side of the webhook (shopper messages, echoes of what we sent).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.background import outbox_sender
from bot.inbound.router import Router
from bot.outbound.graph import GraphClient, GraphError, GraphErrorClass
from bot.outbound.messaging_rules import RETIRED_TAGS, Author
from bot.outbound.outbox import (
    enqueue_comment_reply,
    enqueue_hide_comment,
    enqueue_message,
    enqueue_private_reply,
)
from bot.outbound.subscriptions import REQUIRED_FIELDS, ensure_subscribed
from bot.runtime.clock import utcnow
from bot.services import GRAPH, OUTBOX_NOTIFIER, REDIS, SESSIONS
from bot.store.tables import CommentLog, Conversation, Message, OutboxMessage, PageState
from tests.conftest import APP_SECRET, PAGE_ID, wait_until
from tests.test_bot.stack import FAST, TOKEN, Stack, sends, shopper_writes, start_stack

# --- The adapter, call by call ------------------------------------------------------------------------


# Leases as in production (the fast settings' 0.3 s are for the tests of a sender that dies).
STEADY = replace(FAST, lease=timedelta(seconds=30), echo_grace=timedelta(seconds=10))


async def test_every_adapter_call_reaches_the_emulator_as_meta_expects(stack: Stack) -> None:
    graph: GraphClient = stack.client.app[GRAPH]
    await stack.emulator.open_window(PAGE_ID, "3000000000001")
    sent = await graph.send_message(PAGE_ID, {"id": "3000000000001"}, {"text": "你好"}, messaging_type="RESPONSE")
    assert sent.recipient_id == "3000000000001" and sent.message_id
    call = (await sends(stack))[-1]
    assert call["body"]["recipient"] == {"id": "3000000000001"} and call["body"]["message"] == {"text": "你好"}
    assert call["params"]["access_token"] != TOKEN  # redacted in the record, but it was sent
    await stack.emulator.register_comment(PAGE_ID, "555_777", post_id=f"{PAGE_ID}_555", author_id="3000000000002")
    private = await graph.send_private_reply(PAGE_ID, "555_777", {"text": "Added A to your cart"})
    assert private.message_id
    reply_id = await graph.reply_to_comment(PAGE_ID, "555_777", "Check your Messenger!")
    assert reply_id.startswith("555_")
    await graph.set_comment_hidden(PAGE_ID, "555_777", True)
    comments = await stack.emulator.comments()
    assert json.dumps(comments).count('"is_hidden": true') == 1
    info = await graph.fetch_page_info(PAGE_ID)
    assert (info.id, info.name, info.username) == (PAGE_ID, "Test Shop", "testshop")
    await stack.emulator.unsubscribe(PAGE_ID)
    assert await graph.fetch_subscribed_fields(PAGE_ID) == []
    await graph.subscribe(PAGE_ID, ["feed", "messages"])
    assert await graph.fetch_subscribed_fields(PAGE_ID) == ["feed", "messages"]


async def test_a_page_that_lost_its_webhook_subscription_is_subscribed_again(stack: Stack) -> None:
    graph: GraphClient = stack.client.app[GRAPH]

    async def subscribed() -> bool:
        return set(await graph.fetch_subscribed_fields(PAGE_ID)) == set(REQUIRED_FIELDS)

    await wait_until(subscribed, what="the app subscribes the Page at start-up")
    assert await ensure_subscribed(graph, PAGE_ID, "555000555") == []
    await stack.emulator.unsubscribe(PAGE_ID)  # Meta disabled the failing webhook
    assert await ensure_subscribed(graph, PAGE_ID, "555000555") == list(REQUIRED_FIELDS)
    assert set(await graph.fetch_subscribed_fields(PAGE_ID)) == set(REQUIRED_FIELDS)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("server_error", GraphErrorClass.RETRY_LATER),
        ("temporary", GraphErrorClass.RETRY_LATER),
        ("rate_limit", GraphErrorClass.THROTTLED),
        ("timeout", GraphErrorClass.RETRY_LATER),
        ("outside_window", GraphErrorClass.OUTSIDE_WINDOW),
        ("blocked", GraphErrorClass.UNAVAILABLE),
        ("expired_token", GraphErrorClass.BAD_TOKEN),
    ],
)
async def test_each_meta_failure_becomes_its_error_class(stack: Stack, fault: str, expected: GraphErrorClass) -> None:
    graph = GraphClient(
        base_url=stack.emulator.base_url,
        version="v26.0",
        app_secret=APP_SECRET,
        page_tokens={PAGE_ID: TOKEN},
        timeout=0.5,
    )
    try:
        await stack.emulator.open_window(PAGE_ID, "3000000000001")
        # Scoped to the Send API: the app's own start-up calls (subscription check) must not take the fault.
        await stack.emulator.set_fault(fault, count=1, delay_s=2, path_contains="/messages")
        with pytest.raises(GraphError) as info:
            await graph.send_message(PAGE_ID, {"id": "3000000000001"}, {"text": "hi"})
        assert info.value.error_class is expected
        assert info.value.message
        if fault not in {"timeout"} and expected is not GraphErrorClass.RETRY_LATER:
            assert info.value.fbtrace_id  # Meta's trace id is kept for the merchant's support request
    finally:
        graph.close()


async def test_an_invalid_request_and_a_missing_token_are_classified(stack: Stack) -> None:
    graph: GraphClient = stack.client.app[GRAPH]
    await stack.emulator.open_window(PAGE_ID, "3000000000001")
    with pytest.raises(GraphError) as info:
        await graph.send_message(PAGE_ID, {"id": "3000000000001"}, {"text": "x" * 2001})
    assert info.value.error_class is GraphErrorClass.INVALID_REQUEST and info.value.code == 100
    with pytest.raises(GraphError) as info:
        await graph.send_message("999", {"id": "3000000000001"}, {"text": "hi"})
    assert info.value.error_class is GraphErrorClass.BAD_TOKEN


# --- The outbox -------------------------------------------------------------------------------------


async def test_a_queued_message_is_sent_once_and_confirmed_by_its_echo(stack: Stack) -> None:
    psid = "3000000000010"
    await shopper_writes(stack, psid, "營業時間？")
    outbox_id = await stack.enqueue(
        enqueue_message, key="faq:1", page_id=PAGE_ID, psid=psid, message={"text": "每日 11:00–21:00"}
    )
    await stack.settled(outbox_id, "sent")

    async def recorded_by_sender() -> bool:  # Meta's echo may confirm it a moment before our own record
        return (await stack.outbox(outbox_id)).messaging_type is not None

    await wait_until(recorded_by_sender, what="the sender's record")
    row = await stack.outbox(outbox_id)
    assert row.messaging_type == "RESPONSE" and row.tag is None and row.meta_id

    async def confirmed() -> bool:
        return (await stack.outbox(outbox_id)).confirmed_at is not None

    await wait_until(confirmed, what="echo confirmation")
    [call] = await sends(stack)
    assert call["body"]["message"]["metadata"] == f"plusone:outbox:{outbox_id}"
    assert call["body"]["messaging_type"] == "RESPONSE"
    messages = await stack.rows(select(Message).order_by(Message.id))
    assert [(m.author, m.text, m.status) for m in messages] == [
        ("shopper", "營業時間？", None),
        ("bot", "每日 11:00–21:00", "sent"),  # one row: the echo found it instead of adding another
    ]
    assert messages[1].mid == row.meta_id
    # Enqueueing again under the same key (a replayed event) queues nothing.
    async with stack.sessions() as session, session.begin():
        assert await enqueue_message(session, key="faq:1", page_id=PAGE_ID, psid=psid, message={"text": "x"}) is None


async def test_window_rules_are_enforced_before_sending(stack: Stack) -> None:
    psid = "3000000000020"
    await shopper_writes(stack, psid)
    await stack.set_last_user_at(psid, 23 + 59 / 60)  # 23h59 ago: still inside
    inside = await stack.enqueue(enqueue_message, key="w:1", page_id=PAGE_ID, psid=psid, message={"text": "in time"})
    assert (await stack.settled(inside, "sent", "refused", "failed")).status == "sent"

    await stack.set_last_user_at(psid, 24 + 1 / 60)  # 24h01 ago: closed for the bot
    late = await stack.enqueue(enqueue_message, key="w:2", page_id=PAGE_ID, psid=psid, message={"text": "too late"})
    refused = await stack.settled(late, "sent", "refused", "failed")
    assert refused.status == "refused" and refused.error_class == "outside_window"
    assert "24 hours" in (refused.error_message or "")
    agent = await stack.enqueue(
        enqueue_message,
        key="w:3",
        page_id=PAGE_ID,
        psid=psid,
        message={"text": "Sorry for the wait!"},
        author=Author.AGENT,
    )
    # This shop has not said Meta granted it the Human Agent permission: a person cannot answer after 24 h either.
    untagged = await stack.settled(agent, "sent", "refused", "failed")
    assert untagged.status == "refused" and untagged.error_class == "no_human_agent"
    assert "Human Agent permission" in (untagged.error_message or "")

    calls = await sends(stack)
    assert [c["body"]["message"].get("text") for c in calls] == ["in time"]
    assert not any(c["body"].get("tag") in RETIRED_TAGS for c in calls)  # no retired tag ever leaves
    failed_row = (await stack.rows(select(Message).where(Message.outbox_id == late)))[0]
    assert failed_row.status == "refused" and "24 hours" in (failed_row.error or "")  # the inbox shows why


async def test_with_the_human_agent_permission_a_person_answers_after_24_hours_with_the_tag(
    aiohttp_client, tmp_path, redis_server
) -> None:  # type: ignore[no-untyped-def]
    started = start_stack(aiohttp_client, tmp_path, redis_server, router=Router(), human_agent_permission=True)
    async for stack in started:
        psid = "3000000000021"
        await shopper_writes(stack, psid)
        await stack.set_last_user_at(psid, 30)
        agent = await stack.enqueue(
            enqueue_message, key="w:4", page_id=PAGE_ID, psid=psid, message={"text": "Sorry!"}, author=Author.AGENT
        )
        tagged = await stack.settled(agent, "sent", "refused", "failed")
        assert (tagged.status, tagged.messaging_type, tagged.tag) == ("sent", "MESSAGE_TAG", "HUMAN_AGENT")
        [call] = await sends(stack)
        assert (call["body"]["messaging_type"], call["body"]["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


async def test_retryable_failures_back_off_then_succeed(stack: Stack) -> None:
    psid = "3000000000030"
    await shopper_writes(stack, psid)
    await stack.emulator.set_fault("server_error", count=2, path_contains="/messages")
    outbox_id = await stack.enqueue(enqueue_message, key="r:1", page_id=PAGE_ID, psid=psid, message={"text": "ok"})
    row = await stack.settled(outbox_id, "sent", "failed")
    assert (row.status, row.attempts) == ("sent", 3)
    assert [c["status"] for c in await sends(stack)] == [500, 500, 200]


async def test_retries_stop_at_the_limit_and_the_failure_is_recorded(stack: Stack) -> None:
    psid = "3000000000031"
    await shopper_writes(stack, psid)
    stack.sender.settings = replace(FAST, max_attempts=3)
    await stack.emulator.set_fault("temporary", path_contains="/messages")  # every call
    outbox_id = await stack.enqueue(enqueue_message, key="r:2", page_id=PAGE_ID, psid=psid, message={"text": "ok"})
    row = await stack.settled(outbox_id, "sent", "failed")
    assert (row.status, row.attempts, row.error_class) == ("failed", 3, "retry_later")
    assert len(await sends(stack)) == 3


async def test_permanent_failures_are_recorded_with_metas_reason(stack: Stack) -> None:
    psid = "3000000000040"
    await shopper_writes(stack, psid)
    await stack.emulator.block(PAGE_ID, psid)
    outbox_id = await stack.enqueue(enqueue_message, key="p:1", page_id=PAGE_ID, psid=psid, message={"text": "hi"})
    row = await stack.settled(outbox_id, "sent", "failed")
    assert (row.status, row.error_class, row.error_code, row.attempts) == ("failed", "unavailable", 551, 1)
    message = (await stack.rows(select(Message).where(Message.outbox_id == outbox_id)))[0]
    assert message.status == "failed" and "available" in (message.error or "")

    # A private reply to a comment Meta does not know: recorded on the comment log, where the merchant looks.
    delivered = await stack.emulator.deliver_comment(PAGE_ID, "555", "3000000000041", "A+1", comment_id="555_1")
    assert delivered["status"] == 200
    await wait_until(lambda: _comment_logged(stack, "555_1"), what="comment logged")
    await stack.emulator.reset()  # Meta forgets the comment (deleted, say)
    reply = await stack.enqueue(
        enqueue_private_reply,
        page_id=PAGE_ID,
        comment_id="555_1",
        message={"text": "Added A"},
        comment_created_at=utcnow(),
    )
    failed = await stack.settled(reply, "sent", "failed")
    assert (failed.status, failed.error_class) == ("failed", "invalid_request")
    log = (await stack.rows(select(CommentLog).where(CommentLog.comment_id == "555_1")))[0]
    assert log.reply_status == "failed" and "comment_id" in (log.reply_error or "")


async def _comment_logged(stack: Stack, comment_id: str) -> bool:
    return bool(await stack.rows(select(CommentLog).where(CommentLog.comment_id == comment_id)))


async def test_a_private_reply_to_a_week_old_comment_is_refused_before_sending(stack: Stack) -> None:
    await stack.emulator.register_comment(PAGE_ID, "555_9", post_id=f"{PAGE_ID}_555", author_id="3000000000042")
    reply = await stack.enqueue(
        enqueue_private_reply,
        page_id=PAGE_ID,
        comment_id="555_9",
        message={"text": "x"},
        comment_created_at=utcnow() - timedelta(days=7, minutes=1),
    )
    row = await stack.settled(reply, "sent", "failed", "refused")
    assert (row.status, row.error_class) == ("refused", "private_reply_expired")
    assert await sends(stack) == []


async def test_public_reply_and_hide_go_through_the_outbox(stack: Stack) -> None:
    await stack.emulator.register_comment(PAGE_ID, "555_5", post_id=f"{PAGE_ID}_555", author_id="3000000000043")
    reply = await stack.enqueue(
        enqueue_comment_reply, key="pub:1", page_id=PAGE_ID, comment_id="555_5", text="Please check Messenger 📩"
    )
    hide = await stack.enqueue(enqueue_hide_comment, key="hide:1", page_id=PAGE_ID, comment_id="555_5")
    assert (await stack.settled(reply, "sent", "failed")).meta_id
    assert (await stack.settled(hide, "sent", "failed")).status == "sent"
    calls = await stack.emulator.calls("555_5")
    assert [c["path"].rsplit("/", 1)[-1] for c in calls if c["method"] == "POST"] == ["comments", "555_5"]


async def test_a_bad_token_pauses_the_page_instead_of_failing_messages(stack: Stack) -> None:
    psid = "3000000000050"
    await shopper_writes(stack, psid)
    await stack.emulator.expire_token(PAGE_ID)
    first = await stack.enqueue(enqueue_message, key="t:1", page_id=PAGE_ID, psid=psid, message={"text": "one"})

    async def paused() -> bool:
        async with stack.sessions() as session:
            state = await session.get(PageState, PAGE_ID)
            return state is not None and state.sending_paused

    await wait_until(paused, what="page paused")
    second = await stack.enqueue(enqueue_message, key="t:2", page_id=PAGE_ID, psid=psid, message={"text": "two"})
    await asyncio.sleep(0.3)
    assert {(await stack.outbox(i)).status for i in (first, second)} == {"pending"}  # waiting, not "sent"
    health = await (await stack.client.get("/healthz")).json()
    assert PAGE_ID in health["checks"]["paused_pages"]
    paused = health["checks"]["paused_pages"][PAGE_ID]
    assert paused["kind"] == "bad_token" and "bad_token" in paused["reason"] and paused["until"] is None

    await stack.emulator.expire_token(PAGE_ID, expired=False)  # the merchant renews the token
    assert (await stack.settled(first, "sent", "failed")).status == "sent"
    assert (await stack.settled(second, "sent", "failed")).status == "sent"
    texts = [c["body"]["message"]["text"] for c in await sends(stack) if c["status"] == 200]
    assert texts == ["one", "two"]  # in order, once each


async def test_a_crash_between_send_and_record_still_sends_once(stack: Stack) -> None:
    # Realistic lease and grace: the echo, not their expiry, must settle the row (a loaded machine may take
    # longer than the fast settings' 0.3 s to deliver it).
    stack.sender.settings = STEADY
    psid = "3000000000060"
    await shopper_writes(stack, psid)
    sender = stack.sender
    real_record = sender._record
    crashed = asyncio.Event()

    async def crash_once(*args: Any, **kwargs: Any) -> None:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("worker killed after Meta answered, before recording")
        await real_record(*args, **kwargs)

    sender._record = crash_once  # type: ignore[method-assign]
    outbox_id = await stack.enqueue(
        enqueue_message, key="c:1", page_id=PAGE_ID, psid=psid, message={"text": "only once"}
    )
    await asyncio.wait_for(crashed.wait(), 10)
    row = await stack.settled(outbox_id, "sent", by_sender=False)  # Meta's echo (with our metadata) reconciled it
    assert row.confirmed_at is not None
    await asyncio.sleep(1.0)  # the sender's later rounds send nothing again
    assert len(await sends(stack)) == 1
    assert (await stack.outbox(outbox_id)).status == "sent"


async def test_without_an_echo_a_row_held_past_lease_and_grace_is_tried_again(stack: Stack) -> None:
    # The limit of reconciliation, stated as a test: with no echo (message_echoes not subscribed), a row
    # whose sender died after Meta accepted it cannot be told apart from one Meta never saw.
    stack.emulator.config.send_echoes = False
    psid = "3000000000061"
    await shopper_writes(stack, psid)
    sender = stack.sender
    real_record = sender._record
    calls = {"n": 0}

    async def crash_once(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("crash")
        await real_record(*args, **kwargs)

    sender._record = crash_once  # type: ignore[method-assign]
    outbox_id = await stack.enqueue(enqueue_message, key="c:2", page_id=PAGE_ID, psid=psid, message={"text": "x"})
    assert (await stack.settled(outbox_id, "sent")).attempts == 2
    assert len(await sends(stack)) == 2


async def test_one_private_reply_per_comment_with_two_workers_racing(stack: Stack) -> None:
    stack.sender.settings = STEADY  # no crash here: a lease that a slow heartbeat could lose would send twice
    await stack.emulator.register_comment(PAGE_ID, "555_42", post_id=f"{PAGE_ID}_555", author_id="3000000000070")

    async def enqueue(text: str) -> OutboxMessage | None:
        async with stack.sessions() as session, session.begin():
            return await enqueue_private_reply(
                session, page_id=PAGE_ID, comment_id="555_42", message={"text": text}, comment_created_at=utcnow()
            )

    results = await asyncio.gather(enqueue("from worker 1"), enqueue("from worker 2"))
    assert sum(r is not None for r in results) == 1
    app = stack.client.app
    second = outbox_sender(stack.settings, app[REDIS], app[SESSIONS], app[GRAPH])
    second.settings = STEADY
    task = asyncio.create_task(second.run())
    try:
        await app[OUTBOX_NOTIFIER].wake()
        rows = await stack.rows(select(OutboxMessage).where(OutboxMessage.comment_id == "555_42"))
        assert len(rows) == 1
        assert (await stack.settled(rows[0].id, "sent", "failed")).status == "sent"
        await asyncio.sleep(0.3)
    finally:
        second.stop()
        await task
    assert len(await sends(stack)) == 1


async def test_a_burst_of_2000_messages_stays_under_the_pages_rate_limit(stack: Stack) -> None:
    # Realistic leases here: this test is about pacing, and on a loaded machine a heartbeat can wait longer
    # than the crash tests' 0.3 s lease for SQLite's write lock.
    stack.sender.settings = STEADY
    # Echoes off: they are tested above, and 2,000 of them would keep the worker (and SQLite's one write
    # lock) busy, so that recording, not the rate limit, would set the pace.
    stack.emulator.config.send_echoes = False
    psids = [str(4_000_000_000 + i) for i in range(2000)]
    async with stack.sessions() as session, session.begin():
        now = utcnow()
        session.add_all(
            [Conversation(page_id=PAGE_ID, psid=p, channel="facebook", last_user_at=now, created_at=now) for p in psids]
        )
    sem = asyncio.Semaphore(50)

    async def open_window(psid: str) -> None:
        async with sem:
            await stack.emulator.open_window(PAGE_ID, psid)

    await asyncio.gather(*(open_window(p) for p in psids))
    async with stack.sessions() as session, session.begin():
        for i, psid in enumerate(psids):
            await enqueue_message(session, key=f"burst:{i}", page_id=PAGE_ID, psid=psid, message={"text": f"#{i}"})
    app = stack.client.app
    second = outbox_sender(stack.settings, app[REDIS], app[SESSIONS], app[GRAPH])  # a second worker
    second.settings = STEADY
    started = time.monotonic()
    task = asyncio.create_task(second.run())
    try:
        await app[OUTBOX_NOTIFIER].wake()

        async def all_sent() -> bool:
            rows = await stack.rows(select(OutboxMessage.status).where(OutboxMessage.status != "sent"))
            return not rows

        await wait_until(all_sent, limit=60, interval=0.2, what="2000 messages sent")
    finally:
        second.stop()
        await task
    elapsed = time.monotonic() - started
    calls = await sends(stack)
    assert len(calls) == 2000  # no message needed a retry
    assert {c["status"] for c in calls} == {200}  # Meta never said 613
    times = sorted(c["at"] for c in calls)
    busiest, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    print(f"2,000 messages in {elapsed:.1f}s; busiest second: {busiest} calls")
    assert busiest <= 300
    assert elapsed > 2000 / 300  # paced, not blasted
