"""What a shopper reads about an order's end: the unpaid reminder and expiry, a cancellation, a return.

Pure: no I/O. One function per message, the English text its msgid, translated through the shop's catalog
(`bot.replies.i18n`, English and Traditional Chinese) into the shop's language.
"""

from __future__ import annotations

import math
from datetime import datetime

from bot.replies.i18n import gettext, money
from carts.order_rules import OrderInfo


def hours_left(expires_at: datetime, now: datetime) -> int:
    """Whole hours left, rounded up: "6 hours" rather than a time the shopper would read in the wrong zone."""
    return max(1, math.ceil((expires_at - now).total_seconds() / 3600))


def order_expiring(locale: str, order: OrderInfo, now: datetime, link: str | None) -> str:
    assert order.expires_at is not None
    hours = hours_left(order.expires_at, now)
    # Two msgids, not a computed plural: the catalog is read without plural forms, and Chinese needs none.
    msgid = (
        "⏰ Your order {number} ({amount}) is waiting for payment. Please pay within {hours} hour, or the order "
        "is cancelled and its items go back on sale."
        if hours == 1
        else "⏰ Your order {number} ({amount}) is waiting for payment. Please pay within {hours} hours, or the "
        "order is cancelled and its items go back on sale."
    )
    text = gettext(locale, msgid, number=order.number, amount=money(locale, order.total, order.currency), hours=hours)
    return f"{text}\n{link}" if link else text


def order_expired(locale: str, order: OrderInfo) -> str:
    return gettext(
        locale,
        "Your order {number} was not paid in time, so it has been cancelled and its items are back on sale. "
        "Comment again if you still want them.",
        number=order.number,
    )


def order_cancelled(locale: str, number: str) -> str:
    return gettext(locale, "Your order {number} has been cancelled.", number=number)


def order_returned(locale: str, number: str, units: int, whole: bool) -> str:
    if whole:
        return gettext(locale, "The return of your order {number} is recorded: all of it came back.", number=number)
    return gettext(
        locale, "The return of {units} item(s) from your order {number} is recorded.", number=number, units=units
    )
