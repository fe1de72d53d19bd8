"""Typed, frozen inbound events: what a webhook delivery means, one object per thing that happened.

Pure: no I/O. `bot.inbound.payloads.parse_delivery` builds these from Meta's JSON; handlers receive them.
Every event has an idempotency `key` (stored in SQL with its effect, see `bot.inbound.worker`) and says whether it
came from the Page itself (`from_page`), so loop guards never depend on a handler remembering to check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


class Channel(StrEnum):
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"


class CommentVerb(StrEnum):
    ADD = "add"
    EDITED = "edited"
    REMOVE = "remove"
    HIDE = "hide"
    UNHIDE = "unhide"


class EventKind(StrEnum):
    COMMENT = "comment"
    LIVE_VIDEO = "live_video"
    MESSAGE = "message"
    POSTBACK = "postback"
    REFERRAL = "referral"
    REACTION = "reaction"
    DELIVERY = "delivery"
    READ = "read"
    TEMPLATE_STATUS = "template_status"
    IGNORED = "ignored"
    TEST_PING = "test_ping"


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every inbound event. `page_id` is the webhook entry's id (Page or IG account); once the worker
    has resolved an Instagram account to its linked Page (`bot.inbound.accounts`), it is the Page's id and
    `account_id` keeps the Instagram account's."""

    kind: ClassVar[EventKind]
    page_id: str
    channel: Channel
    account_id: str | None = field(default=None, kw_only=True)

    @property
    def key(self) -> str | None:
        """The idempotency key; None for events that have no effect to protect."""
        return None

    @property
    def from_page(self) -> bool:
        """True for the Page's own activity (its comments, Messenger echoes): never fed to the bot."""
        return False


@dataclass(frozen=True, slots=True)
class CommentEvent(Event):
    """A comment added, edited, removed, hidden or unhidden on a Page post (or an IG media)."""

    kind: ClassVar[EventKind] = EventKind.COMMENT
    verb: CommentVerb
    comment_id: str
    post_id: str
    parent_id: str | None
    author_id: str | None
    author_name: str | None
    message: str | None
    created_time: int | None  # seconds since the epoch, as Meta sends it
    source: str = "webhook"

    @property
    def key(self) -> str:
        if self.verb is CommentVerb.EDITED:
            # Each distinct edit is its own event; the same edit delivered twice is one.
            digest = hashlib.sha1((self.message or "").encode()).hexdigest()[:16]
            return f"comment:{self.comment_id}:edited:{digest}"
        return f"comment:{self.comment_id}:{self.verb.value}"

    @property
    def is_reply(self) -> bool:
        """A reply to another comment rather than a top-level comment on the post."""
        return self.parent_id is not None and self.parent_id != self.post_id

    @property
    def from_page(self) -> bool:
        # On Instagram the shop's own comments come from its account, not from the Page.
        return self.author_id is not None and self.author_id in (self.page_id, self.account_id)


@dataclass(frozen=True, slots=True)
class LiveVideoEvent(Event):
    kind: ClassVar[EventKind] = EventKind.LIVE_VIDEO
    video_id: str
    status: str

    @property
    def key(self) -> str:
        return f"live:{self.video_id}:{self.status}"


@dataclass(frozen=True, slots=True)
class MessagingEvent(Event):
    """Base of Messenger / Instagram Direct events: a sender, a recipient and a time in ms."""

    sender_id: str
    recipient_id: str
    timestamp: int
    standby: bool = field(default=False, kw_only=True)  # another app owns the thread

    @property
    def psid(self) -> str:
        """The shopper's Page-scoped id, whichever side of the conversation sent this."""
        return self.sender_id


@dataclass(frozen=True, slots=True)
class Attachment:
    type: str
    url: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Referral:
    ref: str | None
    source: str | None
    type: str | None
    ad_id: str | None = None


@dataclass(frozen=True, slots=True)
class MessageEvent(MessagingEvent):
    """A text or attachment message, from the shopper or (when `is_echo`) sent by the Page."""

    kind: ClassVar[EventKind] = EventKind.MESSAGE
    mid: str
    text: str | None = None
    quick_reply_payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_to_mid: str | None = None
    is_echo: bool = False
    app_id: str | None = None
    metadata: str | None = None

    @property
    def key(self) -> str:
        return f"mid:{self.mid}"

    @property
    def from_page(self) -> bool:
        return self.is_echo

    @property
    def psid(self) -> str:
        return self.recipient_id if self.is_echo else self.sender_id


@dataclass(frozen=True, slots=True)
class PostbackEvent(MessagingEvent):
    """A button tap (including Get Started, which may carry the m.me link's referral)."""

    kind: ClassVar[EventKind] = EventKind.POSTBACK
    payload: str
    title: str | None = None
    referral: Referral | None = None
    mid: str | None = None

    @property
    def key(self) -> str:
        return f"postback:{self.sender_id}:{self.timestamp}:{self.payload}"


@dataclass(frozen=True, slots=True)
class ReferralEvent(MessagingEvent):
    """An existing thread opened through an m.me link with `ref`, an ad or a plugin."""

    kind: ClassVar[EventKind] = EventKind.REFERRAL
    referral: Referral

    @property
    def key(self) -> str:
        return f"referral:{self.sender_id}:{self.timestamp}:{self.referral.ref}"


@dataclass(frozen=True, slots=True)
class ReactionEvent(MessagingEvent):
    """The shopper reacted to (or un-reacted from) a message."""

    kind: ClassVar[EventKind] = EventKind.REACTION
    mid: str
    reaction: str | None
    action: str

    @property
    def key(self) -> str:
        return f"reaction:{self.sender_id}:{self.mid}:{self.action}:{self.reaction}:{self.timestamp}"


@dataclass(frozen=True, slots=True)
class DeliveryEvent(MessagingEvent):
    """All messages to this shopper sent before `watermark` (ms) were delivered."""

    kind: ClassVar[EventKind] = EventKind.DELIVERY
    watermark: int
    mids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"delivery:{self.sender_id}:{self.recipient_id}:{self.watermark}"


@dataclass(frozen=True, slots=True)
class ReadEvent(MessagingEvent):
    """All messages to this shopper sent before `watermark` (ms) were read (IG names one `mid`)."""

    kind: ClassVar[EventKind] = EventKind.READ
    watermark: int
    mid: str | None = None

    @property
    def key(self) -> str:
        return f"read:{self.sender_id}:{self.recipient_id}:{self.watermark}:{self.mid}"


@dataclass(frozen=True, slots=True)
class TemplateStatusEvent(Event):
    """`message_template_status_update`: Meta reviewed one of the Page's message templates."""

    kind: ClassVar[EventKind] = EventKind.TEMPLATE_STATUS
    template_id: str
    event: str  # Meta's word: APPROVED, REJECTED, PENDING, PAUSED, DISABLED...
    name: str | None = None
    language: str | None = None
    reason: str | None = None

    @property
    def key(self) -> str:
        return f"template:{self.template_id}:{self.event}"


@dataclass(frozen=True, slots=True)
class IgnoredEvent(Event):
    """Something we do not act on (unknown field, item, verb or shape), kept so it is counted and logged."""

    kind: ClassVar[EventKind] = EventKind.IGNORED
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TestPingEvent(Event):
    """The app dashboard's "Test" button: `entry.id == "0"`. Logged, never acted on."""

    kind: ClassVar[EventKind] = EventKind.TEST_PING
    __test__: ClassVar[bool] = False  # not a pytest test class, despite the name
    field_name: str = ""


InboundEvent = (
    CommentEvent
    | LiveVideoEvent
    | MessageEvent
    | PostbackEvent
    | ReferralEvent
    | ReactionEvent
    | DeliveryEvent
    | ReadEvent
    | TemplateStatusEvent
    | IgnoredEvent
    | TestPingEvent
)
