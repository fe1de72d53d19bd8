"""Sending under pressure, against the emulator playing Meta: throttling pauses the Page until access returns,
Page-wide refusals pause it and tell the merchant, 10900 means delivered, a private reply is not given up
inside its 7 days. Clocks are moved (the sender's `clock`, the emulator's offset), never waited out.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.outbound.graph import GraphClient, GraphError, GraphErrorClass
from bot.outbound.outbox import enqueue_message, enqueue_private_reply
from bot.outbound.rate_limit import TRICKLE
from bot.outbound.sender import OutboxSettings, throttle_pause_s
from bot.runtime.clock import utcnow
from bot.services import GRAPH
from bot.store.tables import CommentLog, Message, OutboxMessage, PageState
from tests.conftest import ADMIN_TOKEN, APP_SECRET, PAGE_ID, wait_until
from tests.test_bot.stack import FAST, TOKEN, Stack, sends, shopper_writes
from tests.test_bot.test_handlers.test_comments import private_replies, seed_shop

FALLBACK = ("public-fallback:1", "Please check your Messenger 📩")


class MovableClock:
    """The sender's clock, moved forward by the test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def move(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def movable(stack: Stack) -> MovableClock:
    clock = MovableClock()
    stack.sender.clock = clock
    return clock


async def page_state(stack: Stack) -> PageState | None:
    async with stack.sessions() as session:
        return await session.get(PageState, PAGE_ID)


async def paused_as(stack: Stack, kind: str) -> PageState:
    async def paused() -> bool:
        state = await page_state(stack)
        return state is not None and state.sending_paused and state.pause_kind == kind

    await wait_until(paused, what=f"Page paused ({kind})")
    state = await page_state(stack)
    assert state is not None
    return state


async def private_reply(stack: Stack, comment_id: str, author: str, **kwargs: Any) -> int:
    await stack.emulator.register_comment(PAGE_ID, comment_id, post_id=f"{PAGE_ID}_555", author_id=author)
    return await stack.enqueue(
        enqueue_private_reply,
        page_id=PAGE_ID,
        comment_id=comment_id,
        message={"text": f"Added to your cart ({comment_id})"},
        comment_created_at=utcnow(),
        public_fallback=FALLBACK,
        **kwargs,
    )


async def public_comments(stack: Stack) -> list[dict[str, Any]]:
    return [c for c in await stack.emulator.calls("/comments") if c["method"] == "POST"]


@pytest.mark.parametrize(
    ("regain", "streak", "expected"),
    [
        (120.0, 1, 120.0),  # Meta's estimate wins
        (120.0, 5, 120.0),
        (None, 1, 60.0),  # no estimate: 60 s, doubling per throttle in a row
        (0.0, 2, 120.0),  # "0 minutes" is no estimate
        (None, 3, 240.0),
        (None, 5, 900.0),  # capped at 15 minutes
        (None, 12, 900.0),
    ],
)
def test_throttle_pause_length(regain: float | None, streak: int, expected: float) -> None:
    assert throttle_pause_s(regain, streak, OutboxSettings()) == expected


async def test_the_adapter_reads_the_usage_headers_of_a_throttling_refusal(stack: Stack) -> None:
    await stack.emulator.open_window(PAGE_ID, "3000000000801")
    await stack.emulator.set_fault("throttle", duration_s=90, scope="page", page_id=PAGE_ID)
    with pytest.raises(GraphError) as info:
        await stack.client.app[GRAPH].send_message(PAGE_ID, {"id": "3000000000801"}, {"text": "hi"})
    assert info.value.error_class is GraphErrorClass.THROTTLED and info.value.code == 80006
    assert info.value.usage is not None
    assert (info.value.usage.percent, info.value.usage.regain_access_s) == (100.0, 120.0)  # 2 minutes


async def test_a_throttle_pauses_the_page_until_access_returns_and_gives_nothing_up(stack: Stack) -> None:
    clock = movable(stack)
    psid = "3000000000802"
    await shopper_writes(stack, psid)
    stack.sender.settings = replace(FAST, max_attempts=2)  # a throttle must not spend tries
    await stack.emulator.set_fault("throttle", duration_s=90, scope="page", page_id=PAGE_ID)
    reply = await private_reply(stack, "555_801", "3000000000803")
    message = await stack.enqueue(enqueue_message, key="p:1", page_id=PAGE_ID, psid=psid, message={"text": "one"})

    state = await paused_as(stack, "throttled")
    assert state.paused_until is not None and state.paused_at is not None
    assert state.paused_until - state.paused_at == timedelta(minutes=2)  # Meta's estimate, in minutes
    assert state.throttle_streak == 1 and "80006" in (state.paused_reason or "")
    assert await stack.sender.limiter.factor(PAGE_ID) == TRICKLE  # and the pace drops to a trickle
    health = await (await stack.client.get("/healthz")).json()
    assert health["status"] == "ok"
    shown = health["checks"]["paused_pages"][PAGE_ID]
    assert shown["kind"] == "throttled" and shown["until"] == state.paused_until.isoformat(timespec="seconds")

    tried = len(await sends(stack))
    await asyncio.sleep(0.5)  # many sender rounds: none sends to the paused Page
    assert len(await sends(stack)) == tried
    for outbox_id in (reply, message):
        row = await stack.outbox(outbox_id)
        assert (row.status, row.attempts) == ("pending", 0)  # waiting, and the throttle did not count

    await stack.emulator.set_clock_offset(91)  # Meta gives access back after 90 s
    clock.move(121)  # and the sender's estimate has passed
    assert (await stack.settled(reply, "sent", "failed")).status == "sent"
    assert (await stack.settled(message, "sent", "failed")).status == "sent"
    state = await page_state(stack)
    assert state is not None and not state.sending_paused and state.throttle_streak == 0
    assert state.pause_kind is None and state.paused_until is None
    delivered = [c for c in await sends(stack) if c["status"] == 200]
    assert len(delivered) == 2  # each once
    assert await public_comments(stack) == []  # no "check your Messenger" under the comment


async def test_without_metas_estimate_the_throttle_backs_off_longer_each_time(stack: Stack) -> None:
    clock = movable(stack)
    psid = "3000000000804"
    await shopper_writes(stack, psid)
    await stack.emulator.set_fault("rate_limit", count=2, path_contains="/messages")  # 613, no headers
    outbox_id = await stack.enqueue(enqueue_message, key="b:1", page_id=PAGE_ID, psid=psid, message={"text": "x"})
    first = await paused_as(stack, "throttled")
    assert first.paused_until is not None and first.paused_at is not None
    assert first.paused_until - first.paused_at == timedelta(seconds=60)

    clock.move(61)  # the first send after the pause is the probe: throttled again, twice as long

    async def second_throttle() -> bool:
        state = await page_state(stack)
        return state is not None and state.throttle_streak == 2

    await wait_until(second_throttle, what="the probe throttled again")
    second = await page_state(stack)
    assert second is not None and second.paused_until is not None
    assert second.paused_until - (utcnow() + clock.offset) > timedelta(seconds=110)
    clock.move(121)
    row = await stack.settled(outbox_id, "sent", "failed")
    assert (row.status, row.attempts) == ("sent", 1)
    assert [c["status"] for c in await sends(stack)] == [400, 400, 200]
    state = await page_state(stack)
    assert state is not None and not state.sending_paused and state.throttle_streak == 0


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        ("page_restricted", "page_restricted", "#10/1893063"),
        ("abusive", "page_restricted", "#368"),
        ("permission", "permission", "#200"),
    ],
)
async def test_a_page_wide_refusal_pauses_the_page_and_fails_no_shopper(
    stack: Stack, fault: str, kind: str, code: str
) -> None:
    clock = movable(stack)
    await stack.emulator.set_fault(fault, scope="page", page_id=PAGE_ID)
    replies = [await private_reply(stack, f"555_81{i}", f"300000000081{i}") for i in range(3)]
    state = await paused_as(stack, kind)
    assert code in (state.paused_reason or "")
    await asyncio.sleep(0.3)
    for outbox_id in replies:
        row = await stack.outbox(outbox_id)
        assert (row.status, row.attempts) == ("pending", 0)  # not failed, and the try did not count
    assert len(await sends(stack)) <= 3  # at most the first batch heard it; nothing since
    health = await (await stack.client.get("/healthz")).json()
    shown = health["checks"]["paused_pages"][PAGE_ID]
    assert shown["kind"] == kind and code in shown["reason"] and shown["until"]
    assert not await stack.rows(select(OutboxMessage).where(OutboxMessage.kind == "comment_reply"))

    # One send probes after a while: still refused, still paused, still nothing failed.
    before = len(await sends(stack))
    clock.move(stack.sender.settings.probe_restricted_s + 1)

    async def probed() -> bool:
        return len(await sends(stack)) == before + 1

    await wait_until(probed, what="one probe send")
    await paused_as(stack, kind)
    await asyncio.sleep(0.3)
    assert len(await sends(stack)) == before + 1

    # The merchant settles it with Meta and resumes the Page: everything goes, once.
    await stack.emulator.clear_faults()
    resumed = await stack.client.post(
        f"/api/pages/{PAGE_ID}/resume", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert resumed.status == 200
    for outbox_id in replies:
        assert (await stack.settled(outbox_id, "sent", "failed")).status == "sent"
    assert len([c for c in await sends(stack) if c["status"] == 200]) == 3
    assert await public_comments(stack) == []


async def test_a_private_reply_that_timed_out_but_reached_meta_is_marked_delivered(stack: Stack) -> None:
    # A client whose timeout the emulator's held answer outlasts (the app's own waits 5 s).
    graph = GraphClient(
        base_url=stack.emulator.base_url,
        version="v26.0",
        app_secret=APP_SECRET,
        page_tokens={PAGE_ID: TOKEN},
        timeout=0.5,
    )
    stack.sender.graph = graph
    # No echo either (message_echoes not subscribed): only Meta's 10900 can tell the first try got there.
    stack.emulator.config.send_echoes = False
    try:
        await stack.emulator.set_fault("timeout_after_delivery", count=1, delay_s=3, path_contains="/messages")
        psid = "3000000000820"
        outbox_id = await private_reply(stack, "555_820", psid, psid=psid)
        row = await stack.settled(outbox_id, "sent", "failed")
    finally:
        graph.close()
    assert (row.status, row.attempts, row.meta_id) == ("sent", 2, None)  # delivered, with no Meta id
    assert (row.error_class, row.error_code) == ("already_sent", 10900)  # which says why
    calls = await sends(stack)
    assert [c["status"] for c in calls] == [504, 400]
    assert calls[0]["delivered"]["message_id"]  # the first try got there
    assert calls[1]["response"]["error"]["message"] == "(#10900) Activity already replied to"
    assert await public_comments(stack) == []
    [log] = await stack.rows(select(CommentLog).where(CommentLog.comment_id == "555_820")) or [None]
    assert log is None or log.reply_status == "sent"
    [shown] = await stack.rows(select(Message).where(Message.outbox_id == outbox_id))
    assert (shown.status, shown.error) == ("sent", None)  # the conversation shows it delivered


async def test_a_private_reply_is_not_given_up_inside_its_7_days(stack: Stack) -> None:
    stack.sender.settings = replace(FAST, max_attempts=2)
    await stack.emulator.set_fault("temporary", path_contains="/messages")  # every call, for now
    outbox_id = await private_reply(stack, "555_830", "3000000000830")

    async def tried_past_the_limit() -> bool:
        return len(await sends(stack)) >= 4

    await wait_until(tried_past_the_limit, what="retries past max_attempts")
    row = await stack.outbox(outbox_id)
    assert row.status in ("pending", "sending") and row.attempts >= 4
    await stack.emulator.clear_faults()
    assert (await stack.settled(outbox_id, "sent", "failed")).status == "sent"
    assert await public_comments(stack) == []
    assert not await stack.rows(select(OutboxMessage).where(OutboxMessage.kind == "comment_reply"))


# --- the live replay ----------------------------------------------------------------------------------------


async def test_a_live_throttled_for_90_seconds_in_the_middle_loses_nothing_and_sends_nothing_twice(
    bot_stack: Stack,
) -> None:
    """A live's order comments arrive; Meta throttles the Page for 90 s in the middle. Once access returns
    every order comment has exactly one private reply, no public fallback was posted, no row failed."""
    stack = bot_stack
    clock = movable(stack)
    clock.move(5)  # past the bot's short hold on private replies (comments of one shopper join), not waited
    await seed_shop(stack.sessions, stock=100)
    shoppers = [f"30000000009{i:02d}" for i in range(24)]
    comment_ids = [f"2000000000001_95{i:02d}" for i in range(24)]

    async def deliver(indexes: range) -> None:
        for i in indexes:
            played = await stack.emulator.deliver_comment(
                PAGE_ID, "2000000000001", shoppers[i], "A+1", comment_id=comment_ids[i]
            )
            assert played["status"] == 200

    async def replied(comment_id: str) -> int:
        return sum(1 for c in await private_replies(stack) if c["body"]["recipient"]["comment_id"] == comment_id)

    # The first half of the live goes as usual.
    await deliver(range(12))

    async def first_half_replied() -> bool:
        return all([await replied(c) == 1 for c in comment_ids[:12]])

    await wait_until(first_half_replied, what="the first comments' private replies")

    # Meta throttles the Page for 90 s (its clock); the live goes on.
    await stack.emulator.set_fault("throttle", duration_s=90, scope="page", page_id=PAGE_ID)
    await deliver(range(12, 24))
    state = await paused_as(stack, "throttled")
    health = await (await stack.client.get("/healthz")).json()
    assert health["checks"]["paused_pages"][PAGE_ID]["kind"] == "throttled"
    assert state.paused_until is not None

    async def all_queued() -> bool:
        rows = await stack.rows(select(OutboxMessage).where(OutboxMessage.kind == "private_reply"))
        return len(rows) == 24

    await wait_until(all_queued, what="every comment's reply queued")
    await asyncio.sleep(0.3)  # sender rounds pass: the paused Page sends nothing
    assert all([await replied(c) == 0 for c in comment_ids[12:]])

    # Access returns: Meta's 90 s pass, and the sender's estimate (2 minutes) too.
    await stack.emulator.set_clock_offset(91)
    clock.move(121)

    async def every_comment_replied() -> bool:
        return all([await replied(c) == 1 for c in comment_ids])

    await wait_until(every_comment_replied, what="every order comment's private reply")
    await asyncio.sleep(0.3)
    assert [await replied(c) for c in comment_ids] == [1] * 24  # none twice
    rows = await stack.rows(select(OutboxMessage))
    assert {r.status for r in rows if r.kind == "private_reply"} == {"sent"}
    assert not [r for r in rows if r.status == "failed"]
    assert not [r for r in rows if r.kind == "comment_reply"]  # no public fallback queued...
    assert await public_comments(stack) == []  # ...nor posted
    state = await page_state(stack)
    assert state is not None and not state.sending_paused  # paused, then unpaused by the probe
    health = await (await stack.client.get("/healthz")).json()
    assert health["checks"]["paused_pages"] == {}
