"""The CRM dashboard (issue 21, owners): what keeps customers, over a period the owner picks.

    GET /inbox/dashboard             ?days=30|90|365 or ?from=YYYY-MM-DD&to=YYYY-MM-DD (days in the shop's
                                     zone; the last 30 days by default); a bad period: 400, the form as typed
                                     with the problem beside its field, no figures
    GET /inbox/dashboard.xlsx        the same period's tables as an Excel workbook

Figures are defined in `crm_bridge.dashboard_rules` and measured by `crm_bridge.dashboard`; the period is read
by `bot.web.dashboard_api.read_period`, as `GET /api/dashboard` reads it. Charts are SVG drawn here with the
funnel report's geometry (`carts.funnel_rules.chart_layout`), a wide and a narrow one (CSS shows one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.inbox.dashboard_xlsx import STATE_WORDS, dashboard_xlsx
from bot.inbox.views.catalog import owner_only
from bot.inbox.views.common import HEADERS, reader_locale, render, signed_in
from bot.inbox.views.report import percent
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS
from bot.web.dashboard_api import PERIOD_KEYS, dashboard_for
from carts.funnel_rules import ChartLayout, chart_layout
from crm_bridge.dashboard_rules import PRESETS, Dashboard, DashboardError, chart_series
from crm_bridge.program import fetch_program
from crm_bridge.segments import fetch_zone

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    over: str  # the figure of the tall bar (a SeriesPoint field or NAPL state)
    under: str | None  # the figure drawn over it
    wide: ChartLayout
    narrow: ChartLayout


def charts(d: Dashboard) -> list[Chart]:
    """Members (customers over them), each state, and paid orders, per bucket."""
    out = []
    for key, over, under in (
        ("members", "members", "customers"),
        *((state, state, None) for state in ("active", "passive", "lapsed", "new")),
        ("orders", "orders", None),
    ):
        series = chart_series(d.series, over, under)
        out.append(Chart(key, over, under, chart_layout(series, 720, 240), chart_layout(series, 360, 240, labels=4)))
    return out


async def _tier_names(request: web.Request) -> dict[str, str]:
    async with request.app[READ_SESSIONS]() as session:
        program = await fetch_program(session)
    return {tier.key: tier.name for tier in program.tiers}


@routes.get("/inbox/dashboard")
@signed_in
async def dashboard(request: web.Request) -> web.Response:
    owner_only(request)
    now = utcnow()
    typed = {key: request.query.get(key, "") for key in PERIOD_KEYS}
    async with request.app[READ_SESSIONS]() as session:
        zone = await fetch_zone(session)
        try:
            d = await dashboard_for(session, request.query, now)
        except DashboardError as exc:
            locale = await reader_locale(request)
            problem = {"field": exc.field, "text": gettext(locale, exc.problem)}
            return await render(
                request,
                "dashboard.html",
                status=400,
                d=None,
                typed=typed,
                problem=problem,
                presets=PRESETS,
                zone_name=str(zone),
            )
    return await render(
        request,
        "dashboard.html",
        d=d,
        typed=typed,
        problem=None,
        presets=PRESETS,
        charts=charts(d),
        tier_names=await _tier_names(request),
        state_words=STATE_WORDS,
        zone_name=str(zone),
        pct=percent,
        query=request.query_string,
    )


@routes.get("/inbox/dashboard.xlsx")
@signed_in
async def dashboard_export(request: web.Request) -> web.Response:
    owner_only(request)
    locale = await reader_locale(request)
    async with request.app[READ_SESSIONS]() as session:
        try:
            d = await dashboard_for(session, request.query, utcnow())
        except DashboardError as exc:
            raise web.HTTPBadRequest(text=f"{exc.field}: {gettext(locale, exc.problem)}\n") from None
    body: Any = await asyncio.to_thread(dashboard_xlsx, d, await _tier_names(request), locale)  # CPU work, off the loop
    filename = f"dashboard-{d.period.first.isoformat()}-{d.period.last.isoformat()}.xlsx"
    return web.Response(
        body=body,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'},
    )
