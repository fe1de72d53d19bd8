"""The first-N offers page (owners): "the first 20 who comment SALE get 10% off" on a campaign, made,
followed (how many given, to whom, used or not) and stopped from a phone during a live.

    GET  /inbox/offers · POST           the offers of the owner's Pages, and a new one's form
    GET  /inbox/offers/{id}             one offer: vouchers given, who got them, what became of each
    POST /inbox/offers/{id}/stop        no more vouchers (those given stay valid)

The fields are checked as the admin API checks them (`config.offers_file.parse_offer_fields`, times in the
shop's zone) and written by the same `carts.coupons` functions; a form with a mistake changes nothing and
comes back with what was typed and the reason beside the field.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select, tuple_

from bot.inbox.orders import fetch_shop_zone
from bot.inbox.views.campaigns import local_input
from bot.inbox.views.catalog import locale_of, owner_only
from bot.inbox.views.common import FORM, USER, redirect, render, signed_in
from bot.replies.coupons import discount_text
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from bot.store.tables import CommentLog, Conversation
from carts.coupons import OfferError, create_offer, fetch_offer, fetch_offers, fetch_recipients, stop_offer
from carts.repository import fetch_currency
from carts.tables import Campaign
from config.offers_file import OFFER_FIELDS, parse_offer_fields

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _campaigns(request: web.Request) -> list[Campaign]:
    """The campaigns of the owner's Pages, the newest first."""
    async with request.app[READ_SESSIONS]() as session:
        rows = (await session.execute(select(Campaign).order_by(Campaign.starts_at.desc()))).scalars()  # type: ignore[attr-defined]
        return [c for c in rows if c.page_id in request[USER].pages]


async def _list_page(
    request: web.Request, values: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> web.Response:
    campaigns = await _campaigns(request)
    now = utcnow()
    # Open or coming ones; a closed one only when it was posted (shown again with why it was refused).
    open_ones = [c for c in campaigns if c.ends_at > now or (values and c.key == values.get("campaign"))]
    async with request.app[READ_SESSIONS]() as session:
        offers = [o for o in await fetch_offers(session) if o.campaign_id in {c.id for c in campaigns}]
        zone = await fetch_shop_zone(session)
        currency = await fetch_currency(session)
    if values is None:
        values = {name: "" for name in ("campaign", *OFFER_FIELDS)} | {
            "campaign": open_ones[0].key if open_ones else "",
            "quantity": "20",
            "kind": "percent",
            "value": "10",
            "valid_until": local_input((now + timedelta(days=7)).replace(second=0, microsecond=0), zone),
        }
    return await render(
        request,
        "offers.html",
        400 if errors else 200,
        offers=offers,
        campaigns=open_ones,
        values=values,
        errors=errors or {},
        currency=currency,
        what={o.id: discount_text(await locale_of(request), o.discount, currency) for o in offers},
        notice=request.query.get("done"),
    )


@routes.get("/inbox/offers")
@signed_in
async def offers_page(request: web.Request) -> web.Response:
    owner_only(request)
    return await _list_page(request)


@routes.post("/inbox/offers")
@signed_in
async def new_offer(request: web.Request) -> web.Response:
    owner_only(request)
    locale = await locale_of(request)
    posted = request[FORM]
    values = {name: str(posted.get(name, "")) for name in ("campaign", *OFFER_FIELDS)}
    now = utcnow()
    async with request.app[READ_SESSIONS]() as session:
        zone = await fetch_shop_zone(session)
    spec, errors = parse_offer_fields(values, zone, now)
    campaign = next((c for c in await _campaigns(request) if c.key == values["campaign"]), None)
    if campaign is None:
        errors["campaign"] = "Choose one of your campaigns."
    if errors or spec is None or campaign is None:
        return await _list_page(request, values, {k: gettext(locale, v) for k, v in errors.items()})
    async with request.app[SESSIONS]() as session, session.begin():
        locked = (
            await session.execute(select(Campaign).where(Campaign.id == campaign.id).with_for_update(key_share=True))
        ).scalar_one()
        try:
            offer = await create_offer(session, locked, spec, now)
        except OfferError as exc:
            return await _list_page(request, values, {k: gettext(locale, v) for k, v in exc.errors.items()})
    log.info("inbox: %s made offer %s on %s", request[USER].name, offer.id, campaign.key)
    return redirect(f"/inbox/offers/{offer.id}?done=made")


async def _load(request: web.Request) -> Any:
    text = request.match_info["offer_id"]
    offer = None
    if text.isascii() and text.isdigit() and len(text) <= 12:
        async with request.app[READ_SESSIONS]() as session:
            offer = await fetch_offer(session, int(text))
    # Another Page's offer is "not found" too.
    if offer is None or offer.campaign_id not in {c.id for c in await _campaigns(request)}:
        raise web.HTTPNotFound(text="no such offer\n")
    return offer


@routes.get("/inbox/offers/{offer_id}")
@signed_in
async def offer_page(request: web.Request) -> web.Response:
    owner_only(request)
    offer = await _load(request)
    async with request.app[READ_SESSIONS]() as session:
        recipients = await fetch_recipients(session, offer.id)
        currency = await fetch_currency(session)
        chats: dict[tuple[str, str], tuple[int, str | None]] = {}
        if recipients:
            rows = await session.execute(
                select(Conversation.page_id, Conversation.psid, Conversation.id, Conversation.name).where(
                    tuple_(Conversation.page_id, Conversation.psid).in_({(r.page_id, r.psid) for r in recipients})
                )
            )
            chats = {(page, psid): (cid, name) for page, psid, cid, name in rows.all()}
            # A viewer who only commented has no chat name yet: the name their comment came with.
            authors = dict(
                (
                    await session.execute(
                        select(CommentLog.comment_id, CommentLog.author_name).where(
                            CommentLog.comment_id.in_([r.comment_id for r in recipients])
                        )
                    )
                ).all()
            )
            for r in recipients:
                chat, name = chats.get((r.page_id, r.psid), (None, None))
                chats[(r.page_id, r.psid)] = (chat, name or authors.get(r.comment_id))
    return await render(
        request,
        "offer.html",
        offer=offer,
        recipients=[(r, chats.get((r.page_id, r.psid), (None, None))) for r in recipients],
        currency=currency,
        what=discount_text(await locale_of(request), offer.discount, currency),
        notice=request.query.get("done"),
    )


@routes.post("/inbox/offers/{offer_id}/stop")
@signed_in
async def stop(request: web.Request) -> web.Response:
    owner_only(request)
    offer = await _load(request)
    async with request.app[SESSIONS]() as session, session.begin():
        await stop_offer(session, offer.id, utcnow())
    log.info("inbox: %s stopped offer %s", request[USER].name, offer.id)
    return redirect(f"/inbox/offers/{offer.id}?done=stopped")
