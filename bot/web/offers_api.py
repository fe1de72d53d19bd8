"""Admin JSON API for first-N keyword offers: "the first 20 who comment SALE get 10% off".

The same checks as the console's offers page (`config.offers_file.parse_offer_fields`) and the same
writes (`carts.coupons`). Every route needs `Authorization: Bearer <admin token>`; bad input answers 4xx
with `{"error": "...", "field": "..."}` and changes nothing.

    GET  /api/offers[?campaign=KEY]       {"offers": [...]}, the newest first
    POST /api/offers                      {"campaign": KEY, "keywords": ["SALE", "優惠"], "quantity": 20,
                                          "kind": "percent" | "amount", "value": 10, "min_spend": 300,
                                          "valid_until": "2026-12-20T23:59:00+08:00"}: 201 {"offer": {...}}
    GET  /api/offers/{id}                 {"offer": {...}, "recipients": [{"psid", "code", "comment_id",
                                          "given_at", "use"}]}
    POST /api/offers/{id}/stop            no more vouchers (those given stay valid); stopped already: 200
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from bot.runtime.clock import utcnow
from bot.services import SESSIONS
from bot.web.json_api import fail, read_json_object, respond
from carts.coupons import OfferError, create_offer, fetch_offer, fetch_offers, fetch_recipients, stop_offer
from carts.tables import Campaign
from config.offers_file import OFFER_FIELDS, parse_offer_fields

routes = web.RouteTableDef()


def _offer_id(request: web.Request) -> int:
    text = request.match_info["offer_id"]
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        fail(web.HTTPNotFound, f"no offer {text}")
    return int(text)


@routes.get("/api/offers")
async def list_offers(request: web.Request) -> web.Response:
    key = request.query.get("campaign")
    async with request.app[SESSIONS]() as session:
        campaign_id = None
        if key is not None:
            campaign_id = (await session.execute(select(Campaign.id).where(Campaign.key == key))).scalar_one_or_none()
            if campaign_id is None:
                fail(web.HTTPNotFound, f"no campaign {key!r}")
        offers = await fetch_offers(session, campaign_id=campaign_id)
    return respond({"offers": [o.to_dict() for o in offers]})


@routes.post("/api/offers")
async def create_offer_route(request: web.Request) -> web.Response:
    body = await read_json_object(request, expected="the body must be a JSON object with campaign and the offer")
    unknown = sorted(set(body) - {"campaign", *OFFER_FIELDS})
    if unknown:
        fail(web.HTTPBadRequest, f"{unknown[0]}: unknown field (expected campaign, {', '.join(OFFER_FIELDS)})")
    key = body.get("campaign")
    if not isinstance(key, str) or not key:
        fail(web.HTTPBadRequest, "campaign is required: the key of the campaign the offer is on", field="campaign")
    now = utcnow()
    spec, errors = parse_offer_fields(body, None, now)
    if errors:
        field, message = next(iter(errors.items()))
        fail(web.HTTPBadRequest, f"{field}: {message}", field=field, errors=errors)
    assert spec is not None
    async with request.app[SESSIONS]() as session, session.begin():
        campaign = (await session.execute(select(Campaign).where(Campaign.key == key))).scalar_one_or_none()
        if campaign is None:
            fail(web.HTTPNotFound, f"no campaign {key!r}", field="campaign")
        try:
            offer = await create_offer(session, campaign, spec, now)
        except OfferError as exc:
            field, message = next(iter(exc.errors.items()))
            fail(web.HTTPConflict, f"{field}: {message}", field=field)
    return respond({"offer": offer.to_dict()}, status=201)


@routes.get("/api/offers/{offer_id}")
async def get_offer(request: web.Request) -> web.Response:
    offer_id = _offer_id(request)
    async with request.app[SESSIONS]() as session:
        offer = await fetch_offer(session, offer_id)
        if offer is None:
            fail(web.HTTPNotFound, f"no offer {offer_id}")
        recipients = await fetch_recipients(session, offer_id)
    return respond(
        {
            "offer": offer.to_dict(),
            "recipients": [
                {
                    "psid": r.psid,
                    "code": r.code,
                    "comment_id": r.comment_id,
                    "given_at": r.given_at.isoformat() if r.given_at else None,
                    "use": r.use,
                }
                for r in recipients
            ],
        }
    )


@routes.post("/api/offers/{offer_id}/stop")
async def stop_offer_route(request: web.Request) -> web.Response:
    offer_id = _offer_id(request)
    async with request.app[SESSIONS]() as session, session.begin():
        offer = await stop_offer(session, offer_id, utcnow())
    if offer is None:
        fail(web.HTTPNotFound, f"no offer {offer_id}")
    return respond({"offer": offer.to_dict()})
