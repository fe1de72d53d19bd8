"""What sold (owners): each campaign's report (the funnel, per product, comments and orders per minute as an
SVG chart), its Excel export, and the funnel's section of the live board, refreshed while the live runs.

    GET  /inbox/reports                 the campaigns, each with its report
    GET  /inbox/reports/{key}           a campaign's report (?part=board: the board's live section alone)
    GET  /inbox/reports/{key}.xlsx      the report as an Excel workbook

The figures come from `bot.inbox.funnel` through the app's `FunnelCache`, so a board refreshed on every
burst of comments by every open browser costs the database one computation per campaign every few seconds.
"""

from __future__ import annotations

import asyncio
from datetime import tzinfo
from decimal import Decimal

from aiohttp import web
from babel.numbers import format_percent
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy import select

from bot.inbox import board as board_module
from bot.inbox.funnel import FunnelCache, fetch_funnel
from bot.inbox.funnel_xlsx import funnel_xlsx
from bot.inbox.orders import fetch_shop_zone
from bot.inbox.views.catalog import owner_only
from bot.inbox.views.common import HEADERS, USER, reader_locale, render, signed_in
from bot.replies.i18n import pick_locale
from bot.runtime.clock import utcnow
from bot.services import FUNNEL_CACHE, READ_SESSIONS
from carts.funnel_rules import Funnel, chart_layout
from carts.tables import Campaign

routes = web.RouteTableDef()


@pass_context
def percent(context: Context, value: Decimal | None) -> str:
    """A share (0.4) as the reader writes it ("40%"); "–" when there is nothing to divide by."""
    if value is None:
        return "–"
    return format_percent(value, "#,##0.#%", locale=pick_locale(context.get("locale")))


async def campaign_funnel(request: web.Request, campaign: Campaign) -> tuple[Funnel, tzinfo]:
    """The campaign's figures now, from the cache (computed at most once per campaign per few seconds)."""
    now = utcnow()
    async with request.app[READ_SESSIONS]() as session:
        zone = await fetch_shop_zone(session)

    async def compute() -> Funnel:
        async with request.app[READ_SESSIONS]() as session:
            return await fetch_funnel(session, campaign, zone, now)

    return await request.app[FUNNEL_CACHE].get(campaign.id or 0, now, compute), zone


async def board_funnel(request: web.Request, campaign: Campaign) -> dict[str, object]:
    """What the live board's funnel section needs, for owners (an agent's board has no money figures)."""
    if not request[USER].is_owner:
        return {}
    funnel, _zone = await campaign_funnel(request, campaign)
    return {"f": funnel, "pct": percent}


async def _campaign(request: web.Request) -> Campaign:
    owner_only(request)
    async with request.app[READ_SESSIONS]() as session:
        found = (
            await session.execute(select(Campaign).where(Campaign.key == request.match_info["key"]))
        ).scalar_one_or_none()
    if found is None or found.page_id not in request[USER].pages:  # another Page's campaign is not found either
        raise web.HTTPNotFound(text="no such campaign\n")
    return found


@routes.get("/inbox/reports")
@signed_in
async def reports(request: web.Request) -> web.Response:
    owner_only(request)
    async with request.app[READ_SESSIONS]() as session:
        campaigns = await board_module.list_campaigns(session, request[USER].pages)
    return await render(request, "reports.html", campaigns=campaigns)


@routes.get("/inbox/reports/{key}.xlsx")
@signed_in
async def report_xlsx(request: web.Request) -> web.Response:
    campaign = await _campaign(request)
    funnel, zone = await campaign_funnel(request, campaign)
    locale = await reader_locale(request)
    body = await asyncio.to_thread(funnel_xlsx, funnel, zone, locale)  # CPU work, off the loop
    filename = f"report-{campaign.key}.xlsx".replace('"', "")
    return web.Response(
        body=body,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )


@routes.get("/inbox/reports/{key}")
@signed_in
async def report(request: web.Request) -> web.Response:
    campaign = await _campaign(request)
    funnel, zone = await campaign_funnel(request, campaign)
    template = "_board_funnel_part.html" if request.query.get("part") == "board" else "report.html"
    return await render(
        request,
        template,
        c=campaign,
        f=funnel,
        charts=[("wide", chart_layout(funnel.series)), ("narrow", chart_layout(funnel.series, 360, 250, labels=4))],
        zone_name=str(zone),
        pct=percent,
    )


def setup(app: web.Application) -> None:
    app[FUNNEL_CACHE] = FunnelCache()
    app.add_routes(routes)
