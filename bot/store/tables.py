"""SQL tables of the spine: processed event keys, conversations and messages, the comment log.

Times are aware UTC datetimes (SQLModel's UTCDateTime keeps them UTC on SQLite too);
`bot.runtime.clock.utcnow` makes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class ProcessedEvent(SQLModel, table=True):
    """One row per inbound event whose effects are committed: the exactly-once guard (invariant 2)."""

    __tablename__ = "processed_event"
    key: str = Field(primary_key=True, max_length=400)
    kind: str = Field(max_length=40)
    stream_id: str | None = Field(default=None, max_length=40)
    processed_at: datetime


class Conversation(SQLModel, table=True):
    """A Messenger / Instagram Direct thread between one Page and one shopper (Page-scoped id)."""

    __tablename__ = "conversation"
    __table_args__ = (UniqueConstraint("page_id", "psid", name="uq_conversation_page_psid"),)
    id: int | None = Field(default=None, primary_key=True)
    page_id: str = Field(max_length=64, index=True)
    psid: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    name: str | None = Field(default=None, max_length=200)
    # Start of the shopper's 24-hour window: their last message, postback, referral or reaction.
    last_user_at: datetime | None = None
    last_message_at: datetime | None = Field(default=None, index=True)
    unread: int = 0
    last_fallback_at: datetime | None = None  # the "we'll reply soon" answer is sent at most once a while
    # A person handles the conversation since their last message here (or the shopper's request for one):
    # the bot stays silent until an agent hands back or the quiet period passes (bot.handlers.handoff). None: the bot.
    agent_active_at: datetime | None = None
    handoff_reason: str | None = Field(default=None, max_length=20)  # agent_replied | shopper_asked
    # The inbox user who took it over (shown as who answers); None from Meta's own apps or the admin API.
    agent_name: str | None = Field(default=None, max_length=200)
    created_at: datetime
    # The shopper's picture as Meta's user profile API gave it (its URL only, shown as is), and when the name
    # and picture were last fetched (bot.inbound.user_profiles); None: not yet.
    profile_pic: str | None = Field(default=None, sa_column=Column(Text))
    profile_fetched_at: datetime | None = None
    # The language the shopper reads the bot in, and its source (bot.replies.i18n.LocaleSource: their choice,
    # Meta's, the script they write); None: the shop's language.
    locale: str | None = Field(default=None, max_length=16)
    locale_source: int | None = None


class Message(SQLModel, table=True):
    """A message in a conversation: from the shopper (`in`), or from the bot or an agent (`out`)."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_conversation_sent", "conversation_id", "sent_at"),)
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    mid: str | None = Field(default=None, max_length=200, unique=True)
    direction: str = Field(max_length=3)  # in | out
    author: str = Field(max_length=10)  # shopper | bot | agent
    kind: str = Field(max_length=20)  # text | attachment | quick_reply | postback | referral | reaction
    text: str | None = Field(default=None, sa_column=Column(Text))
    payload: str | None = Field(default=None, sa_column=Column(Text))  # JSON: attachments, payloads, ref
    sent_at: datetime
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    # For our outgoing messages: sent | failed | refused, with Meta's (or the rules') reason in words.
    status: str | None = Field(default=None, max_length=16)
    error: str | None = Field(default=None, sa_column=Column(Text))
    outbox_id: int | None = Field(default=None, index=True)
    created_at: datetime


class CommentLog(SQLModel, table=True):
    """Every comment event on a Page with its outcome: the merchant's per-comment trail (invariant 5)."""

    __tablename__ = "comment_log"
    # For the pass that decides comments left `received` (bot.handlers.comments.decide_stuck_comments).
    __table_args__ = (Index("ix_comment_log_outcome_received_at", "outcome", "received_at"),)
    id: int | None = Field(default=None, primary_key=True)
    event_key: str = Field(max_length=400, unique=True)
    page_id: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=16)
    post_id: str = Field(max_length=128, index=True)
    comment_id: str = Field(max_length=128, index=True)
    parent_id: str | None = Field(default=None, max_length=128)
    author_id: str | None = Field(default=None, max_length=64)
    author_name: str | None = Field(default=None, max_length=200)
    verb: str = Field(max_length=10)
    message: str | None = Field(default=None, sa_column=Column(Text))
    created_time: datetime | None = None
    source: str = Field(default="webhook", max_length=16)
    stream_id: str | None = Field(default=None, max_length=40)
    outcome: str = Field(max_length=32)  # received | ignored | (later) added, waitlisted, ...
    detail: str | None = Field(default=None, sa_column=Column(Text))
    # Whether our private reply reached the shopper: due (decided, reply not composed yet) | queued | sent |
    # failed | refused, and why not. Indexed for the worker's pass that composes the due replies.
    reply_status: str | None = Field(default=None, max_length=16, index=True)
    reply_error: str | None = Field(default=None, sa_column=Column(Text))
    reply_outbox_id: int | None = Field(default=None, index=True)  # the private reply that answers it
    received_at: datetime


class OutboxMessage(SQLModel, table=True):
    """Everything we send to Meta, first written here in the transaction of the effect that caused it.

    The worker's `OutboxSender` delivers rows; `idempotency_key` makes enqueueing a no-op the second time
    (for a private reply it is `private_reply:<comment id>`, so a comment can only ever get one).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=400, unique=True)
    page_id: str = Field(max_length=64)
    kind: str = Field(max_length=20)  # message | private_reply | comment_reply | hide_comment | unhide_comment
    psid: str | None = Field(default=None, max_length=64)
    comment_id: str | None = Field(default=None, max_length=128, index=True)
    comment_created_at: datetime | None = None
    author: str = Field(default="bot", max_length=10)  # bot | agent
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON: the Send API message, or {"text": ...}
    status: str = Field(default="pending", max_length=16)  # pending | sending | sent | failed | refused
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None
    claim_token: str | None = Field(default=None, max_length=32, index=True)  # which sender's claim holds it
    messaging_type: str | None = Field(default=None, max_length=20)
    tag: str | None = Field(default=None, max_length=40)
    meta_id: str | None = Field(default=None, max_length=200)  # Meta's message_id or new comment id
    error_class: str | None = Field(default=None, max_length=32)
    error_code: int | None = None
    error_subcode: int | None = None
    error_message: str | None = Field(default=None, sa_column=Column(Text))
    fbtrace_id: str | None = Field(default=None, max_length=100)
    created_at: datetime
    sent_at: datetime | None = None
    confirmed_at: datetime | None = None  # Meta echoed it back (metadata plusone:outbox:<id>)
    # What to queue instead if this fails for good: {"public_reply": {"key": ..., "text": ...}}.
    on_failure: str | None = Field(default=None, sa_column=Column(Text))
    # "order_update": outside the 24-hour window it may go as the approved utility template in `template`
    # (JSON {"name", "language", "params"}), Meta's only channel for order news after 27 April 2026.
    purpose: str | None = Field(default=None, max_length=20)
    template: str | None = Field(default=None, sa_column=Column(Text))
    # "instagram" for a reply to an Instagram comment (its own limits and its own public reply edge); None: Facebook.
    channel: str | None = Field(default=None, max_length=16)


class MessageTemplate(SQLModel, table=True):
    """A utility message template of the shop file, as made on one Page, and Meta's review of it."""

    __tablename__ = "message_template"
    __table_args__ = (UniqueConstraint("page_id", "name", "language", name="uq_message_template_page_name_lang"),)
    id: int | None = Field(default=None, primary_key=True)
    page_id: str = Field(max_length=64)
    name: str = Field(max_length=512)
    language: str = Field(max_length=16)
    body: str = Field(sa_column=Column(Text, nullable=False))  # with {{1}}..{{n}}
    fields: str = Field(sa_column=Column(Text, nullable=False))  # JSON list: the order field of each {{n}}
    status: str = Field(default="pending", max_length=16)  # pending | approved | rejected
    meta_id: str | None = Field(default=None, max_length=64, index=True)  # None: not made on the Page yet
    reason: str | None = Field(default=None, sa_column=Column(Text))  # Meta's word on a rejection
    created_at: datetime
    last_checked_at: datetime | None = None


class PageState(SQLModel, table=True):
    """Per-Page sending state: a Page-wide refusal pauses the Page's outbox instead of failing every message.

    `pause_kind` is the GraphErrorClass that paused it (throttled, page_restricted, permission, bad_token);
    `paused_until` is when a throttle ends (Meta's estimate, else our back-off), after which one send probes;
    `throttle_streak` counts throttles in a row, which grows that back-off.
    """

    __tablename__ = "page_state"
    page_id: str = Field(primary_key=True, max_length=64)
    sending_paused: bool = False
    paused_reason: str | None = Field(default=None, sa_column=Column(Text))
    paused_at: datetime | None = None
    pause_kind: str | None = Field(default=None, max_length=32)
    paused_until: datetime | None = None
    throttle_streak: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class FaqRuleRow(SQLModel, table=True):
    """One keyword FAQ rule of a Page (`parsers.faq.FaqRule`), from the shop file or the admin API."""

    __tablename__ = "faq_rule"
    __table_args__ = (UniqueConstraint("page_id", "key", name="uq_faq_rule_page_key"),)
    id: int | None = Field(default=None, primary_key=True)
    page_id: str = Field(max_length=64, index=True)
    key: str = Field(max_length=80)
    position: int = 0  # the order in the file: the earlier rule wins a full tie
    match: str = Field(default="any", max_length=8)  # any | all | exact
    priority: int = 0
    keywords: str = Field(sa_column=Column(Text, nullable=False))  # JSON list
    reply: str = Field(sa_column=Column(Text, nullable=False))  # JSON: text, quick_replies, buttons
    updated_at: datetime


class PageReplies(SQLModel, table=True):
    """A Page's own welcome and fallback texts (the shop file's faq section); None: the settings' default."""

    __tablename__ = "page_replies"
    page_id: str = Field(primary_key=True, max_length=64)
    welcome: str | None = Field(default=None, sa_column=Column(Text))
    fallback: str | None = Field(default=None, sa_column=Column(Text))
    updated_at: datetime


class LiveVideo(SQLModel, table=True):
    """A Page's live video as Meta reported it (the `live_videos` webhook) or the merchant started it.

    While it is live and a campaign sells on it, its comments are also read from Meta's Live Comments
    stream and its comments edge (`bot.inbound.live_comments`).
    """

    __tablename__ = "live_video"
    video_id: str = Field(primary_key=True, max_length=64)
    page_id: str = Field(max_length=64, index=True)
    status: str = Field(max_length=40)  # Meta's word, lower case: live | live_stopped | vod | ...
    # The video's post as Meta names it (`GET /{video}?fields=post_id`): its feed comments carry it, and it
    # is not `{page}_{video}` (docs/meta-platform.md, "Live video ids and statuses"). None until learned.
    post_id: str | None = Field(default=None, max_length=128, index=True)
    started_by: str = Field(max_length=16)  # webhook | merchant
    started_at: datetime | None = None
    ended_at: datetime | None = None
    updated_at: datetime


class InstagramAccount(SQLModel, table=True):
    """An Instagram professional account linked to one of the shop's Pages (the shop file's `instagram:`).

    Instagram webhooks name the account (`entry.id`); the Page's token sends for it (Instagram Messaging
    through the Messenger Platform, `POST /{page-id}/messages`), so its events are handled as the Page's.
    """

    __tablename__ = "instagram_account"
    account_id: str = Field(primary_key=True, max_length=64)
    page_id: str = Field(max_length=64, index=True)
    username: str | None = Field(default=None, max_length=200)
    updated_at: datetime


class MessengerProfileRow(SQLModel, table=True):
    """The shop file's `messenger_profile:` section as loaded (config.messenger_profile_file, as JSON), for
    the profile keeper to set on each Page (bot.outbound.messenger_profile). One row, id 1; none: defaults."""

    __tablename__ = "messenger_profile"
    id: int = Field(default=1, primary_key=True)
    config: str = Field(sa_column=Column(Text, nullable=False))  # JSON of MessengerProfileConfig
    updated_at: datetime


class BlockedBuyer(SQLModel, table=True):
    """A shopper the shop no longer sells to (one who orders and never pays), per Page (a PSID is Page-scoped).

    Their order comments hold no stock and get a polite private reply asking them to write to the shop
    (bot.handlers.comments); a size picked in the chat claims nothing either. Unblocking deletes the row.
    """

    __tablename__ = "blocked_buyer"
    page_id: str = Field(primary_key=True, max_length=64)
    psid: str = Field(primary_key=True, max_length=64)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    blocked_by: str = Field(max_length=80)  # the inbox user's name
    blocked_at: datetime


class LivePointer(SQLModel, table=True):
    """A live campaign's "now selling" pointer settings: the viewers' delay it allows (bot.store.pointer)."""

    __tablename__ = "live_pointer"
    campaign_id: int = Field(primary_key=True, foreign_key="campaign.id")
    grace_s: int  # a comment is matched to what was on screen in [created - grace_s, created]
    updated_by: str = Field(max_length=200)
    updated_at: datetime


class LivePointerMove(SQLModel, table=True):
    """One move of a live's "now selling" pointer: to a product of its campaign (its order code) or to
    nothing on screen (None). The history is the truth: what is on screen now is the latest row, and the
    rows in order are the live's chapters (carts.pointer_rules)."""

    __tablename__ = "live_pointer_move"
    __table_args__ = (Index("ix_live_pointer_move_campaign_moved", "campaign_id", "moved_at"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    video_id: str = Field(max_length=64)  # the live video it was on screen in
    product_code: str | None = Field(default=None, max_length=40)
    moved_at: datetime
    moved_by: str = Field(max_length=200)  # the inbox user's name, or "api"


class EmailOutbox(SQLModel, table=True):
    """Every e-mail we send, first written here in the transaction of the effect that caused it.

    `bot.outbound.email_outbox` queues rows (`key` makes a second enqueue a no-op) and its `EmailSender`
    delivers them through `bot.outbound.mailer`. A row to a member who opted out of marketing, or to an
    address on `email_opt_out`, ends `refused` with its reason and is never sent.
    """

    __tablename__ = "email_outbox"
    __table_args__ = (Index("ix_email_outbox_due", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=400, unique=True)
    member_id: int | None = Field(default=None, index=True)
    to_address: str = Field(max_length=320)
    subject: str = Field(max_length=400)
    text: str = Field(sa_column=Column(Text, nullable=False))
    html: str | None = Field(default=None, sa_column=Column(Text))
    locale: str = Field(max_length=16)
    purpose: str = Field(max_length=32)  # journey | marketing | transactional (only this one ignores opt-outs)
    status: str = Field(default="pending", max_length=16)  # pending | sending | sent | failed | refused
    refusal: str | None = Field(default=None, max_length=32)  # opted_out | address_opted_out | no_smtp ...
    error: str | None = Field(default=None, sa_column=Column(Text))  # the SMTP server's last answer
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None  # a sender holds the row until then (a crashed one's is taken back)
    message_id: str | None = Field(default=None, max_length=200)  # our Message-ID header
    sent_at: datetime | None = None
    opened_at: datetime | None = None  # the first time its open pixel was fetched
    open_token: str = Field(max_length=64, unique=True)
    created_at: datetime


class EmailOptOut(SQLModel, table=True):
    """An address that asked for no more marketing e-mail (its unsubscribe link), member or not."""

    __tablename__ = "email_opt_out"
    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=320, unique=True)  # lower-cased
    member_id: int | None = Field(default=None, index=True)
    source: str = Field(max_length=16)  # email_link | messenger | merchant | api
    created_at: datetime
