"""The CRM dashboard as an Excel workbook (XlsxWriter, as the funnel report's export): the figures, the series
bucket by bucket, and the splits by segment and by tier; headers in the reader's language, days in the shop's
zone, money as numbers in the shop's currency (named in the header). CPU work: call it in a thread.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import xlsxwriter

from bot.inbox.core import spreadsheet_cell
from bot.inbox.funnel_xlsx import _sheet_name
from bot.replies.i18n import gettext
from crm_bridge.dashboard_rules import Dashboard, Split

STATE_WORDS = {
    "new": "New customer",
    "active": "Active customer",
    "passive": "Passive customer",
    "lapsed": "Lapsed customer",
}


def figure_rows(d: Dashboard, locale: str) -> list[tuple[str, Any, str]]:
    """(label, value, format) of each headline figure, in the page's order."""
    t = lambda msgid, **p: gettext(locale, msgid, **p)  # noqa: E731
    cur = d.currency
    j = d.journeys
    return [
        (t("Members"), d.members, "int"),
        (t("New members"), d.new_members, "int"),
        (t("Customers"), d.customers, "int"),
        *((t("{state} now", state=t(STATE_WORDS[s])), n, "int") for s, n in d.states_now.items()),
        (t("Paid orders"), d.orders, "int"),
        (t("GMV ({currency})", currency=cur), d.gmv, "money"),
        (t("Average order value ({currency})", currency=cur), d.aov, "money"),
        (t("Buyers"), d.buyers, "int"),
        (t("Repeat buyers"), d.repeat_buyers, "int"),
        (t("Repurchase rate"), d.repurchase_rate, "pct"),
        (t("Average days between orders"), d.mean_gap_days, "rate"),
        (t("Points issued"), d.points.issued, "int"),
        (t("Points redeemed"), d.points.redeemed, "int"),
        (t("Points expired"), d.points.expired, "int"),
        (t("Points outstanding (liability)"), d.points.liability, "int"),
        (t("Referral joins"), d.referrals.joins, "int"),
        (t("Referred buyers"), d.referrals.buyers, "int"),
        (t("Referred members' orders"), d.referrals.orders, "int"),
        (t("Referred members' sales ({currency})", currency=cur), d.referrals.sales, "money"),
        (t("Orders with a coupon"), d.coupons.orders, "int"),
        (t("Coupon cost: discounts given ({currency})", currency=cur), d.coupons.cost, "money"),
        (t("Coupon return: sales of those orders ({currency})", currency=cur), d.coupons.sales, "money"),
        (t("Journey messages sent"), j.sends, "int"),
        (t("Of them by e-mail"), j.email_sends, "int"),
        (t("E-mails opened"), j.opens, "int"),
        (t("Open rate"), j.open_rate, "pct"),
        (t("Orders credited to journeys"), j.attributed_orders, "int"),
        (t("Sales credited to journeys ({currency})", currency=cur), j.attributed_sales, "money"),
    ]


def dashboard_xlsx(d: Dashboard, tier_names: dict[str, str], locale: str = "en") -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )
    head = book.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "top"})
    formats = {
        "int": book.add_format({"num_format": "#,##0"}),
        "money": book.add_format({"num_format": "#,##0.00"}),
        "pct": book.add_format({"num_format": "0.0%"}),
        "rate": book.add_format({"num_format": "#,##0.0"}),
        "day": book.add_format({"num_format": "yyyy-mm-dd"}),
    }
    t = lambda msgid, **p: gettext(locale, msgid, **p)  # noqa: E731
    taken: set[str] = set()

    def write(sheet: Any, row: int, col: int, value: Any, kind: str) -> None:
        if value is None:
            sheet.write_blank(row, col, None)
        elif isinstance(value, str):
            sheet.write_string(row, col, spreadsheet_cell(value))
        else:
            sheet.write_number(row, col, float(value) if isinstance(value, Decimal) else value, formats[kind])

    sheet = book.add_worksheet(_sheet_name(t("Figures"), taken))
    sheet.write_row(0, 0, [t("Figure"), t("Value")], head)
    sheet.freeze_panes(1, 0)
    sheet.write_string(1, 0, t("From"))
    sheet.write_datetime(1, 1, d.period.first, formats["day"])
    sheet.write_string(2, 0, t("To"))
    sheet.write_datetime(2, 1, d.period.last, formats["day"])
    for r, (label, value, kind) in enumerate(figure_rows(d, locale), start=3):
        sheet.write_string(r, 0, label)
        write(sheet, r, 1, value, kind)
    sheet.set_column(0, 0, 44)
    sheet.set_column(1, 1, 16)

    sheet = book.add_worksheet(_sheet_name(t("Over time"), taken))
    headers = [
        t("From"),
        t("New members"),
        t("Members"),
        *(t(STATE_WORDS[s]) for s in ("new", "active", "passive", "lapsed")),
    ]
    headers += [t("Paid orders"), t("GMV ({currency})", currency=d.currency)]
    sheet.write_row(0, 0, headers, head)
    sheet.freeze_panes(1, 1)
    for r, p in enumerate(d.series, start=1):
        sheet.write_datetime(r, 0, p.start.date(), formats["day"])
        values = [p.new_members, p.members, *(p.states[s] for s in ("new", "active", "passive", "lapsed")), p.orders]
        for c, value in enumerate(values, start=1):
            write(sheet, r, c, value, "int")
        write(sheet, r, len(values) + 1, p.gmv, "money")
    sheet.set_column(0, 0, 12)
    sheet.set_column(1, len(headers) - 1, 14)

    def splits(title: str, rows: tuple[Split, ...], name_of: Any) -> None:
        sheet = book.add_worksheet(_sheet_name(title, taken))
        sheet.write_row(
            0,
            0,
            [
                title,
                t("Buyers"),
                t("Paid orders"),
                t("GMV ({currency})", currency=d.currency),
                t("Average order value ({currency})", currency=d.currency),
            ],
            head,
        )
        sheet.freeze_panes(1, 1)
        for r, s in enumerate(rows, start=1):
            sheet.write_string(r, 0, spreadsheet_cell(name_of(s.key)))
            write(sheet, r, 1, s.buyers, "int")
            write(sheet, r, 2, s.orders, "int")
            write(sheet, r, 3, s.gmv, "money")
            write(sheet, r, 4, s.aov, "money")
        sheet.set_column(0, 0, 22)
        sheet.set_column(1, 4, 16)

    splits(t("By segment"), d.by_segment, lambda key: t(STATE_WORDS[key]) if key in STATE_WORDS else t("No state yet"))
    splits(t("By tier"), d.by_tier, lambda key: tier_names.get(key, key or ""))
    book.close()
    return out.getvalue()
