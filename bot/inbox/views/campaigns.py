"""The campaigns pages (owners): each sale's post or live video, times, limits, hold, products and their codes,
pinned text; open or close it now; post its pinned comment on the post or live video.

    GET  /inbox/campaigns                       the campaigns, times in the shop's zone
    GET  /inbox/campaigns/_new · POST            a new campaign (its first product; the rest on its page)
    GET  /inbox/campaigns/{key} · POST           one campaign's form
    POST /inbox/campaigns/{key}/open · /close    opens now (starts now) or closes now (ends now)
    POST /inbox/campaigns/{key}/pin              the pinned text as the Page's comment, once

Times are typed and shown in the shop's time zone (config.shop_file.parse_time, as the shop file reads
them), the post or live video by the file's rules (config.shop_file.parse_campaign_target), the products and
codes by the file's loader (bot.store.shop.replace_campaign_products); the other fields go through the admin
API's parsers (bot.web.shop_api) and carts.catalog, so the file, the API and this page agree. Edits take
effect on the next comment: the comment handlers read the campaign from SQL each time.

The pinned comment is `POST /{post-id}/comments` through the Graph adapter. Meta does not make that call
idempotent, so the campaign is claimed first (`pinned_comment_id` set to a marker by a conditional UPDATE,
committed), then posted, then the id stored: two clicks, or two owners, post it once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select, update

from bot.inbox.orders import fetch_shop_zone
from bot.inbox.views.catalog import locale_of, owner_only
from bot.inbox.views.common import FORM, USER, redirect, render, signed_in
from bot.outbound.graph import GraphError
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import GRAPH, READ_SESSIONS, SESSIONS
from bot.store.shop import replace_campaign_products
from bot.web.shop_api import CAMPAIGN_PARSERS
from carts.catalog import (
    CampaignInfo,
    apply_campaign_fields,
    fetch_campaign,
    fetch_campaigns,
    fetch_products,
    set_campaign_target,
)
from carts.tables import Campaign, CampaignProduct, Product
from config.shop_file import ShopFileError, check_campaign_key, parse_campaign_target, parse_time
from parsers.order_comment import check_code, code_key

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

TEXT_FIELDS = (
    "title",
    "starts_at",
    "ends_at",
    "per_shopper_limit",
    "hold_minutes",
    "pinned_text",
    "closed_reply",
    "target_kind",
    "target_id",
    "add_product",
    "add_code",
)
POSTING = "posting"  # pinned_comment_id while the Graph call runs: nobody else posts it meanwhile


@dataclass
class CampaignForm:
    values: dict[str, str]
    codes: dict[int, str]  # product id -> the code typed for it ("": take it out of the campaign)
    errors: dict[str, str] = field(default_factory=dict)


def _target_of(c: Campaign) -> tuple[str, str]:
    """The form's (kind, id) of what the campaign sells under. An Instagram media id is stored as the post id
    without a Page prefix (config.shop_file), so a post id without "_" is one."""
    if c.next_live and c.live_video_id is None:
        return "next_live", ""
    if c.live_video_id is not None:
        return "live_video_id", c.live_video_id
    if c.post_id is not None and "_" not in c.post_id:
        return "instagram_media_id", c.post_id
    return "post_id", c.post_id or ""


def local_input(moment: datetime, zone: ZoneInfo) -> str:
    """A `datetime-local` input's value in the shop's zone: 2026-12-20T19:00."""
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def status_of(campaign: Campaign, now: datetime) -> str:
    if now < campaign.starts_at:
        return "scheduled"
    return "open" if now < campaign.ends_at else "ended"


def _form_of(info: CampaignInfo, zone: ZoneInfo) -> CampaignForm:
    c = info.campaign
    return CampaignForm(
        {
            "title": c.title,
            "starts_at": local_input(c.starts_at, zone),
            "ends_at": local_input(c.ends_at, zone),
            "per_shopper_limit": "" if c.per_shopper_limit is None else str(c.per_shopper_limit),
            "hold_minutes": str(c.hold_minutes),
            "pinned_text": c.pinned_text or "",
            "closed_reply": c.closed_reply or "",
            "target_kind": _target_of(c)[0],
            "target_id": _target_of(c)[1],
            "add_product": "",
            "add_code": "",
        },
        {p.product_id: p.code for p in info.products},
    )


def _whole_or(text: str, empty: Any) -> Any:
    text = text.strip()
    if not text:
        return empty
    return int(text) if text.isascii() and text.isdigit() else -1  # -1: the parser's refusal names the field


FIELD_ERRORS = {
    "title": "Enter a title, at most 200 characters.",
    "per_shopper_limit": "Enter a whole number of 1 or more, or leave it empty for no limit.",
    "hold_minutes": "Enter the minutes a cart holds stock, from 1 to 10080 (a week).",
    "pinned_text": "The pinned text is at most 8000 characters.",
    "closed_reply": "The reply after closing is at most 1999 characters.",
}
TARGET_ERRORS = {
    "post_id": "Enter the post's id: the digits after /posts/ in its address, or PAGEID_POSTID.",
    "instagram_media_id": "Enter the Instagram media's id: its digits.",
    "live_video_id": "Enter the live video's id: its digits, from the video's address.",
    "target": "Choose what the campaign sells under.",
}


def _checked(
    locale: str, form: CampaignForm, info: CampaignInfo, zone: ZoneInfo, catalog: dict[int, Product]
) -> dict[str, Any]:
    typed = form.values
    values: dict[str, Any] = {}
    for name in ("starts_at", "ends_at"):
        try:
            values[name] = parse_time(typed[name].replace("T", " "), zone)
        except ValueError:
            form.errors[name] = gettext(locale, "Enter a date and a time, like 2026-12-20 19:00.")
    if "starts_at" in values and "ends_at" in values and values["ends_at"] <= values["starts_at"]:
        form.errors["ends_at"] = gettext(locale, "The closing time must be after the opening time.")
    raw: dict[str, Any] = {
        "title": typed["title"],
        "per_shopper_limit": _whole_or(typed["per_shopper_limit"], None),
        "hold_minutes": _whole_or(typed["hold_minutes"], -1),
        "pinned_text": typed["pinned_text"].strip() or None,
        "closed_reply": typed["closed_reply"].strip() or None,
    }
    for name, value in raw.items():
        try:
            values[name] = CAMPAIGN_PARSERS[name](value)
        except ValueError:
            form.errors[name] = gettext(locale, FIELD_ERRORS[name])
    try:
        values["target"] = parse_campaign_target(typed["target_kind"], typed["target_id"], info.campaign.page_id)
    except ShopFileError as exc:
        form.errors["target_id"] = gettext(locale, TARGET_ERRORS.get(exc.where or "", TARGET_ERRORS["post_id"]))
    wanted: dict[int, str] = {}
    seen: set[str] = set()
    fields = [(f"code-{p.product_id}", p.product_id, form.codes.get(p.product_id, "")) for p in info.products]
    if typed["add_product"]:
        added = int(typed["add_product"]) if typed["add_product"].isdigit() else -1
        fields.append(("add_code", added, typed["add_code"]))
        if added not in catalog or added in form.codes:
            form.errors["add_product"] = gettext(locale, "Choose a product of the catalog that is not in it yet.")
    for name, product_id, code in fields:
        code = code.strip()
        if not code and name != "add_code":
            continue  # an emptied code takes the product out of the campaign
        if check_code(code):
            form.errors[name] = gettext(
                locale, "A code is one word of letters and digits that starts with a letter, like A1 (at most 32)."
            )
        elif code_key(code) in seen:
            form.errors[name] = gettext(locale, "Two products of this campaign cannot have the same code.")
        seen.add(code_key(code))
        wanted[product_id] = code
    code_errors = [name for name in form.errors if name.startswith("code-") or name in ("add_code", "add_product")]
    if not wanted and not code_errors:
        form.errors["add_code"] = gettext(locale, "Keep at least one product in the campaign.")
    values["products"] = wanted
    return values


async def _load(request: web.Request) -> tuple[CampaignInfo, ZoneInfo]:
    async with request.app[READ_SESSIONS]() as session:
        info = await fetch_campaign(session, request.match_info["key"])
        zone = await fetch_shop_zone(session)
    # Another Page's campaign is "not found" too.
    if info is None or info.campaign.page_id not in request[USER].pages:
        raise web.HTTPNotFound(text="no such campaign\n")
    return info, zone


async def _page(
    request: web.Request, info: CampaignInfo, zone: ZoneInfo, form: CampaignForm | None = None, **extra: Any
) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        catalog = {p.id: p for p in await fetch_products(session)}
    form = form or _form_of(info, zone)
    linked = {p.product_id for p in info.products}
    return await render(
        request,
        "campaign.html",
        400 if form.errors or extra.get("error") else 200,
        c=info.campaign,
        products=[(p, catalog.get(p.product_id)) for p in info.products],
        addable=[p for p in catalog.values() if p.id not in linked and p.active],
        form=form,
        state=status_of(info.campaign, utcnow()),
        posting=POSTING,
        notice=request.query.get("done"),
        **extra,
    )


@routes.get("/inbox/campaigns")
@signed_in
async def campaigns(request: web.Request) -> web.Response:
    owner_only(request)
    async with request.app[READ_SESSIONS]() as session:
        found = [i for i in await fetch_campaigns(session) if i.campaign.page_id in request[USER].pages]
    now = utcnow()
    rows = [(i, status_of(i.campaign, now)) for i in reversed(found)]  # the newest first
    return await render(request, "campaigns.html", campaigns=rows)


# "_new": never a campaign's key (lower-case letters, digits and hyphens), so no campaign's page is hidden.
NEW = "/inbox/campaigns/_new"


def _blank(page_id: str) -> CampaignInfo:
    now = utcnow()
    return CampaignInfo(Campaign(key="", title="", page_id=page_id, starts_at=now, ends_at=now), ())


async def _new_page(request: web.Request, form: CampaignForm, status: int = 200) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        products = [p for p in await fetch_products(session) if p.active]
    pages = sorted(request[USER].pages)
    return await render(request, "campaign_new.html", status, form=form, products=products, pages=pages)


@routes.get(NEW)
@signed_in
async def new_campaign_page(request: web.Request) -> web.Response:
    owner_only(request)
    async with request.app[READ_SESSIONS]() as session:
        zone = await fetch_shop_zone(session)
    now = utcnow()
    start = now.replace(second=0, microsecond=0)
    values = {name: "" for name in TEXT_FIELDS} | {
        "key": "",
        "page_id": "",
        "target_kind": "post_id",
        "hold_minutes": "30",
        "starts_at": local_input(start, zone),
        "ends_at": local_input(start + timedelta(days=1), zone),
    }
    return await _new_page(request, CampaignForm(values, {}))


@routes.post(NEW)
@signed_in
async def new_campaign_post(request: web.Request) -> web.Response:
    owner_only(request)
    locale = await locale_of(request)
    posted = request[FORM]
    form = CampaignForm({name: str(posted.get(name, "")) for name in (*TEXT_FIELDS, "key", "page_id")}, {})
    pages = sorted(request[USER].pages)
    page_id = form.values["page_id"] or (pages[0] if len(pages) == 1 else "")
    key = form.values["key"].strip()
    async with request.app[READ_SESSIONS]() as session:
        zone = await fetch_shop_zone(session)
        catalog = {p.id: p for p in await fetch_products(session) if p.id is not None}
        taken = await fetch_campaign(session, key) is not None
    if check_campaign_key(key):
        form.errors["key"] = gettext(locale, "A key is lower-case letters, digits and hyphens, like xmas-live.")
    elif taken:
        form.errors["key"] = gettext(locale, "Another campaign already has this key.")
    if page_id not in request[USER].pages:
        form.errors["page_id"] = gettext(locale, "Choose one of your Pages.")
    values = _checked(locale, form, _blank(page_id), zone, catalog)
    if form.errors:
        return await _new_page(request, form, 400)
    target, products = values.pop("target"), values.pop("products")
    post_id, live_video_id, next_live = target
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        campaign = Campaign(
            key=key,
            page_id=page_id,
            post_id=post_id,
            live_video_id=live_video_id,
            next_live=next_live,
            **values,
            created_at=now,
            updated_at=now,
        )
        session.add(campaign)
        await session.flush()
        assert campaign.id is not None
        await replace_campaign_products(session, campaign.id, [], products)
    log.info("inbox: %s created campaign %s", request[USER].name, key)
    return _back(key, "saved")


@routes.get("/inbox/campaigns/{key}")
@signed_in
async def campaign_page(request: web.Request) -> web.Response:
    owner_only(request)
    info, zone = await _load(request)
    return await _page(request, info, zone)


def _back(key: str, done: str) -> web.Response:
    return redirect(f"/inbox/campaigns/{quote(key, safe='')}?done={done}")


@routes.post("/inbox/campaigns/{key}")
@signed_in
async def campaign_post(request: web.Request) -> web.Response:
    owner_only(request)
    locale = await locale_of(request)
    info, zone = await _load(request)
    posted = request[FORM]
    form = CampaignForm(
        {name: str(posted.get(name, "")) for name in TEXT_FIELDS},
        {p.product_id: str(posted.get(f"code-{p.product_id}", "")) for p in info.products},
    )
    async with request.app[READ_SESSIONS]() as session:
        catalog = {p.id: p for p in await fetch_products(session) if p.id is not None}
    values = _checked(locale, form, info, zone, catalog)
    if form.errors:
        return await _page(request, info, zone, form)
    target, products = values.pop("target"), values.pop("products")
    async with request.app[SESSIONS]() as session, session.begin():
        locked = await fetch_campaign(session, info.campaign.key, lock=True)
        assert locked is not None and locked.campaign.id is not None
        now = utcnow()
        await apply_campaign_fields(session, locked.campaign, values, now)
        await set_campaign_target(session, locked.campaign, target, now)
        # The shop file's own code for a campaign's products (swaps of two codes included).
        links = (
            await session.execute(select(CampaignProduct).where(CampaignProduct.campaign_id == locked.campaign.id))
        ).scalars()
        await replace_campaign_products(session, locked.campaign.id, list(links), products)
    return _back(info.campaign.key, "saved")


@routes.post("/inbox/campaigns/{key}/open")
@signed_in
async def open_now(request: web.Request) -> web.Response:
    owner_only(request)
    info, zone = await _load(request)
    now = utcnow()
    if info.campaign.ends_at <= now:
        locale = await locale_of(request)
        error = gettext(locale, "It closed already: set a closing time after now first, then open it.")
        return await _page(request, info, zone, error=error)
    async with request.app[SESSIONS]() as session, session.begin():
        locked = await fetch_campaign(session, info.campaign.key, lock=True)
        assert locked is not None
        await apply_campaign_fields(session, locked.campaign, {"starts_at": min(now, locked.campaign.starts_at)}, now)
    return _back(info.campaign.key, "opened")


@routes.post("/inbox/campaigns/{key}/close")
@signed_in
async def close_now(request: web.Request) -> web.Response:
    owner_only(request)
    info, _zone = await _load(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        locked = await fetch_campaign(session, info.campaign.key, lock=True)
        assert locked is not None
        values: dict[str, Any] = {"ends_at": min(now, locked.campaign.ends_at)}
        if locked.campaign.starts_at >= values["ends_at"]:  # a campaign that never opened: it ends as it starts
            values["starts_at"] = values["ends_at"] - timedelta(seconds=1)
        await apply_campaign_fields(session, locked.campaign, values, now)
    return _back(info.campaign.key, "closed")


@routes.post("/inbox/campaigns/{key}/pin")
@signed_in
async def post_pinned(request: web.Request) -> web.Response:
    owner_only(request)
    locale = await locale_of(request)
    info, zone = await _load(request)
    c = info.campaign
    target = c.post_id or c.live_video_id
    if not c.pinned_text:
        return await _page(request, info, zone, error=gettext(locale, "Write the pinned text first, and save it."))
    if target is None:
        return await _page(
            request, info, zone, error=gettext(locale, "This campaign has no post or live video to comment on yet.")
        )
    async with request.app[SESSIONS]() as session, session.begin():
        claimed = await session.execute(
            update(Campaign)
            .where(Campaign.id == c.id, Campaign.pinned_comment_id.is_(None))  # type: ignore[union-attr]
            .values(pinned_comment_id=POSTING)
            .execution_options(synchronize_session=False)
        )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return await _page(request, info, zone, error=gettext(locale, "The pinned comment is posted already."))
    comment_id: str | None = None
    error = gettext(locale, "Meta did not say which comment it made: check the post, then try again.")
    try:
        comment_id = await request.app[GRAPH].post_comment(c.page_id, target, c.pinned_text) or None
    except GraphError as exc:
        log.warning("inbox: pinned comment of %s refused by Meta: %s", c.key, exc)
        error = gettext(locale, "Meta did not take the comment: {reason}", reason=str(exc))
    finally:
        # Stored, or released for another try: the marker never stays behind a failed call.
        async with request.app[SESSIONS]() as session, session.begin():
            await session.execute(
                update(Campaign)
                .where(Campaign.id == c.id)
                .values(pinned_comment_id=comment_id)
                .execution_options(synchronize_session=False)
            )
    if comment_id is None:
        info, zone = await _load(request)
        return await _page(request, info, zone, error=error)
    log.info("inbox: %s posted the pinned comment %s of %s", request[USER].name, comment_id, c.key)
    return _back(c.key, "pinned")
