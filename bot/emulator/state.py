"""What the emulator remembers, in memory and shared by every surface: one `EmulatorState` per application.

The records Meta keeps (comments and visitor posts, live videos and their open streams), the injected
faults, shopper activity and blocks, subscriptions, the recorded calls and deliveries, and the clock.
Also the token and appsecret_proof check, since every Graph surface starts with it.

What Meta would still know after our restart (shoppers' windows and blocks, comments and posts, live
videos, subscriptions, the clock, the records) can be kept as JSON: `snapshot()` and `restore()`; the
application writes it to `EmulatorConfig.state_file` when one is set (the demo inside `plusone serve`).
Faults and open streams are not kept: they belong to the run that made them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.emulator.config import EmulatorConfig
from bot.emulator.errors import expired_token, invalid, invalid_token, unsupported
from bot.emulator.tokens import invalid_appsecret_proof

__all__ = ["STATE_VERSION", "EmulatorState", "Fault", "FeedObject", "LiveStream", "LiveVideo", "message_id"]

STATE_VERSION = 1  # of `EmulatorState.snapshot()`; another version is not read

# An object that belongs to one Page, which a Graph call names by its id.
PageObject = TypeVar("PageObject", "FeedObject", "LiveVideo")


def message_id() -> str:
    """A new Send API message id (`mid`), shaped like Meta's."""
    return "m_" + secrets.token_urlsafe(30)


@dataclass
class FeedObject:
    """A comment or a visitor post the emulator knows about (private replies are keyed by it)."""

    object_id: str
    page_id: str
    post_id: str
    author_id: str | None
    created_time: float
    hidden: bool = False
    private_reply_mid: str | None = None
    replies: list[str] = field(default_factory=list)
    message: str | None = None  # what the Page wrote, for its own comments (a test reads the pinned text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.object_id,
            "page_id": self.page_id,
            "post_id": self.post_id,
            "author_id": self.author_id,
            "created_time": self.created_time,
            "is_hidden": self.hidden,
            "private_reply_message_id": self.private_reply_mid,
            "replies": list(self.replies),
            "message": self.message,
        }


@dataclass
class Fault:
    """An injected failure: which calls it hits (the next N, or a seeded share) and how it fails them."""

    id: int
    kind: str
    remaining: int | None  # the next N matching calls; None = a share of them
    share: float
    path_contains: str | None
    delay_s: float
    status: int
    rng: random.Random
    code: int | None = None  # a throttle's Meta code (80006, 4, 613, ...)
    until: float | None = None  # on the emulator's clock: the fault lasts until then (`duration_s`)
    scope: str = "app"  # "page": only `page_id`'s Send API calls; "app": every call of the app
    page_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "next": self.remaining,
            "share": None if self.remaining is not None else self.share,
            "path_contains": self.path_contains,
            "delay_s": self.delay_s,
            "status": self.status,
            "code": self.code,
            "until": self.until,
            "scope": self.scope,
            "page_id": self.page_id,
        }


@dataclass
class LiveStream:
    """One open Live Comments connection: events waiting to be written, and how it should end."""

    fields: frozenset[str]
    live_filter: str = "filter_low_quality"  # Meta's default; `no_filter` gets every comment
    pending: deque[bytes] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    end: str | None = None  # "end": finish the response cleanly; "abort": cut the connection

    def push(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.wake.set()

    def close(self, how: str) -> None:
        self.end = self.end or how
        self.wake.set()


@dataclass
class LiveVideo:
    """A Page's live video: its status, its comments (as the comments edge lists them) and open streams.

    Its post (`post_id`, what feed webhooks name as the post of its comments) is `{page}_{post object}`
    with a post object id of its own, not the video's, as Meta numbers them; comments read from the video
    (stream, comments edge) are named `{video}_{comment}`, on the feed `{post object}_{comment}`.
    """

    video_id: str
    page_id: str
    status: str  # Meta's word in lower case, as the `live_videos` webhook sends it
    created_time: float
    description: str = ""
    comments: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (created, as the edge lists it)
    streams: list[LiveStream] = field(default_factory=list)
    post_id: str = ""

    @property
    def post_object_id(self) -> str:
        return self.post_id.split("_", 1)[-1]

    def end_streams(self, how: str) -> int:
        for stream in self.streams:
            stream.close(how)
        return len(self.streams)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.video_id,
            "page_id": self.page_id,
            "post_id": self.post_id,
            "status": self.status,
            "comments": len(self.comments),
            "open_streams": len(self.streams),
        }


class EmulatorState:
    """The emulator's memory; `reset()` forgets everything but the configuration."""

    def __init__(self, config: EmulatorConfig) -> None:
        if not config.pages:
            raise ValueError("the emulator needs at least one page")
        self.config = config
        self.tokens = {page.token: page_id for page_id, page in config.pages.items()}
        if len(self.tokens) != len(config.pages):
            raise ValueError("each page needs its own token")
        # Set when the application shuts down: held faults and open streams stop waiting.
        self.closing = asyncio.Event()
        # Ids of the objects the emulator makes (public replies, live videos, live comments).
        self.object_ids = itertools.count(int(time.time() * 1000) * 1000)
        self.reset()

    def reset(self) -> None:
        self.calls: deque[dict[str, Any]] = deque(maxlen=self.config.max_records)
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=self.config.max_records)
        self.faults: list[Fault] = []
        self.activity: dict[tuple[str, str], float] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.expired: set[str] = set()
        self.comments: dict[str, FeedObject] = {}
        self.posts: dict[str, FeedObject] = {}
        self.subscriptions = {
            page_id: list(page.subscribed_fields)
            for page_id, page in self.config.pages.items()
            if page.subscribed_fields
        }
        # The app's own subscriptions by object (bot.emulator.subscriptions), and other apps a Page has
        # subscribed (page id -> their subscribed_apps entries), which Meta lists beside ours.
        self.app_subscriptions: dict[str, dict[str, Any]] = {}
        self.other_apps: dict[str, list[dict[str, Any]]] = {}
        # Each Page's Messenger profile (bot.emulator.profile): field -> value as posted.
        self.profiles: dict[str, dict[str, Any]] = {}
        # Shoppers' public profiles (User Profile API) by (page id, PSID): first_name, last_name, profile_pic.
        self.people: dict[tuple[str, str], dict[str, str]] = {}
        # When each Page last called the Messenger Profile API (its own rate limit), by the emulator's clock.
        self.profile_calls: dict[str, list[float]] = {}
        self.clock_offset = 0.0
        self.sends: dict[str, deque[float]] = {}
        for video in getattr(self, "live_videos", {}).values():
            video.end_streams("end")
        self.live_videos: dict[str, LiveVideo] = {}
        # Page message templates by id (bot.emulator.templates.Template), kept across a restart.
        self.templates: dict[str, Any] = {}

    def snapshot(self) -> dict[str, Any]:
        """What a restarted emulator should still know, as JSON-ready values."""
        return {
            "version": STATE_VERSION,
            "clock_offset": self.clock_offset,
            "activity": [[page_id, psid, at] for (page_id, psid), at in sorted(self.activity.items())],
            "blocked": sorted([page_id, psid] for page_id, psid in self.blocked),
            "expired": sorted(self.expired),
            "comments": [c.to_dict() for c in self.comments.values()],
            "posts": [p.to_dict() for p in self.posts.values()],
            "subscriptions": {page_id: list(fields) for page_id, fields in self.subscriptions.items()},
            "live_videos": [
                {
                    "id": v.video_id,
                    "page_id": v.page_id,
                    "status": v.status,
                    "created_time": v.created_time,
                    "description": v.description,
                    "post_id": v.post_id,
                    "comments": [[at, comment] for at, comment in v.comments],
                }
                for v in self.live_videos.values()
            ],
            "templates": [t.to_dict() for t in self.templates.values()],
            "profiles": self.profiles,
            "app_subscriptions": self.app_subscriptions,
            "calls": list(self.calls),
            "deliveries": list(self.deliveries),
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Take back a `snapshot()` (of this version; else ValueError, and nothing changes)."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"not an emulator state of version {STATE_VERSION}")
        pages = self.config.pages
        comments = {c["id"]: _feed_object(c) for c in data.get("comments", [])}
        posts = {p["id"]: _feed_object(p) for p in data.get("posts", [])}
        videos = {
            v["id"]: LiveVideo(
                v["id"],
                v["page_id"],
                v["status"],
                float(v["created_time"]),
                v.get("description", ""),
                [(float(at), comment) for at, comment in v.get("comments", [])],
                post_id=v.get("post_id") or f"{v['page_id']}_{v['id']}",  # a state kept before posts had ids
            )
            for v in data.get("live_videos", [])
        }
        self.reset()
        self.clock_offset = float(data.get("clock_offset", 0.0))
        # Only the Pages this run plays: a changed configuration drops the others.
        self.activity = {(p, s): float(at) for p, s, at in data.get("activity", []) if p in pages}
        self.blocked = {(p, s) for p, s in data.get("blocked", []) if p in pages}
        self.expired = {p for p in data.get("expired", []) if p in pages}
        self.comments = {k: v for k, v in comments.items() if v.page_id in pages}
        self.posts = {k: v for k, v in posts.items() if v.page_id in pages}
        if "subscriptions" in data:
            self.subscriptions = {p: list(f) for p, f in data["subscriptions"].items() if p in pages and f}
        self.live_videos = {k: v for k, v in videos.items() if v.page_id in pages}
        self.profiles = {p: dict(v) for p, v in data.get("profiles", {}).items() if p in pages}
        self.app_subscriptions = dict(data.get("app_subscriptions", {}))
        from bot.emulator.templates import restore_template  # that module builds on this one

        self.templates = {t["id"]: restore_template(t) for t in data.get("templates", []) if t["page_id"] in pages}
        self.calls.extend(data.get("calls", []))
        self.deliveries.extend(data.get("deliveries", []))

    def now(self) -> float:
        """The emulator's clock: real time shifted by the control offset (window rules use it)."""
        return time.time() + self.clock_offset

    def authenticate(self, args: dict[str, Any]) -> str:
        """The id of the Page whose token the call carries, after the token and appsecret_proof checks."""
        token = args.get("access_token")
        page_id = self.tokens.get(token) if isinstance(token, str) else None
        if page_id is None:
            raise invalid_token()
        if page_id in self.expired:
            raise expired_token()
        proof = args.get("appsecret_proof")
        if self.config.verify_appsecret_proof and self.config.app_secret:
            if proof is None or proof == "":
                if self.config.require_appsecret_proof:
                    # Emulator choice of wording; Meta's refusal is a code 100 when the app requires the proof.
                    raise invalid("API calls from the server require an appsecret_proof argument")
            else:
                expected = hmac.new(self.config.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
                if not isinstance(proof, str) or not hmac.compare_digest(expected, proof.lower()):
                    raise invalid_appsecret_proof()
        return page_id

    def page_of(self, ref: str, args: dict[str, Any], call: dict[str, Any], method: str) -> str:
        """The Page a `/{page_id|me}/...` call is about; its token must be that Page's."""
        token_page = self.authenticate(args)
        page_id = token_page if ref == "me" else ref
        if page_id not in self.config.pages:
            raise unsupported(method, ref)
        call["page_id"] = page_id
        if page_id != token_page:
            # Emulator choice: Meta may answer another Page's token with a permission error (10/200 family).
            raise invalid_token()
        return page_id

    def owned(
        self, target: PageObject | None, object_id: str, method: str, args: dict[str, Any], call: dict[str, Any]
    ) -> PageObject:
        """The object a `/{object_id}...` call is about; the call's token must be its Page's."""
        token_page = self.authenticate(args)
        if target is None:
            raise unsupported(method, object_id)
        call["page_id"] = target.page_id
        if target.page_id != token_page:
            raise invalid_token()
        return target


def _feed_object(d: dict[str, Any]) -> FeedObject:
    """A comment or post as `FeedObject.to_dict()` wrote it."""
    return FeedObject(
        d["id"],
        d["page_id"],
        d["post_id"],
        d.get("author_id"),
        float(d["created_time"]),
        bool(d.get("is_hidden")),
        d.get("private_reply_message_id"),
        list(d.get("replies", [])),
        d.get("message"),
    )
