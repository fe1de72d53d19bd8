"""Live comments from every source Meta offers (issue 6): the Live Comments stream and the comments edge.

Meta does not promise that every comment on a live video reaches the `feed` webhook, so while a
campaign's video is live the worker side also reads:

- the Live Comments stream (Server-Sent Events, python-facebook-api in a thread of the Graph adapter),
  reconnecting with exponential back-off and jitter whenever it drops;
- the video's comments edge, polled every `live_poll_interval_s` as a backstop, from a cursor kept in
  Redis so a restarted reader does not read the whole broadcast again.

Each comment becomes the `feed` delivery the webhook would have brought (`bot.inbound.live_payloads`) and is
appended to the same ingest stream (source `live_stream` / `live_poll`). Its event key is the webhook's,
`comment:{comment id}:add`, so whichever copy a worker handles first wins and the others are recorded as
duplicates: one comment log row, one stock claim, one private reply. The Page's own comments keep their
author and are ignored by the worker as always.

When to read: `record_live_video` (a recorder) keeps each video's status from the `live_videos` webhook
(or the merchant's `POST /api/live-videos`) in SQL, by the phases of `bot.inbound.live_status` (a scheduled
video is not ended; an unknown status changes nothing); `LiveCommentReaders` (in every worker process) reads
the videos that are live and sold on by an open campaign, one process per video thanks to a lease in
Redis, and stops a reader when its video ends or its campaign closes, after one last poll.

Which post: a live video's post is not `{page}_{video}`. Before reading, the readers ask Meta for it
(`GET /{video}?fields=post_id`) and keep it on the video's row (`LiveVideo.post_id`); `live_video_of_post`
then tells the campaign lookup which video a feed comment's post belongs to, and the readers give stream and
poll comments the webhook's names (`bot.inbound.live_payloads`), so one comment is claimed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.inbound import webhook_factory as wf
from bot.inbound.events import LiveVideoEvent
from bot.inbound.ingest import IngestStream
from bot.inbound.live_payloads import (
    SseDecoder,
    live_comment_delivery,
    live_comment_id,
    parse_graph_time,
    parse_live_comment_event,
)
from bot.inbound.live_status import LIVE_NOW_STATUSES, LivePhase, live_phase, normalise_status
from bot.inbound.router import HandlerContext
from bot.outbound.graph import GraphClient, GraphError, LiveCommentStream
from bot.runtime.clock import utcnow
from bot.runtime.loops import Backoff, Loop, Running
from bot.runtime.redis_keys import RedisKeys
from bot.store.tables import LiveVideo
from carts.tables import Campaign
from config.settings import Settings

log = logging.getLogger(__name__)

# What we ask of each comment: the webhook's fields (`parent` tells a reply from a top-level comment).
COMMENT_FIELDS = "created_time,from{name,id},message,parent{id}"
SOURCE_STREAM = "live_stream"
SOURCE_POLL = "live_poll"
CURSOR_TTL_S = 7 * 24 * 3600
POST_ID_RETRY_S = 30.0  # how often a video whose post Meta did not give is asked again
_SEEN_MAX = 100_000  # comment ids one reader remembers, to spare the ingest stream most repeats


@dataclass(frozen=True)
class LiveReaderSettings:
    check_interval_s: float = 2.0
    poll_interval_s: float = 5.0
    poll_overlap_s: int = 10
    poll_limit: int = 100
    poll_max_pages: int = 20
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    read_timeout_s: float = 90.0
    comment_rate: str = "one_hundred_per_second"

    @property
    def lease_ms(self) -> int:
        # Renewed every check: three missed checks (a stuck or dead process) let another process take over.
        return int(max(10.0, 3 * self.check_interval_s) * 1000)


def live_reader_settings(settings: Settings) -> LiveReaderSettings:
    return LiveReaderSettings(
        check_interval_s=settings.live_check_interval_s,
        poll_interval_s=settings.live_poll_interval_s,
        poll_overlap_s=settings.live_poll_overlap_s,
        reconnect_min_s=settings.live_reconnect_min_s,
        reconnect_max_s=max(settings.live_reconnect_max_s, settings.live_reconnect_min_s),
        read_timeout_s=settings.live_stream_read_timeout_s,
        comment_rate=settings.live_comment_rate,
    )


# --- the live videos' status in SQL ---------------------------------------------------------------------


class LiveVideoConflict(Exception):
    """A status change that cannot apply (another Page's video, an ended broadcast going live again, a
    status Meta does not document, or a pre-live status arriving after the broadcast started)."""


async def apply_live_video_status(
    session: AsyncSession, page_id: str, video_id: str, status: str, *, started_by: str, now: datetime | None = None
) -> LiveVideo:
    """Record a live video's status, by its phase (`bot.inbound.live_status`).

    A scheduled video (`unpublished`, `scheduled_live`, ...) is recorded without a start or an end, so the
    later `live` starts it. An ended broadcast never goes live again: Meta's live video ids are single-use,
    so a `live` arriving after `live_stopped` is a late retry, not a new start. Webhooks come unordered, so
    a scheduled status after the start changes nothing; an unknown status changes nothing either.
    """
    phase = live_phase(status)
    if phase is LivePhase.UNKNOWN:
        raise LiveVideoConflict(f"live video {video_id}: status {status!r} is not one Meta documents")
    status = normalise_status(status)
    now = now or utcnow()
    live, ended = phase is LivePhase.LIVE, phase is LivePhase.ENDED
    row = await session.get(LiveVideo, video_id)
    if row is None:
        row = LiveVideo(
            video_id=video_id,
            page_id=page_id,
            status=status,
            started_by=started_by,
            started_at=now if live else None,
            ended_at=now if ended else None,
            updated_at=now,
        )
    else:
        if row.page_id != page_id:
            raise LiveVideoConflict(f"live video {video_id} belongs to Page {row.page_id}")
        if live and row.ended_at is not None:
            raise LiveVideoConflict(f"live video {video_id} has ended ({row.status})")
        if phase is LivePhase.SCHEDULED and (row.started_at is not None or row.ended_at is not None):
            raise LiveVideoConflict(f"live video {video_id} is past {status} ({row.status})")
        row.status = status
        row.started_at = row.started_at or (now if live else None)
        row.ended_at = row.ended_at or (now if ended else None)
        row.updated_at = now
    session.add(row)
    return row


async def live_video_of_post(session: AsyncSession, page_id: str, post_id: str) -> str | None:
    """The live video whose post this is, as Meta named it (`GET /{video}?fields=post_id`), if known."""
    return (
        await session.execute(
            select(LiveVideo.video_id).where(LiveVideo.page_id == page_id, LiveVideo.post_id == post_id).limit(1)
        )
    ).scalar_one_or_none()


def own_id(comment_id: str) -> str:
    """A comment's own id: the part after the last `_` (before it, the object it was read on)."""
    return comment_id.rsplit("_", 1)[-1]


def post_id_of(reply: Mapping[str, Any], page_id: str) -> str | None:
    """A live video's post id from Meta's answer: `{page}_{object}` of this Page, else None (not guessed)."""
    value = reply.get("post_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > 128:
        return None
    head, sep, tail = value.partition("_")
    return value if sep and head == page_id and tail.isascii() and tail.isdigit() else None


async def record_live_video(event: Any, ctx: HandlerContext) -> None:
    """Recorder: keep every `live_videos` status change (the router's handler attaches a campaign to it)."""
    if not isinstance(event, LiveVideoEvent):
        return
    try:
        await apply_live_video_status(ctx.session, event.page_id, event.video_id, event.status, started_by="webhook")
    except LiveVideoConflict as exc:
        log.info("live_videos %s %s ignored: %s", event.video_id, event.status, exc)


@dataclass(frozen=True)
class ActiveVideo:
    video_id: str
    page_id: str
    post_id: str | None = None  # the video's post as Meta names it, once learned


async def fetch_active_videos(session: AsyncSession, now: datetime) -> list[ActiveVideo]:
    """Live videos that an open campaign sells on: the ones whose comments must be read."""
    rows = await session.execute(
        select(LiveVideo.video_id, LiveVideo.page_id, LiveVideo.post_id)
        .join(Campaign, and_(Campaign.live_video_id == LiveVideo.video_id, Campaign.page_id == LiveVideo.page_id))
        .where(LiveVideo.status.in_(LIVE_NOW_STATUSES), Campaign.starts_at <= now, Campaign.ends_at > now)
        .distinct()
    )
    return [ActiveVideo(video_id, page_id, post_id) for video_id, page_id, post_id in rows.all()]


# --- one video's reader ---------------------------------------------------------------------------------


@dataclass
class ReaderStats:
    connects: int = 0
    appended: Counter[str] = field(default_factory=Counter)  # by source
    bad_events: int = 0
    polls: int = 0
    last_error: str | None = None


class LiveCommentReader(Loop):
    """Reads one live video's comments from the stream and the comments edge into the ingest stream."""

    def __init__(
        self,
        video: ActiveVideo,
        graph: GraphClient,
        ingest: IngestStream,
        redis: Redis,
        keys: RedisKeys,
        settings: LiveReaderSettings,
    ) -> None:
        super().__init__(f"live-reader-{video.video_id}")
        self.video = video
        self.graph = graph
        self.ingest = ingest
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.stats = ReaderStats()
        self._final_poll = False
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._decoder = SseDecoder()
        self._stream: LiveCommentStream | None = None
        self._lines = 0  # lines on the current connection: any at all means it was healthy

    def stop(self, *, final_poll: bool = False) -> None:
        """Stop reading; `final_poll` reads the comments edge once more (the broadcast's last comments)."""
        self._final_poll = self._final_poll or final_poll
        super().stop()
        if self._stream is not None:
            self._stream.close()

    async def loop(self) -> None:
        tasks = [
            asyncio.create_task(self._stream_loop(), name=f"live-stream-{self.video.video_id}"),
            asyncio.create_task(self._append_loop(), name=f"live-append-{self.video.video_id}"),
            asyncio.create_task(self._poll_loop(), name=f"live-poll-{self.video.video_id}"),
        ]
        try:
            await self.stopped()
        finally:
            if self._stream is not None:
                self._stream.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._final_poll:
                with contextlib.suppress(GraphError, RedisError, OSError):
                    await self.poll_once()
            log.info("stopped reading live video %s: %s", self.video.video_id, self.stats)

    # The stream: python-facebook-api reads it in a thread and hands each line to `_on_line` on the loop.

    def _on_line(self, line: bytes) -> None:
        self._lines += 1
        for data in self._decoder.feed(line):
            self._take_event(data)

    def _take_event(self, data: str) -> None:
        comment = parse_live_comment_event(data)
        if comment is None:
            self.stats.bad_events += 1
            log.warning("live video %s: stream event is not a comment: %.200s", self.video.video_id, data)
        else:
            self._queue.put_nowait(comment)

    async def _stream_loop(self) -> None:
        # Jittered: readers of many videos do not reconnect in lockstep.
        backoff = Backoff(self.settings.reconnect_min_s, self.settings.reconnect_max_s, jitter=True)
        while not self.stopping:
            self._decoder, self._lines = SseDecoder(), 0
            try:
                self._stream = self.graph.open_live_comments(
                    self.video.page_id,
                    self.video.video_id,
                    self._on_line,
                    comment_rate=self.settings.comment_rate,
                    fields=COMMENT_FIELDS,
                    read_timeout_s=self.settings.read_timeout_s,
                )
                self.stats.connects += 1
                await self._stream.run()
                outcome = "ended by Meta"
            except GraphError as exc:
                outcome = str(exc)
                self.stats.last_error = outcome
            finally:
                self._stream = None
            for data in self._decoder.flush():
                self._take_event(data)
            if self.stopping:
                return
            if self._lines:
                backoff.reset()  # it was working: this is a fresh failure
            delay = backoff.next()
            log.info("live video %s: stream closed (%s); reconnecting in %.1fs", self.video.video_id, outcome, delay)
            await self.sleep(delay)

    async def _append_loop(self) -> None:
        while True:
            comments = [await self._queue.get()]
            while not self._queue.empty():
                comments.append(self._queue.get_nowait())
            await self.append(comments, SOURCE_STREAM)

    # The comments edge, as a backstop.

    async def _poll_loop(self) -> None:
        while not self.stopping:
            try:
                await self.poll_once()
            except (GraphError, RedisError, OSError) as exc:
                self.stats.last_error = str(exc)
                log.warning("live video %s: polling comments failed: %s", self.video.video_id, exc)
            await self.sleep(self.settings.poll_interval_s)

    async def poll_once(self) -> int:
        """Read the comments edge from the cursor on; returns how many comments were new to this reader."""
        key = self.keys.live_cursor(self.video.video_id)
        raw = await self.redis.get(key)
        cursor = int(raw) if raw else None
        params: dict[str, str | int] = {
            "order": "chronological",
            "filter": "stream",  # replies too: the webhook brings them, so must the backstop
            # Every comment: Meta's default, `filter_low_quality`, drops short ones, and `A+1` is short.
            "live_filter": "no_filter",
            "limit": self.settings.poll_limit,
            "fields": COMMENT_FIELDS,
        }
        if cursor is not None:
            # A little behind the newest comment seen: Meta may list a comment a moment after its time.
            params["since"] = max(0, cursor - self.settings.poll_overlap_s)
        newest, new, complete = cursor, 0, True
        for _ in range(self.settings.poll_max_pages):
            page = await self.graph.fetch_comments(self.video.page_id, self.video.video_id, **params)
            data = [c for c in page.get("data", []) if isinstance(c, Mapping)]
            added, ok = await self.append(data, SOURCE_POLL)
            new, complete = new + added, complete and ok
            for comment in data:
                created = parse_graph_time(comment.get("created_time"))
                if created is not None and (newest is None or created > newest):
                    newest = created
            paging = page.get("paging") if isinstance(page.get("paging"), Mapping) else {}
            after = (paging.get("cursors") or {}).get("after") if isinstance(paging, Mapping) else None
            if not data or not paging.get("next") or not after:
                break
            params["after"] = after
        self.stats.polls += 1
        # Only past what is safely in the ingest stream: a comment Redis refused is read again next time.
        if complete and newest is not None and newest != cursor:
            await self.redis.set(key, newest, ex=CURSOR_TTL_S)
        return new

    async def append(self, comments: list[Mapping[str, Any]], source: str) -> tuple[int, bool]:
        """Append the comments this reader has not appended yet; (how many, whether Redis took them all)."""
        video_id, page_id, post_id = self.video.video_id, self.video.page_id, self.video.post_id
        fresh: list[tuple[str, bytes]] = []
        for comment in comments:
            comment_id = live_comment_id(video_id, comment, post_id)
            delivery = live_comment_delivery(page_id, video_id, comment, int(time.time()), post_id)
            # Remembered by the comment's own id: the name it is appended under changes once the post is known.
            if comment_id is None or delivery is None or own_id(comment_id) in self._seen:
                continue
            self._remember(own_id(comment_id))  # before the await: the stream and the poll may race for it
            fresh.append((comment_id, wf.encode(delivery)))
        if not fresh:
            return 0, True
        results = await asyncio.gather(
            *(self.ingest.append(body, source=source) for _, body in fresh), return_exceptions=True
        )
        ok = True
        for (comment_id, _), result in zip(fresh, results, strict=True):
            if isinstance(result, BaseException):
                ok = False
                self._seen.pop(own_id(comment_id), None)  # the next poll tries it again
                self.stats.last_error = f"ingest stream refused a comment: {result!r}"
            else:
                self.stats.appended[source] += 1
        if not ok:
            log.warning("live video %s: %s", video_id, self.stats.last_error)
        return sum(1 for r in results if not isinstance(r, BaseException)), ok

    def _remember(self, comment_id: str) -> None:
        self._seen[comment_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)


# --- every live video of this process -------------------------------------------------------------------

# Renew or release the lease only while this process still holds it (another may have taken it over).
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LiveCommentReaders(Loop):
    """Starts and stops a `LiveCommentReader` per live video that an open campaign sells on."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        graph: GraphClient,
        ingest: IngestStream,
        redis: Redis,
        keys: RedisKeys,
        settings: LiveReaderSettings,
        owner: str,
    ) -> None:
        super().__init__("plusone-live-comments")
        self.sessions = sessions
        self.graph = graph
        self.ingest = ingest
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.owner = owner
        self.readers: dict[str, tuple[LiveCommentReader, Running]] = {}
        self._post_asked: dict[str, float] = {}  # video id → when Meta was last asked for its post (monotonic)
        self._renew = redis.register_script(_RENEW_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    async def loop(self) -> None:
        try:
            while not self.stopping:
                try:
                    await self.check()
                except (RedisError, OSError) as exc:
                    log.warning("%s: redis unavailable (%s)", self.name, exc)
                except Exception:
                    log.exception("%s: check failed", self.name)
                await self.sleep(self.settings.check_interval_s)
        finally:
            for video_id in list(self.readers):
                await self._finish(video_id, final_poll=False)

    async def check(self) -> None:
        """Start readers for videos that went live, stop those whose video ended or campaign closed."""
        async with self.sessions() as session:
            active = {v.video_id: v for v in await fetch_active_videos(session, utcnow())}
        for video_id, (_reader, running) in list(self.readers.items()):
            lease = self.keys.live_reader(video_id)
            if video_id not in active:
                await self._finish(video_id, final_poll=True)
            elif running.task.done() or not await self._renew(keys=[lease], args=[self.owner, self.settings.lease_ms]):
                log.warning("live video %s: reader stopped or lease lost; handing it back", video_id)
                await self._finish(video_id, final_poll=False)
        for video in active.values():
            if not self.graph.has_page(video.page_id):
                continue
            if video.post_id is None and self._may_ask(video.video_id):
                video = await self.learn_post_id(video)
            if video.video_id in self.readers:
                # A post learned while reading: from now on its comments get the webhook's names.
                self.readers[video.video_id][0].video = video
                continue
            lease = self.keys.live_reader(video.video_id)
            if await self.redis.set(lease, self.owner, nx=True, px=self.settings.lease_ms):
                reader = LiveCommentReader(video, self.graph, self.ingest, self.redis, self.keys, self.settings)
                self.readers[video.video_id] = (reader, reader.start())
                log.info("reading live comments of video %s (Page %s)", video.video_id, video.page_id)

    def _may_ask(self, video_id: str) -> bool:
        # A Page that refuses the question is asked again every half minute, not at every check.
        now = time.monotonic()
        if now - self._post_asked.get(video_id, -POST_ID_RETRY_S) < POST_ID_RETRY_S:
            return False
        self._post_asked[video_id] = now
        return True

    async def learn_post_id(self, video: ActiveVideo) -> ActiveVideo:
        """Ask Meta for the video's post (`GET /{video}?fields=post_id`) and keep it; unchanged if Meta does
        not say (asked again at the next check; meanwhile comments keep the video's names)."""
        try:
            reply = await self.graph.fetch_live_video(video.page_id, video.video_id)
        except GraphError as exc:
            log.warning("live video %s: could not read its post id: %s", video.video_id, exc)
            return video
        post_id = post_id_of(reply, video.page_id)
        if post_id is None:
            log.warning("live video %s: Meta gave no post id of Page %s: %.200r", video.video_id, video.page_id, reply)
            return video
        async with self.sessions() as session, session.begin():
            row = await session.get(LiveVideo, video.video_id)
            if row is not None:
                row.post_id = post_id
                session.add(row)
        log.info("live video %s is post %s", video.video_id, post_id)
        return ActiveVideo(video.video_id, video.page_id, post_id)

    async def _finish(self, video_id: str, *, final_poll: bool) -> None:
        reader, running = self.readers.pop(video_id)
        self._post_asked.pop(video_id, None)
        reader.stop(final_poll=final_poll)
        # One that takes too long is cancelled; one that had failed was logged with its name as it ended.
        with contextlib.suppress(Exception):
            await running.stop(timeout_s=max(30.0, self.settings.check_interval_s))
        with contextlib.suppress(RedisError, OSError):
            await self._release(keys=[self.keys.live_reader(video_id)], args=[self.owner])
