"""SQL tables of the merchant inbox: users and their Pages, per-conversation inbox state, notes, saved replies.

Sessions are not here: they live in Redis with a time to live (`bot.inbox.auth`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class InboxUser(SQLModel, table=True):
    """A person who signs in to the inbox. `role`: owner (also orders, dead letters) or agent."""

    __tablename__ = "inbox_user"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True)
    password_hash: str = Field(max_length=200)
    role: str = Field(default="agent", max_length=10)  # owner | agent
    active: bool = True
    created_at: datetime
    # Moved on when the password, role or Pages change, or on disable or sign-out-everywhere: every session
    # opened before then is over (a session remembers the epoch it began in).
    session_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    locale: str | None = Field(default=None, max_length=16)  # "en" | "zh_Hant"; None: the shop's language


class InboxUserPage(SQLModel, table=True):
    """A Page a user may see: every query of the inbox is limited to these."""

    __tablename__ = "inbox_user_page"
    __table_args__ = (UniqueConstraint("user_id", "page_id", name="uq_inbox_user_page"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="inbox_user.id", index=True)
    page_id: str = Field(max_length=64)


class InboxThread(SQLModel, table=True):
    """The inbox's own state of a conversation: who has it, its labels, whether the shopper asked for a person."""

    __tablename__ = "inbox_thread"
    conversation_id: int = Field(primary_key=True, foreign_key="conversation.id")
    assignee_id: int | None = Field(default=None, index=True)
    labels: str = Field(default="", max_length=400)  # ",vip,friday live," : delimited so LIKE finds whole labels
    asked_person_at: datetime | None = None
    updated_at: datetime


class InboxNote(SQLModel, table=True):
    """A private note on a conversation: seen by the Page's users, never sent to the shopper."""

    __tablename__ = "inbox_note"
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    user_id: int = Field(foreign_key="inbox_user.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class SavedReply(SQLModel, table=True):
    """A canned answer the Page's agents insert into the reply box; placeholders such as `{name}` are
    filled for the conversation (`bot.inbox.core.PLACEHOLDERS`). Each Page has its own."""

    __tablename__ = "inbox_page_saved_reply"
    __table_args__ = (UniqueConstraint("page_id", "title", name="uq_inbox_page_saved_reply_title"),)
    id: int | None = Field(default=None, primary_key=True)
    page_id: str = Field(max_length=64, index=True)
    title: str = Field(max_length=80)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime


class InboxPasswordLink(SQLModel, table=True):
    """A one-time link to set a password: an invitation, or a reset an owner made. One per user (a new one
    replaces the old); only a SHA-256 of its token is kept, so the link is shown once, when made."""

    __tablename__ = "inbox_password_link"
    user_id: int = Field(primary_key=True, foreign_key="inbox_user.id")
    token_hash: str = Field(max_length=64, unique=True)
    purpose: str = Field(max_length=10)  # invite | reset
    created_at: datetime
    expires_at: datetime


class LuckyDrawSeed(SQLModel, table=True):
    """A lucky draw announced on a campaign and not drawn yet: its rules and secret seed, of which only the
    commitment (sha256 of the seed) is shown until the draw (bot.inbox.draw_rules). One per campaign."""

    __tablename__ = "lucky_draw_seed"
    campaign_id: int = Field(primary_key=True, foreign_key="campaign.id")
    seed: str = Field(max_length=64)
    commitment: str = Field(max_length=64)
    rules: str = Field(sa_column=Column(Text, nullable=False))  # JSON of bot.inbox.draw_rules.DrawRules
    announced_by: str = Field(max_length=80)
    announced_at: datetime


class LuckyDraw(SQLModel, table=True):
    """A lucky draw made: its rules, seed, the entrants in the documented order and the winners in draw order.

    Anyone can run it again from `seed` and `entrants` (`plusone draw verify`); `winners` is JSON
    [{"psid", "name", "comment_id", "told"}], `told` saying how the winner was told (private_reply |
    message | none)."""

    __tablename__ = "lucky_draw"
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    page_id: str = Field(max_length=64)
    seed: str = Field(max_length=64)
    commitment: str = Field(max_length=64)
    rules: str = Field(sa_column=Column(Text, nullable=False))
    entrants: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of PSIDs, sorted
    winners: str = Field(sa_column=Column(Text, nullable=False))
    announced_at: datetime
    drawn_by: str = Field(max_length=80)
    drawn_at: datetime
