"""Live comments from Meta's Live Comments stream (SSE) and the comments edge → `feed` webhook deliveries. Pure.

A live comment may reach us three ways: the `feed` webhook, the Live Comments Server-Sent Events stream
(`GET streaming-graph.facebook.com/{video}/live_comments`) and the video's comments edge
(`GET /{video}/comments`). The last two are turned into exactly the delivery the webhook would have
brought, so the worker handles them alike and the comment's event key (`comment:{comment id}:add`) is
the same whichever way it came: the first to be processed wins, the others are duplicates (invariant 2).

Meta's shapes (docs/meta-platform.md §2, `tests/data/meta/live_comment_sse_event.json`): an SSE event is a
`data: {json}` line with `id` = `{video id}_{comment id}` (the same id the webhook calls `comment_id`),
`created_time` as `2022-08-31T09:09:39+0000`, `from{id,name}`, `message` and `object{id}`; keep-alives
are `: ping` comment lines. The comments edge lists the same objects.

The feed webhook names the same comment differently: its `post_id` is the video's post as Meta numbers it
(`{page}_{post object}`, not `{page}_{video}`) and its `comment_id` carries the post object's prefix,
`{post object}_{comment}` (docs/meta-platform.md, "Live video ids and statuses"). Once the video's post is
known (`GET /{video}?fields=post_id`), a stream or poll comment is given the webhook's names, so both copies
have one event key; until then it keeps the video's prefix and names the post `{page}_{video}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_MAX_DATA = 1_000_000  # one event's data; a stream that sends more without a blank line is broken


@dataclass
class SseDecoder:
    """Incremental Server-Sent Events decoder: feed it lines, get each event's data when it is complete.

    Follows the SSE format (`data:` lines joined with newlines, dispatched at a blank line; lines starting
    with `:` are comments such as Meta's `: ping`). Leniency for Meta's one-line events: when a `data:` line
    follows data that is already a whole JSON value, the earlier event is dispatched first, so a stream
    without blank lines between events (or a reader that cannot tell a blank line from a ping) still works.
    """

    _data: list[str] = field(default_factory=list)
    _size: int = 0

    def feed(self, line: bytes | str) -> list[str]:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        text = text.rstrip("\r\n")
        if text == "":
            return self._dispatch()
        if text.startswith(":"):
            return []  # a comment: Meta's keep-alive
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name != "data":
            return []  # `event`, `id` and `retry` carry nothing Meta uses here
        out: list[str] = []
        if self._data and _is_json("\n".join(self._data)):
            out = self._dispatch()
        if self._size + len(value) > _MAX_DATA:
            self._data, self._size = [], 0
            return out
        self._data.append(value)
        self._size += len(value) + 1
        return out

    def flush(self) -> list[str]:
        """At the end of the stream: an event whose blank line never came is still whole if it is JSON."""
        if self._data and _is_json("\n".join(self._data)):
            return self._dispatch()
        self._data, self._size = [], 0
        return []

    def _dispatch(self) -> list[str]:
        if not self._data:
            return []
        data = "\n".join(self._data)
        self._data, self._size = [], 0
        return [data]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def parse_live_comment_event(data: str) -> dict[str, Any] | None:
    """One SSE event's data → the comment object, or None if it is not a JSON object with an id."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and _id(value.get("id")) else None


def parse_graph_time(value: Any) -> int | None:
    """Meta's `2022-08-31T09:09:39+0000` (or epoch seconds) → epoch seconds; None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value >= 0 else None
    if not isinstance(value, str) or not value:
        return None
    if value.isascii() and value.isdigit():  # not "³": int() refuses it
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int(moment.timestamp()) if moment.tzinfo is not None else None


def _id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value and len(value) <= 128:
        return value
    if isinstance(value, int) and value >= 0:
        return str(value)
    return None


def live_post_id(page_id: str, video_id: str, post_id: str | None) -> str:
    """The post a live comment is on: the video's post as Meta names it, else `{page}_{video}` until known."""
    return post_id or f"{page_id}_{video_id}"


def _rename(raw: str, prefix: str) -> str:
    # A comment's own id is the part after the last `_`; the part before names the object it is on.
    return f"{prefix}_{raw.rsplit('_', 1)[-1]}"


def live_comment_id(video_id: str, comment: Mapping[str, Any], post_id: str | None = None) -> str | None:
    """The comment's id as the feed webhook names it: `{post object}_{comment}` once the video's post is
    known, else `{video}_{comment}` (the stream's form; a bare id gets the prefix too)."""
    raw = _id(comment.get("id"))
    if raw is None:
        return None
    return _rename(raw, post_id.split("_", 1)[-1] if post_id else video_id)


def live_comment_change(
    page_id: str, video_id: str, comment: Mapping[str, Any], post_id: str | None = None
) -> dict[str, Any] | None:
    """A live comment (stream event or comments-edge item) → the `feed` change the webhook would carry.

    None for an object without an id. `post_id` is the video's post as Meta names it, when known. The author
    is kept as Meta gave it, so the Page's own comments are still recognised (and ignored) by the worker; a
    missing `from` stays missing, never invented.
    """
    comment_id = live_comment_id(video_id, comment, post_id)
    if comment_id is None:
        return None
    post = live_post_id(page_id, video_id, post_id)
    parent = comment.get("parent")
    parent_raw = _id(parent.get("id")) if isinstance(parent, Mapping) else None
    parent_id = live_comment_id(video_id, {"id": parent_raw}, post_id) if parent_raw else None
    value: dict[str, Any] = {
        "item": "comment",
        "verb": "add",
        "comment_id": comment_id,
        "post_id": post,
        "parent_id": parent_id or post,
    }
    author = comment.get("from")
    if isinstance(author, Mapping) and _id(author.get("id")):
        value["from"] = {"id": _id(author.get("id")), "name": author.get("name") or ""}
    created = parse_graph_time(comment.get("created_time"))
    if created is not None:
        value["created_time"] = created
    message = comment.get("message")
    value["message"] = message if isinstance(message, str) else ""
    return {"field": "feed", "value": value}


def live_comment_delivery(
    page_id: str, video_id: str, comment: Mapping[str, Any], received_s: int, post_id: str | None = None
) -> dict[str, Any] | None:
    """The whole webhook delivery for one live comment (None if the comment has no id)."""
    change = live_comment_change(page_id, video_id, comment, post_id)
    if change is None:
        return None
    return {"object": "page", "entry": [{"id": page_id, "time": received_s, "changes": [change]}]}
