"""The console's shop settings (issue 19, owners): the shop's name, currency, time zone, default language
and how long an order waits for payment.

    GET  /inbox/settings     the form, with the shop's time now in its zone
    POST /inbox/settings     save: 303 back, or 400 with the problem beside the field and nothing changed

The form is read as the shop file's `shop:` and `orders:` sections (`config.console_forms`) and saved by
`bot.store.shop.apply_shop_settings`, which writes what `plusone load` and `PUT /api/shop` write, so the
three agree (and a later load sets them back to the file's). The currency is fixed once there are
orders: their amounts are in it.
"""

from __future__ import annotations

import asyncio
import json
import zoneinfo
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from bot.inbox.views.common import FORM, redirect, render, signed_in
from bot.inbox.views.faq import owner_only, problem_text, reader_locale
from bot.replies.i18n import LOCALE_NAMES, LOCALES, gettext
from bot.services import READ_SESSIONS, SESSIONS
from bot.store.shop import apply_shop_settings
from carts.order_rules import OrderRules
from carts.order_tables import Order
from carts.payments import fetch_shop_payments
from carts.tables import ShopInfo as ShopRow
from config.console_forms import SETTINGS_INPUTS, FormError, parse_settings_form

routes = web.RouteTableDef()
# The zones Hong Kong, Taiwan, Macau and Singapore shops pick first; every IANA name follows.
COMMON_ZONES = ("Asia/Hong_Kong", "Asia/Taipei", "Asia/Macau", "Asia/Singapore")
_zones: list[str] = []


async def _all_zones() -> list[str]:
    """Every IANA zone name the machine knows (read once, in a thread: it walks the zone files)."""
    if not _zones:
        names = await asyncio.to_thread(zoneinfo.available_timezones)
        _zones.extend(sorted(n for n in names if n not in COMMON_ZONES and "/" in n and not n.startswith("Etc/")))
    return _zones


@dataclass(frozen=True, slots=True)
class Current:
    values: dict[str, str]
    has_orders: bool
    updated_at: Any
    by_method: dict[str, str]  # the time to pay per payment method: the shop file sets it, the page shows it


async def _current(request: web.Request) -> tuple[Current, OrderRules]:
    async with request.app[READ_SESSIONS]() as session:
        row = await session.get(ShopRow, 1)
        language = (await fetch_shop_payments(session)).language
        orders = (await session.execute(select(func.count()).select_from(Order))).scalar_one()
    rules = OrderRules.from_dict(json.loads(row.order_rules)) if row and row.order_rules else OrderRules()
    as_dict = rules.to_dict()
    values = {
        "shop.name": row.name if row else "Shop",
        "shop.currency": row.currency if row else "HKD",
        "shop.timezone": row.timezone if row else "UTC",
        "shop.language": language,
        "orders.pay_within": as_dict["pay_within"],
        "orders.remind_before": as_dict["remind_before"] or "never",
    }
    return Current(values, orders > 0, row.updated_at if row else None, as_dict["pay_within_by_method"]), rules


async def _page(
    request: web.Request, current: Current, values: dict[str, str], error: FormError | None = None, status: int = 200
) -> web.Response:
    return await render(
        request,
        "settings.html",
        status,
        values=values,
        current=current,
        error=error,
        common_zones=COMMON_ZONES,
        zones=await _all_zones(),
        languages=[(code, LOCALE_NAMES[code]) for code in LOCALES],
        saved=request.query.get("saved") == "1",
    )


@routes.get("/inbox/settings")
@signed_in
async def settings_page(request: web.Request) -> web.Response:
    owner_only(request)
    current, _ = await _current(request)
    return await _page(request, current, current.values)


@routes.post("/inbox/settings")
@signed_in
async def save_settings(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    current, rules = await _current(request)
    form = request[FORM]
    typed = {name: str(form.get(name, "")) for name in SETTINGS_INPUTS}
    if current.has_orders:
        typed["shop.currency"] = typed["shop.currency"].strip() or current.values["shop.currency"]
    try:
        if current.has_orders and typed["shop.currency"] != current.values["shop.currency"]:
            locale = await reader_locale(request)
            fixed = gettext(locale, "cannot change once there are orders: their amounts are in it")
            raise FormError("shop.currency", fixed)
        # In a thread: checking a time zone reads its file from disk.
        info, orders = await asyncio.to_thread(parse_settings_form, typed, rules)
    except FormError as exc:
        problem = problem_text(await reader_locale(request), exc.problem)
        return await _page(request, current, typed, FormError(exc.field, problem), 400)
    async with request.app[SESSIONS]() as session, session.begin():
        await apply_shop_settings(session, info, orders)
    return redirect("/inbox/settings?saved=1")
