"""The CRM dashboard's admin API twin (issue 21): the figures of the console's Dashboard page as JSON.

    GET /api/dashboard?days=30|90|365            the last 30, 90 or 365 days (today included; 30 by default)
    GET /api/dashboard?from=YYYY-MM-DD&to=YYYY-MM-DD   from one day to another, days in the shop's time zone

Needs `Authorization: Bearer <admin token>`. A bad period is a 400 `{"error": "<field>: <why>", "field"}`.
Each figure is defined in `crm_bridge.dashboard_rules`; money is a string with two decimals in the shop's
currency, shares are fractions (0.25), times ISO 8601 in UTC. The page (`bot.inbox.views.dashboard`) reads the
period with `read_period` here, so both refuse the same things.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS
from bot.web.json_api import fail, respond
from crm_bridge.dashboard import fetch_dashboard
from crm_bridge.dashboard_rules import Dashboard, DashboardError, Period, Split, parse_period
from crm_bridge.segments import fetch_zone

routes = web.RouteTableDef()
PERIOD_KEYS = ("days", "from", "to")


def read_period(query: Mapping[str, str], today: date) -> Period:
    """The period a query string asks for; DashboardError naming the field."""
    unknown = sorted(set(query) - {*PERIOD_KEYS, "lang"})
    if unknown:
        raise DashboardError(unknown[0], "unknown parameter (days, or from and to)")
    return parse_period(query.get("days"), query.get("from"), query.get("to"), today)


async def dashboard_for(session: AsyncSession, query: Mapping[str, str], now: datetime) -> Dashboard:
    """The dashboard of the period the query asks for, its days in the shop's zone; DashboardError."""
    zone = await fetch_zone(session)
    period = read_period(query, now.astimezone(zone).date())
    return await fetch_dashboard(session, period, now, zone)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _share(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _split(s: Split) -> dict[str, Any]:
    return {"key": s.key, "buyers": s.buyers, "orders": s.orders, "gmv": _money(s.gmv), "aov": _money(s.aov)}


def dashboard_dict(d: Dashboard) -> dict[str, Any]:
    j = d.journeys
    return {
        "period": {
            "from": d.period.first.isoformat(),
            "to": d.period.last.isoformat(),
            "days": d.period.days,
            "preset": d.period.preset,
            "grain": d.grain.value,
            "start": d.start.isoformat(),
            "end": d.end.isoformat(),
        },
        "as_of": d.as_of.isoformat(),
        "currency": d.currency,
        "lapse_days": d.lapse_days,
        "members": d.members,
        "new_members": d.new_members,
        "customers": d.customers,
        "segments_now": d.states_now,
        "orders": d.orders,
        "gmv": _money(d.gmv),
        "aov": _money(d.aov),
        "buyers": d.buyers,
        "repeat_buyers": d.repeat_buyers,
        "repurchase_rate": _share(d.repurchase_rate),
        "mean_days_between_orders": None if d.mean_gap_days is None else float(d.mean_gap_days),
        "by_segment": [_split(s) for s in d.by_segment],
        "by_tier": [_split(s) for s in d.by_tier],
        "points": {
            "issued": d.points.issued,
            "redeemed": d.points.redeemed,
            "expired": d.points.expired,
            "liability": d.points.liability,
        },
        "referrals": {
            "joins": d.referrals.joins,
            "buyers": d.referrals.buyers,
            "orders": d.referrals.orders,
            "sales": _money(d.referrals.sales),
        },
        "coupons": {
            "orders": d.coupons.orders,
            "cost": _money(d.coupons.cost),
            "sales": _money(d.coupons.sales),
            "sales_per_cost": None if d.coupons.return_per_cost is None else float(d.coupons.return_per_cost),
        },
        "journeys": {
            "sends": j.sends,
            "email_sends": j.email_sends,
            "emails_sent": j.emails_sent,
            "email_opens": j.opens,
            "open_rate": _share(j.open_rate),
            "attributed_orders": j.attributed_orders,
            "attributed_sales": _money(j.attributed_sales),
        },
        "series": [
            {
                "from": p.start.date().isoformat(),
                "end": p.end.isoformat(),
                "new_members": p.new_members,
                "members": p.members,
                **p.states,
                "orders": p.orders,
                "gmv": _money(p.gmv),
            }
            for p in d.series
        ],
    }


@routes.get("/api/dashboard")
async def get_dashboard(request: web.Request) -> web.Response:
    now = utcnow()
    async with request.app[READ_SESSIONS]() as session:
        try:
            dash = await dashboard_for(session, request.query, now)
        except DashboardError as exc:
            fail(web.HTTPBadRequest, str(exc), field=exc.field)
    return respond(dashboard_dict(dash))
