"""The conversation list and one conversation: reading, replying, notes, assignment, labels, saved replies.
A user sees only the conversations of their own Pages.

    GET  /inbox                         conversations (q=, filter=cart|unpaid|variant|person|mine, label=)
    GET  /inbox/part/list               the list's fresh HTML, for live updates
    GET  /inbox/c/{id}                  one conversation and the buyer panel (404 if not one of the user's Pages)
    GET  /inbox/c/{id}/part/{thread|panel}   a live region's fresh HTML
    POST /inbox/c/{id}/reply | note | assign | labels
    POST /inbox/c/{id}/handoff          to=bot: hand back to the bot · to=person: the bot stays quiet
    GET  /inbox/saved-replies · POST /inbox/saved-replies (owners add) · POST /inbox/saved-replies/{id}
         (owners edit) · POST /inbox/saved-replies/{id}/delete (owners); each Page has its own
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.handoff import HandoffReason, hand_back, take_over
from bot.inbox.auth import User
from bot.inbox.core import (
    FILTER_TITLES,
    MAX_NOTE,
    MAX_REPLY,
    PLACEHOLDERS,
    ListFilter,
    ReplyMode,
    labels_column,
    parse_labels,
    parse_list_query,
    reply_state,
    unknown_placeholders,
)
from bot.inbox.member import member_card
from bot.inbox.queries import fetch_panel, fetch_thread, list_conversations, users_of_pages
from bot.inbox.tables import InboxNote, InboxThread, SavedReply
from bot.inbox.views.common import (
    USER,
    back_to,
    form_field,
    load_conversation,
    queue_agent_messages,
    reader_locale,
    redirect,
    render,
    render_conversation,
    signed_in,
    thread_settings,
)
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import OUTBOX_NOTIFIER, READ_SESSIONS, SESSIONS, SETTINGS
from bot.web.numbers import ID_MAX, path_id, read_int

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def refuse(request: web.Request, status: int, msgid: str, **params: object) -> web.Response:
    """The conversation again with why nothing was done, in the reader's language (`msgid`: the catalog's
    English, `{names}` filled from `params`; a text the catalog lacks, such as Meta's window reason, as it is)."""
    return await render_conversation(request, status, gettext(await reader_locale(request), msgid, **params))


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
        thread = await fetch_thread(session, conversation, **thread_settings(request))
        panel = await fetch_panel(session, conversation, now=utcnow()) if part == "panel" else None
        member = await member_card(session, conversation.page_id, conversation.psid) if part == "panel" else None
    # A fresh form key: the refreshed panel's forms (send cart, adjust points) must still post.
    return await render(request, f"_{part}.html", t=thread, panel=panel, member=member, nonce=secrets.token_urlsafe(16))


@routes.post("/inbox/c/{id}/reply")
@signed_in
async def reply(request: web.Request) -> web.StreamResponse:
    text = form_field(request, "text").strip()
    nonce = form_field(request, "nonce")
    if not text:
        return await refuse(request, 400, "Type a reply first.")
    if len(text) > MAX_REPLY:
        return await refuse(request, 400, "A reply can have at most {n} characters.", n=MAX_REPLY)
    if not nonce or len(nonce) > 64:
        return await refuse(request, 400, "The form is incomplete: reload the page.")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        state = reply_state(utcnow(), conversation.last_user_at, request.app[SETTINGS].human_agent_permission)
        if state.mode is ReplyMode.DISABLED:
            refused = state.why
        else:
            refused = None
            await queue_agent_messages(
                request, session, conversation, f"agent-reply:{conversation.id}:{nonce}", [{"text": text}]
            )
            conversation.unread = 0
            # A person answers here now: the bot stays quiet in this chat (bot.handlers.handoff).
            await take_over(session, conversation, HandoffReason.INBOX, by=request[USER].name)
    if refused:
        return await refuse(request, 409, refused)
    await request.app[OUTBOX_NOTIFIER].wake()
    return back_to(conversation.id or 0, "#reply")


@routes.post("/inbox/c/{id}/note")
@signed_in
async def note(request: web.Request) -> web.StreamResponse:
    text = form_field(request, "text").strip()
    if not text or len(text) > MAX_NOTE:
        return await refuse(request, 400, "A note needs 1 to {n} characters.", n=MAX_NOTE)
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
            # Only someone who works on this conversation's Page: the others are not in its directory.
            page_users = dict(await users_of_pages(session, frozenset([conversation.page_id])))
            try:
                assignee = read_int(raw, 1, ID_MAX)
            except ValueError:
                assignee = None
            if assignee not in page_users:
                raise web.HTTPBadRequest(text="assignee: no such user\n")
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


@routes.post("/inbox/c/{id}/handoff")
@signed_in
async def handoff(request: web.Request) -> web.StreamResponse:
    """Who answers the chat: `to=bot` hands it back (the bot answers again at once, and the shopper's call
    for a person counts as answered), `to=person` keeps the bot quiet for the quiet period, as a reply does."""
    to = form_field(request, "to")
    if to not in ("bot", "person"):
        raise web.HTTPBadRequest(text="to: bot or person\n")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        if to == "bot":
            await hand_back(session, conversation)
            thread = await session.get(InboxThread, conversation.id)
            if thread is not None and thread.asked_person_at is not None:
                thread.asked_person_at, thread.updated_at = None, utcnow()
                session.add(thread)
        else:
            await take_over(session, conversation, HandoffReason.INBOX, by=request[USER].name)
    log.info("inbox: %s gave conversation %s to the %s", request[USER].name, conversation.id, to)
    return back_to(conversation.id or 0, "#who")


# --- saved replies -------------------------------------------------------------------------------------


@routes.get("/inbox/saved-replies")
@signed_in
async def saved_replies(request: web.Request) -> web.Response:
    return await _saved_replies_page(request)


async def _saved_replies_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    # Not the route itself: `signed_in`'s wrapper takes the request alone (a 400 once answered 500 so).
    user: User = request[USER]
    async with request.app[READ_SESSIONS]() as session:
        replies = list(
            (
                await session.execute(
                    select(SavedReply)
                    .where(SavedReply.page_id.in_(user.pages))  # type: ignore[attr-defined]
                    .order_by(SavedReply.page_id, SavedReply.title)
                )
            ).scalars()
        )
    return await render(
        request,
        "saved_replies.html",
        status,
        replies=replies,
        pages=sorted(user.pages),
        placeholders=PLACEHOLDERS,
        error=error,
    )


def _saved_reply_form(request: web.Request) -> tuple[str, str, str | None]:
    """Title and text from the form, and what is wrong with them (None when nothing)."""
    title, text = form_field(request, "title").strip(), form_field(request, "text").strip()
    if not title or len(title) > 80 or not text or len(text) > MAX_REPLY:
        return title, text, f"A saved reply needs a title (≤80) and a text (≤{MAX_REPLY})."
    if unknown := unknown_placeholders(text):
        known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        return title, text, f"{', '.join(unknown)} is not a placeholder: use {known}."
    return title, text, None


def _owner(request: web.Request) -> None:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may change saved replies\n")


async def _own_saved_reply(request: web.Request, session: AsyncSession) -> SavedReply:
    reply_id = path_id(request)
    row = await session.get(SavedReply, reply_id) if reply_id is not None else None
    if row is None or row.page_id not in request[USER].pages:  # another Page's: "not found" too
        raise web.HTTPNotFound(text="no such saved reply\n")
    return row


@routes.post("/inbox/saved-replies")
@signed_in
async def add_saved_reply(request: web.Request) -> web.StreamResponse:
    """Add one to a Page (or change the text of the Page's reply of that title)."""
    _owner(request)
    pages = request[USER].pages
    page_id = form_field(request, "page_id") or (next(iter(pages)) if len(pages) == 1 else "")
    if page_id not in pages:
        return await _saved_replies_page(request, "Pick one of your Pages for the saved reply.", 400)
    title, text, wrong = _saved_reply_form(request)
    if wrong:
        return await _saved_replies_page(request, wrong, 400)
    async with request.app[SESSIONS]() as session, session.begin():
        existing = (
            await session.execute(select(SavedReply).where(SavedReply.page_id == page_id, SavedReply.title == title))
        ).scalar_one_or_none()
        row = existing or SavedReply(page_id=page_id, title=title, text=text, created_at=utcnow())
        row.text = text
        session.add(row)
    return redirect("/inbox/saved-replies")


@routes.post("/inbox/saved-replies/{id}")
@signed_in
async def edit_saved_reply(request: web.Request) -> web.StreamResponse:
    _owner(request)
    title, text, wrong = _saved_reply_form(request)
    async with request.app[SESSIONS]() as session, session.begin():
        row = await _own_saved_reply(request, session)
        if not wrong:
            taken = (
                await session.execute(
                    select(SavedReply.id).where(
                        SavedReply.page_id == row.page_id, SavedReply.title == title, SavedReply.id != row.id
                    )
                )
            ).first()
            if taken is not None:
                wrong = f"The Page already has a saved reply called {title!r}."
            else:
                row.title, row.text = title, text
                session.add(row)
    if wrong:
        return await _saved_replies_page(request, wrong, 400)
    return redirect("/inbox/saved-replies")


@routes.post("/inbox/saved-replies/{id}/delete")
@signed_in
async def delete_saved_reply(request: web.Request) -> web.StreamResponse:
    _owner(request)
    async with request.app[SESSIONS]() as session, session.begin():
        await session.delete(await _own_saved_reply(request, session))
    return redirect("/inbox/saved-replies")
