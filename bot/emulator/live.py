"""Live videos: the Live Comments stream and the comments edge of a video, and the controls that drive them.

Graph: `GET /{video_id}` answers the video's fields (`id`, `status` in Meta's capitals, `post_id`,
`permalink_url`, ...); `GET /{video_id}/live_comments` is the Server-Sent Events stream of
streaming-graph.facebook.com (`data: {json}` events and `: ping` keep-alives); `GET /{video_id}/comments`
lists a video's comments (`since`/`until`, `order`, `filter`, `live_filter`, `limit`, cursor paging).
Control: `/_emulator/live_videos` walks a video through Meta's statuses (scheduled, live, stopped, vod...:
`bot.inbound.live_status`), each change announced by its `live_videos` webhook in lower case;
`/_emulator/live_comments` posts a viewer's comment to any of the webhook, the open streams and the comments
edge; `/_emulator/live_streams/drop` cuts open streams.

Names as Meta gives them (docs/meta-platform.md, "Live video ids and statuses"): a live video's post is
`{page}_{post object}`, not `{page}_{video}`; the stream and the comments edge name a comment
`{video}_{comment}`, the feed webhook `{post object}_{comment}`. Both names reach the same comment.

Filtering: Meta's comments edge and stream take `live_filter`, `filter_low_quality` by default. Meta does not
say what it counts as low quality; the emulator's stand-in drops comments without a word of two letters or
more (`A+1`, `+1`, an emoji alone), so a reader that does not ask for `no_filter` loses them as it would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.emulator.control import ControlError, control_body, created_time, flag, known_page, text
from bot.emulator.errors import invalid
from bot.emulator.state import EmulatorState, FeedObject, LiveStream, LiveVideo
from bot.emulator.webhooks import WebhookPlayer
from bot.inbound import webhook_factory as wf
from bot.inbound.live_status import META_LIVE_STATUSES, LivePhase, live_phase, normalise_status

__all__ = ["Live", "graph_time", "low_quality"]

LIVE_STATUSES = tuple(META_LIVE_STATUSES)  # every status Meta documents, in the webhook's lower case
LIVE_TARGETS = ("webhook", "stream", "comments")
COMMENT_RATES = ("one_per_two_seconds", "ten_per_second", "one_hundred_per_second")
LIVE_FILTERS = ("filter_low_quality", "no_filter")
COMMENT_ORDERS = ("chronological", "reverse_chronological")
COMMENT_FILTERS = ("toplevel", "stream")
MAX_COMMENTS_LIMIT = 100  # Emulator choice: Meta caps most edges' `limit` around 100
_WORD = re.compile(r"[^\W\d_]{2,}")  # two letters (any script) in a row


def low_quality(message: str) -> bool:
    """Emulator choice standing in for Meta's undocumented quality filter: no word of two letters or more."""
    return _WORD.search(message) is None


def _live_filter(args: dict[str, Any]) -> str:
    value = args.get("live_filter") or "filter_low_quality"
    if value not in LIVE_FILTERS:
        raise invalid(f"param live_filter must be one of {{{', '.join(LIVE_FILTERS)}}}")
    return str(value)


def graph_time(epoch_s: float) -> str:
    """Meta's time format in Graph answers and live comment events: `2022-08-31T09:09:39+0000`."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class Live:
    """Live videos over the shared state; their webhooks go out through `webhooks`."""

    def __init__(self, state: EmulatorState, webhooks: WebhookPlayer) -> None:
        self.state = state
        self.webhooks = webhooks

    # --- Graph side -----------------------------------------------------------------------------------

    def video_of(self, video_id: str, args: dict[str, Any], call: dict[str, Any]) -> LiveVideo:
        # Emulator choice: only live videos list comments or stream them here; other objects are unknown.
        return self.state.owned(self.state.live_videos.get(video_id), video_id, "GET", args, call)

    def video_info(self, video_id: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        """`GET /{video_id}?fields=...`: the live video's fields; `status` in the Graph API's capitals."""
        video = self.video_of(video_id, args, call)
        status = video.status.upper()
        values = {
            "id": video.video_id,
            "status": "LIVE" if status == "LIVE_NOW" else status,  # the broadcast status a viewer sees
            "post_id": video.post_id,
            "permalink_url": f"/{video.page_id}/videos/{video.video_id}/",
            "description": video.description,
            "creation_time": graph_time(video.created_time),
        }
        wanted = _wanted_fields(args.get("fields")) or frozenset({"id", "status"})
        for name in sorted(wanted):
            if name not in values:
                raise invalid(f"Tried accessing nonexisting field ({name}) on node type (LiveVideo)")
        return {"id": video.video_id, **{k: v for k, v in values.items() if k in wanted and v != ""}}

    def list_comments(self, video_id: str, args: dict[str, Any], call: dict[str, Any], url: Any) -> dict[str, Any]:
        """`GET /{video_id}/comments`, as Meta pages it: cursors on every page, `next` while more remain."""
        video = self.video_of(video_id, args, call)
        order = args.get("order") or "chronological"
        if order not in COMMENT_ORDERS:
            raise invalid(f"param order must be one of {{{', '.join(COMMENT_ORDERS)}}}")
        kind = args.get("filter") or "toplevel"
        if kind not in COMMENT_FILTERS:
            raise invalid(f"param filter must be one of {{{', '.join(COMMENT_FILTERS)}}}")
        since, until = _time_param(args, "since"), _time_param(args, "until")
        raw_limit = args.get("limit") or 25
        try:
            limit = min(int(raw_limit), MAX_COMMENTS_LIMIT)
        except (TypeError, ValueError):
            raise invalid("param limit must be a number") from None
        if limit < 1:
            raise invalid("param limit must be at least 1")
        wanted = _wanted_fields(args.get("fields")) or frozenset({"created_time", "from", "message"})
        keep_all = _live_filter(args) == "no_filter"
        items = [
            comment
            for at, comment in video.comments
            if (kind == "stream" or "parent" not in comment)
            and (keep_all or not low_quality(comment.get("message", "")))
            and (since is None or int(at) >= since)
            and (until is None or int(at) <= until)
        ]
        if order == "reverse_chronological":
            items.reverse()
        ids = [c["id"] for c in items]
        start, stop = 0, len(items)
        if args.get("after"):
            start = _cursor_position(ids, args["after"], "after") + 1
        if args.get("before"):
            stop = _cursor_position(ids, args["before"], "before")
            start = max(0, stop - limit) if not args.get("after") else start
        page = items[start : min(stop, start + limit)]
        body: dict[str, Any] = {"data": [_select_fields(c, wanted) for c in page]}
        if page:
            paging: dict[str, Any] = {"cursors": {"before": _cursor(page[0]["id"]), "after": _cursor(page[-1]["id"])}}
            if start + len(page) < stop:
                query = {k: v for k, v in args.items() if k != "before"}
                query["after"] = paging["cursors"]["after"]
                paging["next"] = str(url.with_query(query))
            body["paging"] = paging
        return body

    async def live_comments_stream(
        self, request: web.Request, video_id: str, args: dict[str, Any], call: dict[str, Any]
    ) -> web.StreamResponse:
        """`GET /{video_id}/live_comments` on streaming-graph: comments made while connected, as SSE events."""
        video = self.video_of(video_id, args, call)
        if args.get("comment_rate") not in (None, "", *COMMENT_RATES):
            raise invalid(f"param comment_rate must be one of {{{', '.join(COMMENT_RATES)}}}")
        live_filter = _live_filter(args)
        if live_phase(video.status) is not LivePhase.LIVE:
            # Emulator choice: Meta does not document its answer for a video that is not broadcasting.
            raise invalid(f"Live video {video_id} is not broadcasting")
        # The library's default fields; Meta's sample event also carries id, created_time and object.
        stream = LiveStream(
            fields=_wanted_fields(args.get("fields")) or frozenset({"from", "message"}), live_filter=live_filter
        )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        call["status"], call["response"] = 200, "text/event-stream"
        video.streams.append(stream)
        try:
            while True:
                while stream.pending:
                    await response.write(stream.pending.popleft())
                if stream.end is not None or self.state.closing.is_set():
                    break
                stream.wake.clear()
                try:
                    await asyncio.wait_for(stream.wake.wait(), self.state.config.sse_ping_s)
                except TimeoutError:
                    await response.write(b": ping\n\n")
        except (ConnectionError, RuntimeError):
            return response  # the client went away
        finally:
            video.streams.remove(stream)
        if stream.end == "abort" and request.transport is not None:
            # A network drop: the connection is cut with no end-of-stream, as a reset would.
            request.transport.abort()
            return response
        await response.write_eof()
        return response

    def _live_event(self, video: LiveVideo, comment: dict[str, Any], fields: frozenset[str]) -> bytes:
        event: dict[str, Any] = {"id": comment["id"], "created_time": comment["created_time"]}
        event.update({k: comment[k] for k in ("from", "message", "parent") if k in fields and k in comment})
        updated = graph_time(self.state.now())
        event["object"] = {"description": video.description, "updated_time": updated, "id": video.video_id}
        return b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"

    # --- control routes -------------------------------------------------------------------------------

    async def get_live_videos(self, _request: web.Request) -> web.Response:
        return web.json_response([video.to_dict() for video in self.state.live_videos.values()])

    async def post_live_video(self, request: web.Request) -> web.Response:
        """Start (or end) a live video; a change of status is announced by the `live_videos` webhook."""
        data = await control_body(request)
        page_id = known_page(data, self.state)
        video_id = text(data, "video_id", required=False) or str(next(self.state.object_ids))
        status = normalise_status(text(data, "status", required=False) or "live")  # `LIVE_NOW` or `live_now`
        if status not in LIVE_STATUSES:
            raise ControlError(f"status must be one of {', '.join(LIVE_STATUSES)}")
        webhook = flag(data, "webhook", default=True)
        video = self.state.live_videos.get(video_id)
        if video is not None and video.page_id != page_id:
            raise ControlError(f"live video {video_id} belongs to Page {video.page_id}")
        post_id = text(data, "post_id", required=False)
        if post_id is not None and (video is not None or not post_id.startswith(f"{page_id}_")):
            raise ControlError(f"post_id must be {page_id}_<digits>, given when the video is made")
        changed = video is None or video.status != status
        if video is None:
            description = text(data, "description", required=False) or ""
            # Meta gives the video's post an id of its own: `{page}_{video}` only when a test asks for it.
            post_id = post_id or f"{page_id}_{next(self.state.object_ids)}"
            video = LiveVideo(video_id, page_id, status, self.state.now(), description, post_id=post_id)
            self.state.live_videos[video_id] = video
        video.status = status
        if live_phase(status) is not LivePhase.LIVE:
            video.end_streams("end")  # Emulator choice: Meta's behaviour at the end of a broadcast is undocumented
        if webhook and changed:
            delivery = wf.live_video_delivery(page_id=page_id, video_id=video_id, status=status)
            return await self.webhooks.play(delivery, "live_video", video=video.to_dict())
        return web.json_response({"video": video.to_dict()})

    async def post_live_comment(self, request: web.Request) -> web.Response:
        """A viewer comments on a live video; `to` says which of Meta's channels carry it."""
        data = await control_body(request)
        video_id = text(data, "video_id")
        video = self.state.live_videos.get(video_id)
        if video is None:
            raise ControlError(f"unknown live video {video_id!r}: start it with POST /_emulator/live_videos")
        user_id = text(data, "user_id")
        user_name = text(data, "user_name", required=False) or "Shopper"
        message = data.get("message")
        if not isinstance(message, str):
            raise ControlError("message is required (a string)")
        targets = data.get("to", list(LIVE_TARGETS))
        if not isinstance(targets, list) or not targets or any(t not in LIVE_TARGETS for t in targets):
            raise ControlError(f"to must be a non-empty list of {', '.join(LIVE_TARGETS)}")
        # One comment, two names: `{video}_{n}` read from the video, `{post object}_{n}` on the feed.
        own = str(text(data, "comment_id", required=False) or next(self.state.object_ids)).rsplit("_", 1)[-1]
        comment_id, video_comment_id = f"{video.post_object_id}_{own}", f"{video_id}_{own}"
        parent = text(data, "parent_id", required=False)
        parent_own = parent.rsplit("_", 1)[-1] if parent else None
        parent_id = f"{video.post_object_id}_{parent_own}" if parent_own else None
        created = created_time(data, self.state.now())
        # Meta knows the comment by either name, whichever way we hear of it: private and public replies
        # work on it, and one private reply is one whichever name it was sent to.
        known = self.state.comments.get(comment_id) or self.state.comments.get(video_comment_id)
        if known is None:
            known = FeedObject(comment_id, video.page_id, video.post_id, user_id, created)
        self.state.comments[comment_id] = self.state.comments[video_comment_id] = known
        known.author_id = user_id
        comment: dict[str, Any] = {
            "id": video_comment_id,
            "created_time": graph_time(created),
            "from": {"name": user_name, "id": user_id},
            "message": message,
        }
        if parent_own:
            comment["parent"] = {"id": f"{video_id}_{parent_own}"}
        result: dict[str, Any] = {
            "comment_id": comment_id,
            "video_comment_id": video_comment_id,
            "comments_edge": False,
            "streams": 0,
        }
        if "comments" in targets:
            video.comments = [(at, c) for at, c in video.comments if c["id"] != video_comment_id]
            video.comments.append((created, comment))
            video.comments.sort(key=lambda item: item[0])
            result["comments_edge"] = True
        if "stream" in targets and live_phase(video.status) is LivePhase.LIVE:
            readers = [s for s in video.streams if s.live_filter == "no_filter" or not low_quality(message)]
            for stream in readers:
                stream.push(self._live_event(video, comment, stream.fields))
            result["streams"] = len(readers)
        if "webhook" in targets:
            payload = wf.comment_delivery(
                page_id=video.page_id,
                post_id=video.post_id,
                message=message,
                user_id=user_id,
                user_name=user_name,
                comment_id=comment_id,
                parent_id=parent_id,
                created_time=int(created),
            )
            return await self.webhooks.play(payload, "comment", **result)
        return web.json_response(result)

    async def post_drop_streams(self, request: web.Request) -> web.Response:
        """Cut (`how: abort`, the default) or cleanly end (`how: end`) every open stream of a live video."""
        data = await control_body(request)
        video_id = text(data, "video_id")
        video = self.state.live_videos.get(video_id)
        if video is None:
            raise ControlError(f"unknown live video {video_id!r}")
        how = text(data, "how", required=False) or "abort"
        if how not in ("abort", "end"):
            raise ControlError("how must be abort or end")
        return web.json_response({"video_id": video_id, "dropped": video.end_streams(how)})


# --- Graph parameter helpers ------------------------------------------------------------------------------


def _wanted_fields(raw: Any) -> frozenset[str] | None:
    """`created_time,from{name,id},message` → the top-level names; None when no fields are asked for."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    flat = raw
    while "{" in flat:
        reduced = re.sub(r"\{[^{}]*\}", "", flat)
        if reduced == flat:
            break
        flat = reduced
    return frozenset(f.strip() for f in flat.split(",") if f.strip())


def _select_fields(comment: dict[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    return {"id": comment["id"], **{k: v for k, v in comment.items() if k in wanted}}


def _time_param(args: dict[str, Any], name: str) -> int | None:
    """`since` / `until`: a Unix time or an ISO 8601 time (Meta also takes strtotime strings)."""
    value = args.get(name)
    if value is None or value == "":
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        raise invalid(f"param {name} must be a Unix time or an ISO 8601 time") from None


def _cursor(comment_id: str) -> str:
    return base64.urlsafe_b64encode(comment_id.encode()).decode().rstrip("=")


def _cursor_position(ids: list[str], cursor: Any, name: str) -> int:
    try:
        text = str(cursor)
        comment_id = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        return ids.index(comment_id)
    except (ValueError, UnicodeDecodeError):
        raise invalid(f"param {name} is not a valid cursor") from None
