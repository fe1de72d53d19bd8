"""Conversation rules (issue 6): each conversation's 24-hour window, and whether a person handles it.

- The window: Meta lets the Page answer freely for 24 hours after the shopper's last own action (a
  message, postback, referral or reaction: `Conversation.last_user_at`, kept by `bot.inbound.recorders`).
- Handoff: when a person writes to the shopper (an echo from another app, such as Meta's Page inbox or
  Business Suite) or the shopper asks for a person (`agent` / `真人` / `人工`, `parsers.faq.is_agent_request`),
  the conversation is the person's: `bot_is_silenced` is true and the bot sends nothing automated there
  (no FAQ, no fallback, no welcome, no cart answers) until an agent hands back (`hand_back`, the admin
  API) or the quiet period (`PLUSONE_HANDOFF_QUIET_S`) passes since the person's last message. Private
  replies to comments are answers to comments, not chat, and still go out.

`conversation_state` and `agent_is_handling` are pure; the rest read or write the conversation row in
the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbound.events import Event, MessageEvent
from bot.inbound.router import HandlerContext
from bot.outbound.messaging_rules import STANDARD_WINDOW
from bot.runtime.clock import from_epoch_ms, utcnow
from bot.store.conversations import BOT_METADATA_PREFIX, fetch_or_create_conversation
from bot.store.tables import Conversation

__all__ = [
    "AGENT_REQUEST_TEXT",
    "ConversationState",
    "HandoffReason",
    "HandoffRecorder",
    "agent_is_handling",
    "bot_is_silenced",
    "conversation_state",
    "fetch_conversation",
    "hand_back",
    "is_agent_echo",
    "take_over",
]

AGENT_REQUEST_TEXT = "OK! A person from our team will reply here soon. 好的！我們的同事會盡快在這裡回覆你。"


class HandoffReason(StrEnum):
    AGENT_REPLIED = "agent_replied"
    SHOPPER_ASKED = "shopper_asked"
    INBOX = "inbox"  # taken over from the admin API (later: the merchant's inbox)


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What the inbox (and the bot) need to know about a conversation right now."""

    window_open: bool
    window_ends_at: datetime | None
    agent_handling: bool
    agent_active_at: datetime | None
    handoff_reason: str | None
    bot_resumes_at: datetime | None  # when the quiet period ends, if no one hands back before
    agent_name: str | None = None  # the inbox user who took over (None: Meta's apps, the admin API)

    def to_dict(self) -> dict[str, object]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "window_open": self.window_open,
            "window_ends_at": iso(self.window_ends_at),
            "agent_handling": self.agent_handling,
            "agent_active_at": iso(self.agent_active_at),
            "handoff_reason": self.handoff_reason,
            "bot_resumes_at": iso(self.bot_resumes_at),
            "agent_name": self.agent_name,
        }


def agent_is_handling(conversation: Conversation, now: datetime, quiet: timedelta) -> bool:
    at = conversation.agent_active_at
    return at is not None and now - at < quiet


def conversation_state(conversation: Conversation, now: datetime, quiet: timedelta) -> ConversationState:
    ends = conversation.last_user_at + STANDARD_WINDOW if conversation.last_user_at else None
    handling = agent_is_handling(conversation, now, quiet)
    return ConversationState(
        window_open=ends is not None and now < ends,
        window_ends_at=ends,
        agent_handling=handling,
        agent_active_at=conversation.agent_active_at,
        handoff_reason=conversation.handoff_reason if handling else None,
        bot_resumes_at=conversation.agent_active_at + quiet if handling and conversation.agent_active_at else None,
        agent_name=conversation.agent_name if handling else None,
    )


def is_agent_echo(event: Event, app_id: str | None) -> bool:
    """A message a person sent from another app (the Page inbox, Business Suite), not one of ours."""
    if not isinstance(event, MessageEvent) or not event.is_echo:
        return False
    ours = (app_id is not None and event.app_id == app_id) or (event.metadata or "").startswith(BOT_METADATA_PREFIX)
    return not ours


async def fetch_conversation(session: AsyncSession, page_id: str, psid: str) -> Conversation | None:
    stmt = select(Conversation).where(Conversation.page_id == page_id, Conversation.psid == psid)
    return (await session.execute(stmt)).scalar_one_or_none()


async def bot_is_silenced(
    session: AsyncSession, page_id: str, psid: str, quiet: timedelta, now: datetime | None = None
) -> bool:
    """True while a person handles this conversation: the bot must not send anything automated into it."""
    conversation = await fetch_conversation(session, page_id, psid)
    return conversation is not None and agent_is_handling(conversation, now or utcnow(), quiet)


async def take_over(
    session: AsyncSession,
    conversation: Conversation,
    reason: HandoffReason,
    at: datetime | None = None,
    by: str | None = None,
) -> None:
    """A person handles the conversation from `at` (their message's time; never moves back in time);
    `by`: the inbox user's name, shown in the inbox as who answers."""
    at = at or utcnow()
    if conversation.agent_active_at is None or at > conversation.agent_active_at:
        conversation.agent_active_at = at
        conversation.handoff_reason = reason.value
        conversation.agent_name = by
        session.add(conversation)
        await session.flush()


async def hand_back(session: AsyncSession, conversation: Conversation) -> None:
    """The bot answers the conversation again."""
    conversation.agent_active_at = None
    conversation.handoff_reason = None
    conversation.agent_name = None
    session.add(conversation)
    await session.flush()


class HandoffRecorder:
    """Runs for every event (after `ConversationRecorder`): a person's echo means a person handles it."""

    def __init__(self, app_id: str | None) -> None:
        self.app_id = app_id

    async def __call__(self, event: Event, ctx: HandlerContext) -> None:
        if not is_agent_echo(event, self.app_id):
            return
        assert isinstance(event, MessageEvent)
        conversation = await fetch_or_create_conversation(
            ctx.session, page_id=event.page_id, psid=event.psid, channel=event.channel.value
        )
        await take_over(ctx.session, conversation, HandoffReason.AGENT_REPLIED, from_epoch_ms(event.timestamp))
