"""What a shopper reads when their order moves on: packed, shipped (carrier and tracking number), delivered.

One function per message, each text an English msgid with named parameters, translated through the shop's
catalog (`bot.replies.i18n`) into the shop's language.
"""

from __future__ import annotations

from bot.replies.i18n import gettext
from bot.replies.render import Message, render_text

ORDER_PACKED = "Your order {number} is packed and will be on its way soon."
ORDER_SHIPPED = "Your order {number} has been shipped with {carrier}. Tracking number: {tracking_number}"
ORDER_DELIVERED = "Your order {number} has been delivered. Thank you for shopping with us!"


def order_packed(locale: str, number: str) -> list[Message]:
    return render_text(gettext(locale, ORDER_PACKED, number=number))


def order_shipped(locale: str, number: str, carrier: str, tracking_number: str) -> list[Message]:
    return render_text(gettext(locale, ORDER_SHIPPED, number=number, carrier=carrier, tracking_number=tracking_number))


def order_delivered(locale: str, number: str) -> list[Message]:
    return render_text(gettext(locale, ORDER_DELIVERED, number=number))
