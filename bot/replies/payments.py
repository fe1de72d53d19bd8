"""What a shopper reads about paying: method names, how to pay an order, order statuses. Pure: no I/O.

Every text is an English msgid translated by `bot.replies.i18n` (catalog: bot/locale/zh_Hant).
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from bot.replies.i18n import gettext, money
from carts.order_rules import OrderInfo, OrderStatus
from carts.payment_rules import PaymentKind, PaymentMethod

_METHOD_LABELS = {
    PaymentKind.FPS: "FPS",
    PaymentKind.PAYME: "PayMe",
    PaymentKind.BANK_TRANSFER: "Bank transfer",
    PaymentKind.CASH_ON_PICKUP: "Cash on pickup",
    PaymentKind.STRIPE: "Card",
}
_STATUS_LABELS = {
    OrderStatus.PENDING_PAYMENT: "Waiting for payment",
    OrderStatus.PAID: "Paid",
    OrderStatus.PACKED: "Packed",
    OrderStatus.SHIPPED: "Shipped",
    OrderStatus.DELIVERED: "Delivered",
    OrderStatus.CANCELLED: "Cancelled",
    OrderStatus.EXPIRED: "Expired unpaid",
    OrderStatus.PARTLY_RETURNED: "Partly returned",
    OrderStatus.RETURNED: "Returned",
}


# The steps of an order's history (its order events) as its page lists them.
_STEP_LABELS = {
    "placed": "Order placed",
    "paid": "Paid",
    "packed": "Packed",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
    "expired": "Expired unpaid",
    "returned": "Returned",
    "merged": "Merged into another order",
    "merged_in": "Another order merged into this one",
}


def history_steps(locale: str, events: list[tuple[str, datetime]], zone: tzinfo) -> list[tuple[str, str]]:
    """(label, when) for each step of an order the shopper should see, times in the shop's zone."""
    return [
        (gettext(locale, _STEP_LABELS[kind]), at.astimezone(zone).strftime("%Y-%m-%d %H:%M"))
        for kind, at in events
        if kind in _STEP_LABELS
    ]


def method_label(locale: str, kind: str) -> str:
    return gettext(locale, _METHOD_LABELS.get(PaymentKind(kind), kind)) if kind in _METHOD_LABELS else kind


def status_label(locale: str, status: str) -> str:
    label = _STATUS_LABELS.get(OrderStatus(status)) if status in OrderStatus.__members__.values() else None
    return gettext(locale, label) if label else status.replace("_", " ")


def how_to_pay(locale: str, order: OrderInfo, method: PaymentMethod | None) -> list[str]:
    """The steps to pay `order` by `method` (None: the shop named no methods, so a receipt in Messenger)."""
    amount = money(locale, order.total, order.currency)
    number = order.number
    if method is None:
        return [
            gettext(
                locale,
                "Please pay {amount} and send us the receipt here in Messenger, quoting {number}; "
                "we confirm your order as soon as the payment arrives.",
                amount=amount,
                number=number,
            )
        ]
    if method.kind is PaymentKind.FPS:
        return [
            gettext(
                locale,
                "Pay {amount} by FPS to FPS ID {fps_id} ({name}).",
                amount=amount,
                fps_id=method.fps_id,
                name=method.name,
            ),
            gettext(
                locale,
                "Scan the QR code in your banking app, or enter the FPS ID; quote {number} as the reference.",
                number=number,
            ),
            gettext(locale, "Then send us the receipt here in Messenger."),
        ]
    if method.kind is PaymentKind.PAYME:
        to = method.payme_link or method.payme_phone or ""
        return [
            gettext(locale, "Pay {amount} by PayMe to {to} ({name}).", amount=amount, to=to, name=method.name),
            gettext(
                locale, "Write {number} in the message, then send us the receipt here in Messenger.", number=number
            ),
        ]
    if method.kind is PaymentKind.BANK_TRANSFER:
        return [
            gettext(
                locale,
                "Transfer {amount} to {bank} account {account} ({name}).",
                amount=amount,
                bank=method.bank,
                account=method.account,
                name=method.name,
            ),
            gettext(
                locale, "Quote {number} as the reference, then send us the receipt here in Messenger.", number=number
            ),
        ]
    if method.kind is PaymentKind.CASH_ON_PICKUP:
        return [
            gettext(locale, "Pay {amount} in cash when you pick up your order {number}.", amount=amount, number=number)
        ]
    return [gettext(locale, "Pay {amount} by card on your order page: {number}.", amount=amount, number=number)]


def order_summary(locale: str, order: OrderInfo, method: PaymentMethod | None, link: str | None = None) -> str:
    """The Messenger text confirming an order."""
    lines = [gettext(locale, "🧾 Order {number} confirmed.", number=order.number), ""]
    for line in order.lines:
        variant = f" ({line.variant_text})" if line.variant_text else ""
        lines.append(f"{line.code} {line.name}{variant} ×{line.qty} · {money(locale, line.total, order.currency)}")
    if order.shipping_fee:
        lines.append(gettext(locale, "Shipping: {amount}", amount=money(locale, order.shipping_fee, order.currency)))
    if order.coupon_discount:  # a voucher or coupon (carts.coupons)
        lines.append(
            gettext(
                locale,
                "Voucher {code}: -{amount}",
                code=order.coupon_code or "",
                amount=money(locale, order.coupon_discount, order.currency),
            )
        )
    points = order.subtotal + order.shipping_fee - order.coupon_discount - order.total
    if points:  # points paid part of it (crm_bridge)
        lines.append(gettext(locale, "Points: -{amount}", amount=money(locale, points, order.currency)))
    lines += ["", gettext(locale, "Total: {amount}", amount=money(locale, order.total, order.currency))]
    if order.delivery_method == "delivery":
        lines.append(gettext(locale, "Delivery to: {address}", address=order.address or ""))
    else:
        lines.append(gettext(locale, "Pickup"))
    if method is not None:
        lines.append(gettext(locale, "Payment: {method}", method=method_label(locale, method.kind)))
    lines += ["", *how_to_pay(locale, order, method)]
    if link:
        lines += ["", gettext(locale, "Your order: {link}", link=link)]
    return "\n".join(lines)


def proof_received(locale: str, number: str) -> str:
    return gettext(locale, "📎 Thanks! We got your receipt for {number} and will check it soon.", number=number)


def proof_without_order(locale: str) -> str:
    return gettext(
        locale, "Thanks for the picture! You have no order waiting for payment, so we did not attach it to one."
    )


def payment_received(locale: str, number: str) -> str:
    """Told once whichever way the order became paid: a confirmed receipt, a card, the merchant's button."""
    return gettext(locale, "✅ Payment received: order {number} is paid. Thank you!", number=number)


def proof_rejected(locale: str, number: str) -> str:
    return gettext(
        locale,
        "We could not match your receipt to order {number}. Please check the amount and reference and send it again.",
        number=number,
    )
