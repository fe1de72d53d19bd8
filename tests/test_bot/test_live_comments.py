"""Live comments from every source: the webhook, Meta's Live Comments stream and the comments edge.

Pure parts (SSE decoding, the converter) by tables; the reader with the whole bot against the Graph
emulator, a real Redis and SQLite: one comment by three ways is handled once, a dropped stream comes back
and polling catches what it missed, and reading stops when the broadcast ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import webhook_factory as wf
from bot.app_keys import INGEST, REDIS
from bot.db import utcnow
from bot.events import CommentEvent
from bot.graph import GraphClient
from bot.ingest import IngestStream
from bot.live_comments import ActiveVideo, LiveCommentReader, LiveReaderSettings
from bot.live_payloads import SseDecoder, live_comment_delivery, parse_graph_time, parse_live_comment_event
from bot.metrics import event_field
from bot.payloads import parse_delivery
from bot.redis_keys import RedisKeys
from bot.tables import CommentLog, LiveVideo
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from tests.conftest import ADMIN_TOKEN, APP_SECRET, PAGE_ID, load_sample, wait_until
from tests.test_bot.stack import TOKEN, Stack, sends, start_stack

VIDEO = "7770001"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# --- SSE decoding (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "events"),
    [
        pytest.param([b'data: {"id": "1"}', b""], ['{"id": "1"}'], id="one event"),
        pytest.param([b": ping", b"", b": ping"], [], id="keep-alives only"),
        pytest.param([b'data: {"id":', b'data: "1"}', b""], ['{"id":\n"1"}'], id="data lines joined"),
        pytest.param(
            [b"event: comment", b"id: 5", b"retry: 10", b'data: {"id": "2"}', b""], ['{"id": "2"}'], id="fields"
        ),
        pytest.param([b'data: {"id": "1"}', b'data: {"id": "2"}', b""], ['{"id": "1"}', '{"id": "2"}'], id="no blank"),
        pytest.param([b'data:{"id": "3"}\r\n', b"\r\n"], ['{"id": "3"}'], id="crlf, no space"),
        pytest.param([b'data: {"message": "\xe8\xb2\xb7"}', b""], ['{"message": "買"}'], id="utf-8"),
        pytest.param([b"", b"", b'data: {"id": "4"}', b": ping", b""], ['{"id": "4"}'], id="ping inside"),
    ],
)
def test_sse_decoder(lines: list[bytes], events: list[str]) -> None:
    decoder = SseDecoder()
    assert [data for line in lines for data in decoder.feed(line)] == events


def test_sse_decoder_flushes_a_whole_event_at_the_end_and_drops_a_broken_one() -> None:
    decoder = SseDecoder()
    assert decoder.feed('data: {"id": "9"}') == []
    assert decoder.flush() == ['{"id": "9"}']
    decoder.feed('data: {"id": ')
    assert decoder.flush() == []
    assert decoder.flush() == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ('{"id": "1_2", "message": "A+1"}', {"id": "1_2", "message": "A+1"}),
        ('{"message": "no id"}', None),
        ("[1, 2]", None),
        ("not json", None),
        ('{"id": true}', None),
    ],
)
def test_parse_live_comment_event(data: str, expected: dict[str, Any] | None) -> None:
    assert parse_live_comment_event(data) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-08-31T09:09:39+0000", 1661936979),
        ("2022-08-31T09:09:39+00:00", 1661936979),
        ("2022-08-31T17:09:39+0800", 1661936979),
        (1661936979, 1661936979),
        ("1661936979", 1661936979),
        ("2022-08-31T09:09:39", None),  # no offset: which zone is unknowable
        ("yesterday", None),
        (None, None),
        (True, None),
        (-5, None),
    ],
)
def test_parse_graph_time(value: Any, expected: int | None) -> None:
    assert parse_graph_time(value) == expected


# --- the converter (pure) --------------------------------------------------------------------------------


def test_metas_sample_event_becomes_the_feed_change_the_webhook_would_bring() -> None:
    event = json.loads(load_sample("live_comment_sse_event.json"))
    delivery = live_comment_delivery("555", "610800597327576", event, received_s=1661936990)
    assert delivery == {
        "object": "page",
        "entry": [
            {
                "id": "555",
                "time": 1661936990,
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "item": "comment",
                            "verb": "add",
                            "comment_id": "610800597327576_364546219223792",
                            "post_id": "555_610800597327576",
                            "parent_id": "555_610800597327576",
                            "from": {"id": "413140042878187", "name": "Kun Liu"},
                            "created_time": 1661936979,
                            "message": "wow",
                        },
                    }
                ],
            }
        ],
    }


def _event(delivery: dict[str, Any]) -> CommentEvent:
    [event] = parse_delivery(wf.encode(delivery))
    assert isinstance(event, CommentEvent)
    return event


def test_a_live_comment_has_the_same_event_key_as_its_webhook() -> None:
    webhook = _event(
        wf.comment_delivery(
            page_id=PAGE_ID,
            post_id=f"{PAGE_ID}_{VIDEO}",
            message="A+1",
            user_id="3000000000001",
            comment_id=f"{VIDEO}_42",
            created_time=1700000000,
        )
    )
    for raw_id in (f"{VIDEO}_42", "42"):  # the stream's form, and a bare id
        comment = {
            "id": raw_id,
            "created_time": "2023-11-14T22:13:20+0000",
            "from": {"id": "3000000000001", "name": "Shopper"},
            "message": "A+1",
        }
        delivery = live_comment_delivery(PAGE_ID, VIDEO, comment, received_s=1700000001)
        assert delivery is not None
        live = _event(delivery)
        assert (live.key, live.post_id, live.parent_id, live.author_id, live.message, live.created_time) == (
            webhook.key,
            webhook.post_id,
            webhook.parent_id,
            webhook.author_id,
            webhook.message,
            webhook.created_time,
        )
        assert not live.is_reply and not live.from_page


@pytest.mark.parametrize(
    ("comment", "check"),
    [
        ({"id": f"{VIDEO}_1", "from": {"id": PAGE_ID, "name": "Shop"}, "message": "Thanks!"}, "from_page"),
        ({"id": f"{VIDEO}_2", "parent": {"id": f"{VIDEO}_1"}, "from": {"id": "9"}, "message": "A+1"}, "reply"),
        ({"id": f"{VIDEO}_3", "message": "A+1"}, "no author"),
        ({"id": f"{VIDEO}_4", "from": {"id": "9"}}, "no message"),
    ],
)
def test_converted_comments_keep_what_the_worker_decides_on(comment: dict[str, Any], check: str) -> None:
    delivery = live_comment_delivery(PAGE_ID, VIDEO, comment, received_s=1)
    assert delivery is not None
    event = _event(delivery)
    if check == "from_page":
        assert event.from_page  # the Page's own comment: logged, never fed to the bot
    elif check == "reply":
        assert event.is_reply and event.parent_id == f"{VIDEO}_1"
    elif check == "no author":
        assert event.author_id is None  # never invented
    else:
        assert event.message == "" and event.created_time is None


def test_a_comment_without_an_id_is_not_converted() -> None:
    assert live_comment_delivery(PAGE_ID, VIDEO, {"message": "A+1"}, received_s=1) is None


# --- with the whole bot ----------------------------------------------------------------------------------


@pytest.fixture
async def live_stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """The whole bot, looking for live videos and polling often, so the stories run quickly."""
    async for running in start_stack(
        aiohttp_client,
        tmp_path,
        redis_server,
        fallback_cooldown_s=3600,
        live_check_interval_s=0.1,
        live_poll_interval_s=0.3,
        live_reconnect_min_s=0.05,
        live_reconnect_max_s=0.4,
    ):
        await seed_live_campaign(running)
        yield running


async def seed_live_campaign(stack: Stack, *, ends_in: timedelta = timedelta(hours=3)) -> None:
    """Rose bouquet (`rose+2`) on the Page's next live."""
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        product = Product(code="A", name="Rose bouquet", price=Decimal("380"), stock=10, created_at=now, updated_at=now)
        campaign = Campaign(
            key="tonight",
            title="Tonight's live",
            page_id=PAGE_ID,
            next_live=True,
            starts_at=now - timedelta(minutes=5),
            ends_at=now + ends_in,
            hold_minutes=15,
            created_at=now,
            updated_at=now,
        )
        session.add_all([product, campaign])
        await session.flush()
        session.add(CampaignProduct(campaign_id=campaign.id, product_id=product.id, order_code="Rose"))  # type: ignore[arg-type]


async def open_streams(stack: Stack) -> int:
    return sum(v["open_streams"] for v in await stack.emulator.live_videos() if v["id"] == VIDEO)


async def go_live(stack: Stack) -> None:
    """The broadcast starts (Meta's `live_videos` webhook) and the reader connects to its stream."""
    reply = await stack.emulator.live_video(PAGE_ID, VIDEO)
    assert reply["status"] == 200

    async def connected() -> bool:
        return await open_streams(stack) == 1

    await wait_until(connected, what="the reader's live comments stream")


async def private_replies(stack: Stack, comment_id: str | None = None) -> list[dict[str, Any]]:
    return [
        c
        for c in await sends(stack)
        if c["status"] == 200
        and "comment_id" in c["body"]["recipient"]
        and comment_id in (None, c["body"]["recipient"]["comment_id"])
    ]


async def replied_to(stack: Stack, comment_id: str) -> None:
    async def done() -> bool:
        return len(await private_replies(stack, comment_id)) >= 1

    await wait_until(done, what=f"the private reply to {comment_id}")


async def count(stack: Stack, stmt: Any) -> int:
    async with stack.sessions() as session:
        return int((await session.execute(stmt)).scalar_one())


async def comment_duplicates(stack: Stack) -> int:
    counters = await stack.client.app[INGEST].counters()
    return int(counters.get(event_field("comment", "duplicate").encode(), b"0"))


async def polled(stack: Stack, comment_id: str) -> bool:
    """Whether a poll of the comments edge has listed the comment."""
    for call in await stack.emulator.calls(f"{VIDEO}/comments"):
        listed = call["response"].get("data", []) if isinstance(call["response"], dict) else []
        if any(c["id"] == comment_id for c in listed):
            return True
    return False


async def test_the_same_live_comment_by_webhook_stream_and_poll_is_handled_once(live_stack: Stack) -> None:
    await go_live(live_stack)
    posted = await live_stack.emulator.live_comment(VIDEO, "3000000000301", "rose+2")
    assert posted["status"] == 200 and posted["streams"] == 1 and posted["comments_edge"]
    comment_id = posted["comment_id"]

    async def all_three_seen() -> bool:
        return await polled(live_stack, comment_id) and await comment_duplicates(live_stack) >= 1

    # The webhook's copy and the reader's (stream or poll, whichever came first: the reader appends a
    # comment once) both reach the worker; the poll lists it too.
    await wait_until(all_three_seen, what="the stream's and the poll's copies")
    await replied_to(live_stack, comment_id)
    # A comment the stream misses: the webhook's copy and the poll's.
    unstreamed = await live_stack.emulator.live_comment(VIDEO, "3000000000302", "rose+1", to=("webhook", "comments"))

    async def both_seen() -> bool:
        return await comment_duplicates(live_stack) >= 2

    await wait_until(both_seen, what="the poll's copy of the comment the stream missed")
    await replied_to(live_stack, unstreamed["comment_id"])
    # The Page answers on the live: its comment comes by stream and poll too, and is only logged.
    own = await live_stack.emulator.live_comment(VIDEO, PAGE_ID, "rose+1 for everyone!", to=("stream", "comments"))

    async def own_logged() -> bool:
        return await count(live_stack, select(func.count()).where(CommentLog.comment_id == own["comment_id"])) == 1

    await wait_until(own_logged, what="the Page's own live comment in the comment log")
    for cid in (comment_id, unstreamed["comment_id"]):
        assert await count(live_stack, select(func.count()).where(CommentLog.comment_id == cid)) == 1
        assert len(await private_replies(live_stack, cid)) == 1
    assert await count(live_stack, select(func.sum(StockClaim.qty))) == 3
    assert await private_replies(live_stack, own["comment_id"]) == []
    [outcome] = await live_stack.rows(select(CommentLog.outcome).where(CommentLog.comment_id == own["comment_id"]))
    assert outcome == "ignored"


async def test_a_dropped_stream_reconnects_and_polling_catches_what_it_missed(live_stack: Stack) -> None:
    await go_live(live_stack)
    # The stream breaks and Meta refuses reconnections for a while.
    await live_stack.emulator.set_fault("server_error", path_contains="live_comments")
    assert await live_stack.emulator.drop_live_streams(VIDEO) == 1

    async def down() -> bool:
        return await open_streams(live_stack) == 0

    await wait_until(down, what="the stream to drop")
    missed = await live_stack.emulator.live_comment(VIDEO, "3000000000302", "rose+1", to=("stream", "comments"))
    assert missed["streams"] == 0  # nobody was listening
    await replied_to(live_stack, missed["comment_id"])  # polling caught it

    refused = [c for c in await live_stack.emulator.calls("live_comments") if c["status"] == 500]
    assert refused, "the reader kept trying to reconnect"
    await live_stack.emulator.clear_faults()

    async def back() -> bool:
        return await open_streams(live_stack) == 1

    await wait_until(back, what="the stream to reconnect")
    streamed = await live_stack.emulator.live_comment(VIDEO, "3000000000303", "rose+1", to=("stream",))
    assert streamed["streams"] == 1
    await replied_to(live_stack, streamed["comment_id"])  # only the stream carried this one
    assert await count(live_stack, select(func.count()).select_from(CommentLog)) == 2


@pytest.fixture
async def rare_poll_stack(aiohttp_client, tmp_path: Path, redis_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    """Polling rarely: only a reader's first poll and its last one (at the end) read the comments edge."""
    async for running in start_stack(
        aiohttp_client, tmp_path, redis_server, live_check_interval_s=0.1, live_poll_interval_s=600
    ):
        yield running


async def test_the_reader_stops_when_the_video_ends_after_a_last_poll(rare_poll_stack: Stack) -> None:
    stack = rare_poll_stack
    await seed_live_campaign(stack)
    await go_live(stack)

    async def first_poll() -> bool:
        return any(c["status"] == 200 for c in await stack.emulator.calls(f"{VIDEO}/comments"))

    await wait_until(first_poll, what="the first poll")
    late = await stack.emulator.live_comment(VIDEO, "3000000000304", "rose+1", to=("comments",))
    assert (await stack.emulator.live_video(PAGE_ID, VIDEO, status="vod"))["status"] == 200
    await replied_to(stack, late["comment_id"])  # read by the last poll

    lease = RedisKeys(stack.settings.key_prefix).live_reader(VIDEO)

    async def released() -> bool:
        return await stack.client.app[REDIS].get(lease) is None

    await wait_until(released, what="the reader to stop and hand back its lease")
    polls = len(await stack.emulator.calls(f"{VIDEO}/comments"))
    connects = len(await stack.emulator.calls("live_comments"))
    async with stack.sessions() as session:
        video = await session.get(LiveVideo, VIDEO)
        assert video is not None and video.status == "vod" and video.ended_at is not None
    await asyncio.sleep(0.5)  # several of the readers' checks: none starts reading again
    assert await stack.client.app[REDIS].get(lease) is None
    assert len(await stack.emulator.calls(f"{VIDEO}/comments")) == polls
    assert len(await stack.emulator.calls("live_comments")) == connects


async def test_the_merchant_starts_and_stops_reading_a_live_video(live_stack: Stack) -> None:
    await live_stack.emulator.live_video(PAGE_ID, VIDEO, webhook=False)  # this Page sends no live_videos webhook
    client = live_stack.client
    for body, status in [
        ({"campaign": "nope", "video_id": VIDEO}, 404),
        ({"campaign": "tonight", "video_id": "abc"}, 400),
        ({"campaign": "tonight"}, 400),
        ({"campaign": "tonight", "video_id": VIDEO, "extra": 1}, 400),
    ]:
        resp = await client.post("/api/live-videos", json=body, headers=ADMIN)
        assert resp.status == status, await resp.text()
        assert "error" in await resp.json()
    assert (await client.post("/api/live-videos", json={"campaign": "tonight", "video_id": VIDEO})).status == 401
    assert await live_stack.rows(select(LiveVideo)) == []

    resp = await client.post("/api/live-videos", json={"campaign": "tonight", "video_id": VIDEO}, headers=ADMIN)
    assert resp.status == 201, await resp.text()

    async def connected() -> bool:
        return await open_streams(live_stack) == 1

    await wait_until(connected, what="the reader's stream")
    streamed = await live_stack.emulator.live_comment(VIDEO, "3000000000305", "rose+1", to=("stream",))
    await replied_to(live_stack, streamed["comment_id"])
    listed = await (await client.get("/api/live-videos", headers=ADMIN)).json()
    [video] = listed["live_videos"]
    assert (video["video_id"], video["status"], video["started_by"]) == (VIDEO, "live", "merchant")
    assert video["reader"] is not None

    resp = await client.post(f"/api/live-videos/{VIDEO}/stop", headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["video"]["status"] == "live_stopped"

    async def stopped() -> bool:
        [row] = (await (await client.get("/api/live-videos", headers=ADMIN)).json())["live_videos"]
        return row["reader"] is None

    await wait_until(stopped, what="the reader to stop")
    again = await client.post("/api/live-videos", json={"campaign": "tonight", "video_id": VIDEO}, headers=ADMIN)
    assert again.status == 409  # an ended broadcast does not go live again
    assert (await client.post("/api/live-videos/999/stop", headers=ADMIN)).status == 404


async def test_a_restarted_reader_polls_from_its_cursor_not_from_the_start(live_stack: Stack) -> None:
    emulator = live_stack.emulator
    await emulator.live_video(PAGE_ID, "8880001", webhook=False)  # no campaign: nothing reads it by itself
    start = utcnow().timestamp() - 600
    for i in range(3):
        await emulator.live_comment(
            "8880001", f"30000000004{i}", "rose+1", to=("comments",), created_time=start + 100 * i
        )
    settings = live_stack.settings
    graph = GraphClient(
        base_url=settings.graph_url, version=settings.graph_version, app_secret=APP_SECRET, page_tokens={PAGE_ID: TOKEN}
    )
    redis = live_stack.client.app[REDIS]
    ingest = IngestStream(redis, RedisKeys(settings.key_prefix + "x"))  # a stream no worker reads
    reader_settings = LiveReaderSettings(poll_limit=2, poll_overlap_s=10)
    video = ActiveVideo("8880001", PAGE_ID)
    try:
        first = LiveCommentReader(video, graph, ingest, redis, RedisKeys(settings.key_prefix + "x"), reader_settings)
        assert await first.poll_once() == 3  # two pages of at most two comments
        assert await first.poll_once() == 0  # nothing new, and nothing appended twice
        assert await redis.xlen(ingest.keys.ingest_stream) == 3
        restarted = LiveCommentReader(
            video, graph, ingest, redis, RedisKeys(settings.key_prefix + "x"), reader_settings
        )
        assert await restarted.poll_once() == 1  # only the newest, inside the overlap
    finally:
        graph.close()
    calls = await emulator.calls("8880001/comments")
    assert calls[-1]["params"]["since"] == str(int(start) + 200 - 10)
    assert "since" not in calls[0]["params"] and calls[1]["params"].get("after")
