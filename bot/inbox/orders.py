"""The inbox's orders: the list's filters and search, reading orders limited to the user's Pages, each
order's history, the pick list, and the exports (Excel and CSV).

Times people read are in the shop's time zone (`shop.timezone` of the shop file, kept on the shop row);
the date range of the filter is whole days in that zone.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import xlsxwriter
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox.core import spreadsheet_cell, spreadsheet_csv
from bot.replies.i18n import gettext
from bot.replies.statuses import order_status
from carts.core import variant_pairs
from carts.order_rules import OrderInfo, OrderLineInfo, OrderStatus
from carts.order_tables import Order, OrderEvent, OrderLine
from carts.payment_rules import PaymentKind
from carts.tables import Campaign, ShopInfo, StockClaim

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000  # a shop's season; a bigger export is the admin API's job
SEARCH_MAX = 100
STATUS_TITLES = {status.value: status.value.replace("_", " ") for status in OrderStatus}
# The payment methods a list can be filtered by, as the merchant reads them.
METHOD_TITLES = {
    PaymentKind.FPS.value: "FPS",
    PaymentKind.PAYME.value: "PayMe",
    PaymentKind.BANK_TRANSFER.value: "Bank transfer",
    PaymentKind.CASH_ON_PICKUP.value: "Cash on pickup",
    PaymentKind.STRIPE.value: "Card (Stripe)",
}


class FilterError(ValueError):
    """A filter the list cannot use: `field` is the filter's label and `msgid` why, both English msgids with
    `{name}` placeholders (`params`), put in the reader's words where they are shown; str() is the English."""

    def __init__(self, field: str, msgid: str, **params: Any) -> None:
        self.field, self.msgid, self.params = field, msgid, params
        super().__init__(f"{field}: {msgid.format(**params)}")

    def words(self, locale: str) -> str:
        return f"{gettext(locale, self.field)}: {gettext(locale, self.msgid, **self.params)}"


@dataclass(frozen=True, slots=True)
class OrderFilter:
    status: str = ""
    campaign: str = ""  # a campaign's key
    date_from: date | None = None  # whole days in the shop's time zone, both included
    date_to: date | None = None
    q: str = ""  # an order number, a name or a phone number
    psid: str = ""  # one shopper's orders (from the buyer panel)
    page: int = 1
    method: str = ""  # the payment method chosen at checkout (carts.payment_rules.PaymentKind)

    def query(self, **changes: Any) -> dict[str, str]:
        """The filter as the list's query string (for links to other pages, exports)."""
        values = {
            "status": self.status,
            "campaign": self.campaign,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "q": self.q,
            "psid": self.psid,
            "page": str(self.page) if self.page > 1 else "",
            "method": self.method,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v}


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FilterError(name, "enter a date like 2026-12-31") from None


def parse_order_filter(query: Mapping[str, str]) -> OrderFilter:
    """The list's filters from its query string; `FilterError` naming the first bad one."""
    status = query.get("status", "").strip()
    if status and status not in STATUS_TITLES:
        raise FilterError("Status", "choose one of the list's")
    page_text = query.get("page", "1").strip() or "1"
    if not (page_text.isascii() and page_text.isdigit() and len(page_text) <= 6) or int(page_text) < 1:
        raise FilterError("Page number", "a whole number from 1")
    q = query.get("q", "").strip()
    if len(q) > SEARCH_MAX:
        raise FilterError("Search", "at most {max} characters", max=SEARCH_MAX)
    method = query.get("method", "").strip()
    if method and method not in METHOD_TITLES:
        raise FilterError("Payment", "choose one of the list's")
    date_from, date_to = _day(query.get("from", "").strip(), "From"), _day(query.get("to", "").strip(), "To")
    if date_from and date_to and date_from > date_to:
        raise FilterError("From", "a day on or before the To day")
    return OrderFilter(
        status,
        query.get("campaign", "").strip()[:80],
        date_from,
        date_to,
        q,
        query.get("psid", "").strip()[:64],
        int(page_text),
        method,
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # checked when the shop file was loaded; tzdata may change
        return ZoneInfo("UTC")


async def fetch_shop_zone(session: AsyncSession) -> ZoneInfo:
    shop = await session.get(ShopInfo, 1)
    # In a thread: the first use of a zone reads its file from disk (ZoneInfo keeps it after).
    return await asyncio.to_thread(_zone, shop.timezone if shop is not None else "UTC")


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """`2026-12-03 14:05` in the shop's time zone; "" for none."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _conditions(pages: Collection[str], wanted: OrderFilter, zone: ZoneInfo, campaign_id: int | None) -> list[Any]:
    where: list[Any] = [Order.page_id.in_(list(pages))]  # type: ignore[attr-defined]
    if wanted.status:
        where.append(Order.status == wanted.status)
    if wanted.method:
        where.append(Order.payment_method == wanted.method)
    if wanted.psid:
        where.append(Order.psid == wanted.psid)
    if campaign_id is not None:
        sold = select(StockClaim.order_id).where(StockClaim.campaign_id == campaign_id)
        where.append(Order.id.in_(sold))  # type: ignore[union-attr]
    if wanted.date_from:
        where.append(Order.placed_at >= _day_start(wanted.date_from, zone))
    if wanted.date_to:
        where.append(Order.placed_at < _day_start(wanted.date_to + timedelta(days=1), zone))
    if wanted.q:
        text = wanted.q
        digits = "".join(c for c in text if c.isdigit())
        # Phones are kept as typed ("+852 9123-4567"): compare digits with the spaces and dashes taken out.
        phone = func.replace(func.replace(Order.phone, " ", ""), "-", "")
        found = [
            Order.number.contains(text.upper(), autoescape=True),  # type: ignore[union-attr]
            func.lower(Order.customer_name).contains(text.lower(), autoescape=True),
        ]
        if len(digits) >= 3:
            found.append(phone.contains(digits, autoescape=True))
        where.append(or_(*found))
    return where


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: list[OrderInfo]
    total: int
    page: int
    pages: int
    campaign_unknown: bool = False


async def _campaign_id(session: AsyncSession, pages: Collection[str], key: str) -> int | None:
    if not key:
        return None
    found = await session.execute(select(Campaign.id).where(Campaign.key == key, Campaign.page_id.in_(list(pages))))  # type: ignore[attr-defined]
    return found.scalar_one_or_none() or -1  # another Page's campaign, or none: no orders


async def fetch_order_page(
    session: AsyncSession, pages: Collection[str], wanted: OrderFilter, zone: ZoneInfo, size: int = PAGE_SIZE
) -> OrderPage:
    """One page of the orders the filter finds on the user's Pages, newest first."""
    campaign_id = await _campaign_id(session, pages, wanted.campaign)
    where = _conditions(pages, wanted, zone, campaign_id)
    total = (await session.execute(select(func.count()).select_from(Order).where(*where))).scalar_one()
    page_count = max(1, -(-total // size))
    page = min(wanted.page, page_count)
    rows = await session.execute(
        select(Order).where(*where).order_by(Order.id.desc()).limit(size).offset((page - 1) * size)  # type: ignore[union-attr]
    )
    return OrderPage(await _infos(session, list(rows.scalars())), total, page, page_count, campaign_id == -1)


async def fetch_filtered(
    session: AsyncSession, pages: Collection[str], wanted: OrderFilter, zone: ZoneInfo
) -> list[OrderInfo]:
    """Every order the filter finds (up to EXPORT_LIMIT), newest first: for exports and print-outs."""
    where = _conditions(pages, wanted, zone, await _campaign_id(session, pages, wanted.campaign))
    rows = await session.execute(select(Order).where(*where).order_by(Order.id.desc()).limit(EXPORT_LIMIT))  # type: ignore[union-attr]
    return await _infos(session, list(rows.scalars()))


async def fetch_numbered(session: AsyncSession, pages: Collection[str], numbers: Iterable[str]) -> list[OrderInfo]:
    """The orders of these numbers on the user's Pages (another Page's are left out), newest first."""
    wanted = sorted({n.strip().upper() for n in numbers if n.strip()})[:EXPORT_LIMIT]
    orders: list[Order] = []
    for start in range(0, len(wanted), 400):  # stay well under the database's bound-parameter limit
        rows = await session.execute(
            select(Order).where(Order.number.in_(wanted[start : start + 400]), Order.page_id.in_(list(pages)))  # type: ignore[union-attr, attr-defined]
        )
        orders += rows.scalars()
    orders.sort(key=lambda o: o.id or 0, reverse=True)
    return await _infos(session, orders)


async def _infos(session: AsyncSession, orders: Sequence[Order]) -> list[OrderInfo]:
    """Orders with their lines, in two statements however many (not one per order)."""
    lines: dict[int, list[OrderLine]] = {}
    ids = [o.id for o in orders if o.id is not None]
    for start in range(0, len(ids), 400):
        rows = await session.execute(
            select(OrderLine).where(OrderLine.order_id.in_(ids[start : start + 400])).order_by(OrderLine.id)  # type: ignore[attr-defined]
        )
        for line in rows.scalars():
            lines.setdefault(line.order_id, []).append(line)
    return [
        OrderInfo(
            o.id or 0,
            o.number or "",
            o.page_id,
            o.psid,
            o.status,
            o.currency,
            Decimal(o.subtotal),
            Decimal(o.total),
            o.customer_name,
            o.phone,
            o.delivery_method,
            o.address,
            o.payment_reference,
            o.placed_at,
            o.paid_at,
            o.cancelled_at,
            tuple(
                OrderLineInfo(
                    line.id or 0,
                    line.product_id,
                    line.code,
                    line.name,
                    variant_pairs(json.loads(line.variant) if line.variant else None),
                    line.qty,
                    Decimal(line.unit_price),
                    line.returned_qty,
                )
                for line in lines.get(o.id or 0, [])
            ),
            packed_at=o.packed_at,
            shipped_at=o.shipped_at,
            delivered_at=o.delivered_at,
            carrier=o.carrier,
            tracking_number=o.tracking_number,
            coupon_code=o.coupon_code,
            coupon_discount=Decimal(o.coupon_discount or 0),
        )
        for o in orders
    ]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    kind: str
    at: datetime
    amount: Decimal
    currency: str
    lines: list[dict[str, Any]] = field(default_factory=list)


async def fetch_history(session: AsyncSession, order_id: int) -> list[HistoryEntry]:
    rows = await session.execute(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
    return [
        HistoryEntry(e.kind, e.created_at, Decimal(e.amount), e.currency, json.loads(e.lines or "[]"))
        for e in rows.scalars()
    ]


# --- pick list and exports (pure) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PickLine:
    code: str
    name: str
    variant: str
    qty: int
    orders: int  # how many orders want it


def pick_list(orders: Iterable[OrderInfo]) -> list[PickLine]:
    """Products × quantities over the orders (units still to send: returned ones left out), by code."""
    totals: dict[tuple[str, str, str], list[int]] = {}
    for order in orders:
        for line in order.lines:
            qty = line.qty - line.returned_qty
            if qty <= 0:
                continue
            entry = totals.setdefault((line.code, line.variant_text, line.name), [0, 0])
            entry[0] += qty
            entry[1] += 1
    return [
        PickLine(code, name, variant, qty, count)
        for (code, variant, name), (qty, count) in sorted(totals.items(), key=lambda item: item[0])
    ]


# The exports' columns (msgids: the file is in the reader's language, as the page it came from).
EXPORT_COLUMNS = (
    "Order",
    "Status",
    "Placed",
    "Paid at",
    "Buyer",
    "Phone",
    "Delivery method",
    "Address",
    "Items",
    "Currency",
    "Subtotal",
    "Total",
    "Carrier",
    "Tracking number",
    "Shipped at",
)
_DELIVERY = {"pickup": "Pickup", "delivery": "Delivery"}


def export_header(locale: str) -> list[str]:
    return [gettext(locale, column) for column in EXPORT_COLUMNS]


def _items(order: OrderInfo) -> str:
    return "; ".join(
        f"{line.code} {line.name}" + (f" ({line.variant_text})" if line.variant_text else "") + f" ×{line.qty}"
        for line in order.lines
    )


def export_rows(orders: Iterable[OrderInfo], zone: ZoneInfo, locale: str = "en") -> list[list[Any]]:
    """The orders as rows of EXPORT_COLUMNS: statuses in words in `locale`, times in the shop's zone."""
    return [
        [
            o.number,
            order_status(locale, o.status),
            local_time(o.placed_at, zone),
            local_time(o.paid_at, zone),
            o.customer_name,
            o.phone,
            gettext(locale, _DELIVERY[o.delivery_method]) if o.delivery_method in _DELIVERY else o.delivery_method,
            o.address or "",
            _items(o),
            o.currency,
            o.subtotal,
            o.total,
            o.carrier or "",
            o.tracking_number or "",
            local_time(o.shipped_at, zone),
        ]
        for o in orders
    ]


def orders_csv(orders: Iterable[OrderInfo], zone: ZoneInfo, locale: str = "en") -> str:
    """CSV with a UTF-8 BOM, every cell neutralised against formulas (`spreadsheet_csv`)."""
    return spreadsheet_csv(export_header(locale), export_rows(orders, zone, locale))


def orders_xlsx(orders: Iterable[OrderInfo], zone: ZoneInfo, locale: str = "en") -> bytes:
    """An Excel workbook of the orders: text cells written as strings (never formulas), money as numbers.

    CPU work: call it in a thread.
    """
    out = io.BytesIO()
    # strings_to_formulas off: a name like "=HYPERLINK(...)" is text, never a formula; the `'` of
    # spreadsheet_cell guards the copy a merchant pastes elsewhere too.
    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )
    sheet = book.add_worksheet(gettext(locale, "Orders"))
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": "#,##0.00"})
    sheet.write_row(0, 0, export_header(locale), bold)
    sheet.freeze_panes(1, 0)
    for r, row in enumerate(export_rows(orders, zone, locale), start=1):
        for c, value in enumerate(row):
            if isinstance(value, Decimal):
                sheet.write_number(r, c, float(value), money)
            else:
                sheet.write_string(r, c, spreadsheet_cell(value))
    sheet.set_column(0, 0, 12)
    sheet.set_column(4, 8, 24)
    book.close()
    return out.getvalue()
