"""The conversation list and one conversation: reading, replying, notes, assignment, labels, saved replies.
A user sees only the conversations of their own Pages.

    GET  /inbox                         conversations (q=, filter=cart|unpaid|variant|person|mine, label=)
    GET  /inbox/part/list               the list's fresh HTML, for live updates
    GET  /inbox/c/{id}                  one conversation and the buyer panel (404 if not one of the user's Pages)
    GET  /inbox/c/{id}/part/{thread|panel}   a live region's fresh HTML
    POST /inbox/c/{id}/reply | note | assign | labels
    GET  /inbox/saved-replies · POST /inbox/saved-replies (owners add)
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.handoff import HandoffReason, take_over
from bot.inbox.auth import User
from bot.inbox.core import (
    FILTER_TITLES,
    MAX_NOTE,
    MAX_REPLY,
    ListFilter,
    ReplyMode,
    labels_column,
    parse_labels,
    parse_list_query,
    reply_state,
)
from bot.inbox.member import member_card
from bot.inbox.queries import fetch_panel, fetch_thread, list_conversations
from bot.inbox.tables import InboxNote, InboxThread, InboxUser, SavedReply
from bot.inbox.views.common import (
    USER,
    back_to,
    form_field,
    load_conversation,
    queue_agent_messages,
    redirect,
    render,
    render_conversation,
    signed_in,
)
from bot.runtime.clock import utcnow
from bot.services import OUTBOX_NOTIFIER, READ_SESSIONS, SESSIONS

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _list_context(request: web.Request) -> dict[str, Any]:
    user: User = request[USER]
    query = parse_list_query(request.query, request.query.getall("filter", []))
    async with request.app[READ_SESSIONS]() as session:
        rows = await list_conversations(session, user.pages, query, user.id)
    return {
        "rows": rows,
        "query": query,
        "filters": FILTER_TITLES,
        "ListFilter": ListFilter,
        "request_qs": request.query_string,
    }


@routes.get("/inbox")
@signed_in
async def inbox(request: web.Request) -> web.Response:
    return await render(request, "list.html", **await _list_context(request))


@routes.get("/inbox/part/list")
@signed_in
async def list_part(request: web.Request) -> web.Response:
    return await render(request, "_list.html", **await _list_context(request))


@routes.get("/inbox/c/{id}")
@signed_in
async def conversation_page(request: web.Request) -> web.Response:
    return await render_conversation(request, mark_read=True)


@routes.get("/inbox/c/{id}/part/{part}")
@signed_in
async def conversation_part(request: web.Request) -> web.Response:
    part = request.match_info["part"]
    if part not in ("thread", "panel"):
        raise web.HTTPNotFound()
    async with request.app[READ_SESSIONS]() as session:
        conversation = await load_conversation(request, session)
        thread = await fetch_thread(session, conversation)
        panel = await fetch_panel(session, conversation) if part == "panel" else None
        member = await member_card(session, conversation.page_id, conversation.psid) if part == "panel" else None
    # A fresh form key: the refreshed panel's forms (send cart, adjust points) must still post.
    return await render(request, f"_{part}.html", t=thread, panel=panel, member=member, nonce=secrets.token_urlsafe(16))


@routes.post("/inbox/c/{id}/reply")
@signed_in
async def reply(request: web.Request) -> web.StreamResponse:
    text = form_field(request, "text").strip()
    nonce = form_field(request, "nonce")
    if not text:
        return await render_conversation(request, 400, "Type a reply first.")
    if len(text) > MAX_REPLY:
        return await render_conversation(request, 400, f"A reply can have at most {MAX_REPLY} characters.")
    if not nonce or len(nonce) > 64:
        return await render_conversation(request, 400, "The form is incomplete: reload the page.")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        state = reply_state(utcnow(), conversation.last_user_at)
        if state.mode is ReplyMode.DISABLED:
            refused = state.why
        else:
            refused = None
            await queue_agent_messages(
                request, session, conversation, f"agent-reply:{conversation.id}:{nonce}", [{"text": text}]
            )
            conversation.unread = 0
            # A person answers here now: the bot stays quiet in this chat (bot.handlers.handoff).
            await take_over(session, conversation, HandoffReason.INBOX)
    if refused:
        return await render_conversation(request, 409, refused)
    await request.app[OUTBOX_NOTIFIER].wake()
    return back_to(conversation.id or 0, "#reply")


@routes.post("/inbox/c/{id}/note")
@signed_in
async def note(request: web.Request) -> web.StreamResponse:
    text = form_field(request, "text").strip()
    if not text or len(text) > MAX_NOTE:
        return await render_conversation(request, 400, f"A note needs 1 to {MAX_NOTE} characters.")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        session.add(
            InboxNote(conversation_id=conversation.id, user_id=request[USER].id, text=text, created_at=utcnow())  # type: ignore[arg-type]
        )
    return back_to(conversation.id or 0, "#notes")


async def _thread_state(session: AsyncSession, conversation_id: int) -> InboxThread:
    thread = await session.get(InboxThread, conversation_id)
    return thread or InboxThread(conversation_id=conversation_id, updated_at=utcnow())


@routes.post("/inbox/c/{id}/assign")
@signed_in
async def assign(request: web.Request) -> web.StreamResponse:
    raw = form_field(request, "assignee")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        assignee: int | None = None
        if raw == "me":
            assignee = request[USER].id
        elif raw:
            # ASCII digits only: str.isdigit() also takes "³", which int() refuses (a 500).
            if not (raw.isascii() and raw.isdigit()) or await session.get(InboxUser, int(raw)) is None:
                raise web.HTTPBadRequest(text="assignee: no such user\n")
            assignee = int(raw)
        thread = await _thread_state(session, conversation.id or 0)
        thread.assignee_id, thread.updated_at = assignee, utcnow()
        session.add(thread)
    return back_to(conversation.id or 0)


@routes.post("/inbox/c/{id}/labels")
@signed_in
async def labels(request: web.Request) -> web.StreamResponse:
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        thread = await _thread_state(session, conversation.id or 0)
        thread.labels, thread.updated_at = labels_column(parse_labels(form_field(request, "labels"))), utcnow()
        if form_field(request, "handled") == "1":
            thread.asked_person_at = None  # the person they asked for has answered
            if conversation.handoff_reason == HandoffReason.SHOPPER_ASKED.value:
                conversation.handoff_reason = HandoffReason.INBOX.value
        session.add(thread)
    return back_to(conversation.id or 0)


# --- saved replies -------------------------------------------------------------------------------------


@routes.get("/inbox/saved-replies")
@signed_in
async def saved_replies(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        replies = list((await session.execute(select(SavedReply).order_by(SavedReply.title))).scalars())
    return await render(request, "saved_replies.html", status, replies=replies, error=error)


@routes.post("/inbox/saved-replies")
@signed_in
async def add_saved_reply(request: web.Request) -> web.StreamResponse:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may change saved replies\n")
    title, text = form_field(request, "title").strip(), form_field(request, "text").strip()
    if not title or len(title) > 80 or not text or len(text) > MAX_REPLY:
        return await saved_replies(request, f"A saved reply needs a title (≤80) and a text (≤{MAX_REPLY}).", 400)
    async with request.app[SESSIONS]() as session, session.begin():
        existing = (await session.execute(select(SavedReply).where(SavedReply.title == title))).scalar_one_or_none()
        row = existing or SavedReply(title=title, text=text, created_at=utcnow())
        row.text = text
        session.add(row)
    return redirect("/inbox/saved-replies")
