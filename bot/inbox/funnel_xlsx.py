"""A campaign's report as an Excel workbook (XlsxWriter): the funnel, the products (a table, then a sheet per
product), and the per-minute series; headers in the reader's language, times in the shop's zone, numbers
as numbers with their formats, frozen headers and set widths. A campaign with no comments is a valid
workbook of zeros. CPU work: call it in a thread.
"""

from __future__ import annotations

import io
import re
from datetime import tzinfo
from decimal import Decimal
from typing import Any

import xlsxwriter

from bot.inbox.core import spreadsheet_cell
from bot.replies.i18n import gettext, zone_name
from carts.funnel_rules import Funnel, ProductFigures

_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(text: str, taken: set[str]) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique whatever the case."""
    base = _BAD_SHEET_CHARS.sub(" ", text).strip("' ")[:31] or "Sheet"
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{base[: 31 - len(str(n)) - 1]} {n}"
    taken.add(name.lower())
    return name


def _product_figures(p: ProductFigures, locale: str) -> list[tuple[str, Any, str]]:
    """(label, value, format) of one product, in the order the report shows them."""
    return [
        (gettext(locale, "Stock"), p.stock if p.stock is not None else gettext(locale, "unlimited"), "int"),
        (gettext(locale, "Order comments"), p.order_comments, "int"),
        (gettext(locale, "Units held"), p.units_held, "int"),
        (gettext(locale, "Units checked out"), p.units_checked_out, "int"),
        (gettext(locale, "Units paid"), p.units_paid, "int"),
        (gettext(locale, "GMV"), p.gmv, "money"),
        (gettext(locale, "Sell-through"), p.sell_through, "pct"),
        (gettext(locale, "On the waitlist now"), p.waitlist_now, "int"),
        (gettext(locale, "Units from the waitlist"), p.units_promoted, "int"),
        (gettext(locale, "Of which paid"), p.promoted_paid, "int"),
    ]


def funnel_xlsx(funnel: Funnel, zone: tzinfo, locale: str = "en") -> bytes:
    out = io.BytesIO()
    # Text is never a formula or a link: product names come from the merchant, but a sheet is pasted around.
    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )
    head = book.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "top"})
    formats = {
        "int": book.add_format({"num_format": "#,##0"}),
        "money": book.add_format({"num_format": "#,##0.00"}),
        "pct": book.add_format({"num_format": "0.0%"}),
        "rate": book.add_format({"num_format": "#,##0.0"}),
        "time": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "text": None,
    }
    taken: set[str] = set()

    def write(sheet: Any, row: int, col: int, value: Any, kind: str) -> None:
        if value is None:
            sheet.write_blank(row, col, None)
        elif isinstance(value, str):
            sheet.write_string(row, col, spreadsheet_cell(value))
        elif kind == "time":
            sheet.write_datetime(row, col, value.astimezone(zone).replace(tzinfo=None), formats["time"])
        else:
            sheet.write_number(row, col, float(value) if isinstance(value, Decimal) else value, formats[kind])

    # The funnel: one figure a row.
    sheet = book.add_worksheet(_sheet_name(gettext(locale, "Funnel"), taken))
    sheet.write_row(
        0, 0, [gettext(locale, "Figure"), gettext(locale, "Value"), gettext(locale, "Of the step before")], head
    )
    sheet.freeze_panes(1, 0)
    stage_names = {
        "comments": gettext(locale, "Comments"),
        "order_comments": gettext(locale, "Order comments"),
        "held": gettext(locale, "Stock held"),
        "checked_out": gettext(locale, "Checked out"),
        "paid": gettext(locale, "Paid"),
    }
    rows: list[tuple[str, Any, str, Any]] = [(stage_names[s], n, "int", share) for s, n, share in funnel.stages.steps()]
    rows += [
        (gettext(locale, "GMV ({currency})", currency=funnel.currency), funnel.gmv, "money", None),
        (gettext(locale, "Paid orders"), funnel.paid_orders, "int", None),
        (gettext(locale, "Average order value ({currency})", currency=funnel.currency), funnel.aov, "money", None),
        (gettext(locale, "Sell-through"), funnel.sell_through, "pct", None),
        (gettext(locale, "Comments per minute"), funnel.per_minute(funnel.stages.comments), "rate", None),
        (gettext(locale, "Order comments per minute"), funnel.per_minute(funnel.stages.order_comments), "rate", None),
        (gettext(locale, "Units from the waitlist"), funnel.units("units_promoted"), "int", None),
        (gettext(locale, "Of which paid"), funnel.units("promoted_paid"), "int", None),
        (gettext(locale, "First comment"), funnel.first_comment, "time", None),
        (gettext(locale, "Last comment"), funnel.last_comment, "time", None),
        (gettext(locale, "Figures as of"), funnel.as_of, "time", None),
    ]
    for r, (label, value, kind, share) in enumerate(rows, start=1):
        sheet.write_string(r, 0, label)
        write(sheet, r, 1, value, kind)
        write(sheet, r, 2, share, "pct")
    sheet.set_column(0, 0, 30)
    sheet.set_column(1, 2, 18)

    # The products: a table, then each on its own sheet.
    sheet = book.add_worksheet(_sheet_name(gettext(locale, "Products"), taken))
    labels = [label for label, _, _ in _product_figures(ProductFigures(0, "", "", None), locale)]
    sheet.write_row(0, 0, [gettext(locale, "Code"), gettext(locale, "Product"), *labels], head)
    sheet.freeze_panes(1, 2)
    for r, p in enumerate(funnel.products, start=1):
        sheet.write_string(r, 0, spreadsheet_cell(p.code))
        sheet.write_string(r, 1, spreadsheet_cell(p.name))
        for c, (_, value, kind) in enumerate(_product_figures(p, locale), start=2):
            write(sheet, r, c, value, kind)
    sheet.set_column(0, 0, 10)
    sheet.set_column(1, 1, 28)
    sheet.set_column(2, 1 + len(labels), 14)
    for p in funnel.products:
        sheet = book.add_worksheet(_sheet_name(f"{p.code} {p.name}", taken))
        sheet.write_row(0, 0, [gettext(locale, "Figure"), gettext(locale, "Value")], head)
        sheet.freeze_panes(1, 0)
        sheet.write_string(1, 0, gettext(locale, "Product"))
        sheet.write_string(1, 1, spreadsheet_cell(f"{p.code} {p.name}"))
        for r, (label, value, kind) in enumerate(_product_figures(p, locale), start=2):
            sheet.write_string(r, 0, label)
            write(sheet, r, 1, value, kind)
        sheet.set_column(0, 0, 28)
        sheet.set_column(1, 1, 18)

    # The series, bucket by bucket in the shop's zone.
    sheet = book.add_worksheet(_sheet_name(gettext(locale, "Per minute"), taken))
    sheet.write_row(
        0,
        0,
        [
            gettext(locale, "From ({zone})", zone=zone_name(locale, zone)),
            gettext(locale, "Minutes"),
            gettext(locale, "Comments"),
            gettext(locale, "Order comments"),
        ],
        head,
    )
    sheet.freeze_panes(1, 0)
    for r, bucket in enumerate(funnel.series.buckets, start=1):
        write(sheet, r, 0, bucket.start, "time")
        write(sheet, r, 1, funnel.series.minutes, "int")
        write(sheet, r, 2, bucket.comments, "int")
        write(sheet, r, 3, bucket.order_comments, "int")
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, 3, 14)
    book.close()
    return out.getvalue()
