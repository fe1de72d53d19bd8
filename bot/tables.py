"""SQL tables of the spine: processed event keys, conversations and messages, the comment log.

Times are aware UTC datetimes (SQLModel's UTCDateTime keeps them UTC on SQLite too); `bot.db.utcnow` makes them.
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
    created_at: datetime


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
    created_at: datetime


class CommentLog(SQLModel, table=True):
    """Every comment event on a Page with its outcome: the merchant's per-comment trail (invariant 5)."""

    __tablename__ = "comment_log"
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
    received_at: datetime
