"""What a shopper reads about an unpaid order's time running out: the reminder before, the notice after.

Pure: no I/O. One function per message, the English text its msgid, so each can go through the shop's
catalog (`bot.replies.i18n`, English and Traditional Chinese) once it exists.
"""

from __future__ import annotations

import math
from datetime import datetime

from carts.core import format_money
from carts.order_rules import OrderInfo


def hours_left(expires_at: datetime, now: datetime) -> int:
    """Whole hours left, rounded up: "6 hours" rather than a time the shopper would read in the wrong zone."""
    return max(1, math.ceil((expires_at - now).total_seconds() / 3600))


def order_expiring(order: OrderInfo, now: datetime, link: str | None) -> str:
    assert order.expires_at is not None
    hours = hours_left(order.expires_at, now)
    text = (
        f"⏰ Your order {order.number} ({format_money(order.total, order.currency)}) is waiting for payment. "
        f"Please pay within {hours} hour{'' if hours == 1 else 's'}, or the order is cancelled and its items "
        "go back on sale."
    )
    return f"{text}\n{link}" if link else text


def order_expired(order: OrderInfo) -> str:
    return (
        f"Your order {order.number} was not paid in time, so it has been cancelled and its items are back on "
        "sale. Comment again if you still want them."
    )
