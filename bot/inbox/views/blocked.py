"""Blocked buyers: block from the buyer panel (owners and agents), unblock (owners), the list of them.

    POST /inbox/c/{id}/block      reason (optional): the shopper's order comments hold nothing from now on
    POST /inbox/c/{id}/unblock    owners only
    GET  /inbox/blocked           the blocked buyers of the user's Pages
    POST /inbox/blocked/unblock   page_id, psid (owners only)

Who does what, as a shop works: whoever runs the live (often an agent) must be able to stop a buyer who
never pays at once; letting one back in is the owner's call, as for the shop's money (points).
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.inbox.views.common import (
    USER,
    back_to,
    form_field,
    load_conversation,
    reader_locale,
    redirect,
    render,
    render_conversation,
    signed_in,
)
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import INBOX_PUBLISHER, READ_SESSIONS, SESSIONS
from bot.store.blocked_buyers import BlockReasonError, block_buyer, clean_reason, list_blocked, unblock_buyer

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _owners_only(request: web.Request) -> None:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may unblock a buyer\n")


async def _changed(request: web.Request, page_id: str, psid: str) -> None:
    # Open panels of this shopper fetch theirs again.
    await request.app[INBOX_PUBLISHER].publish("member", page_id, psid)


@routes.post("/inbox/c/{id}/block")
@signed_in
async def block(request: web.Request) -> web.StreamResponse:
    """Block the shopper on this conversation's Page; a reason too long is shown beside the field, as typed."""
    typed = " ".join(form_field(request, "reason").split())
    try:
        reason = clean_reason(typed)
    except BlockReasonError as exc:
        words = gettext(await reader_locale(request), exc.msgid, **exc.params)
        return await render_conversation(request, 400, block_error=words, block_reason=typed)
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        created = await block_buyer(
            session, conversation.page_id, conversation.psid, reason, request[USER].name, utcnow()
        )
    if created:
        log.info("inbox: %s blocked the buyer of conversation %s", request[USER].name, conversation.id)
        await _changed(request, conversation.page_id, conversation.psid)
    return back_to(conversation.id or 0, "#standing")


@routes.post("/inbox/c/{id}/unblock")
@signed_in
async def unblock(request: web.Request) -> web.StreamResponse:
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)  # another Page's: 404 before 403
        _owners_only(request)
        removed = await unblock_buyer(session, conversation.page_id, conversation.psid)
    if removed:
        log.info("inbox: %s unblocked the buyer of conversation %s", request[USER].name, conversation.id)
        await _changed(request, conversation.page_id, conversation.psid)
    return back_to(conversation.id or 0, "#standing")


@routes.get("/inbox/blocked")
@signed_in
async def blocked_list(request: web.Request) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        rows = await list_blocked(session, request[USER].pages)
    return await render(request, "blocked.html", rows=rows)


@routes.post("/inbox/blocked/unblock")
@signed_in
async def unblock_from_list(request: web.Request) -> web.StreamResponse:
    page_id, psid = form_field(request, "page_id"), form_field(request, "psid")
    if page_id not in request[USER].pages:  # another Page's buyer is "not found" too
        raise web.HTTPNotFound(text="no such blocked buyer\n")
    _owners_only(request)
    async with request.app[SESSIONS]() as session, session.begin():
        removed = await unblock_buyer(session, page_id, psid)
    if not removed:
        raise web.HTTPNotFound(text="no such blocked buyer\n")
    log.info("inbox: %s unblocked a buyer of Page %s", request[USER].name, page_id)
    await _changed(request, page_id, psid)
    return redirect("/inbox/blocked")
