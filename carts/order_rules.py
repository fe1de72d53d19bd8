"""The pure rules of checkout and orders: the checkout form, totals, order numbers, matching returned items.

Pure: no I/O (no SQL, no web). `carts.orders` loads held stock and order rows into these shapes, decides
with the functions here and writes the result; the errors it raises (`OrderError`) are defined here
because matching returned items refuses with them too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from carts.core import CartLineInfo

NAME_MAX = 100
ADDRESS_MAX = 500
_PHONE = re.compile(r"[0-9+\- ]{6,20}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class OrderStatus(StrEnum):
    """An order's life: pending payment, then paid, packed, shipped (carrier and tracking number) and
    delivered; or cancelled (or expired unpaid) before payment; partly returned or returned after it."""

    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    PARTLY_RETURNED = "partly_returned"
    RETURNED = "returned"


# Every status a payment has reached: paid, then on through fulfilment or returns.
PAID_STATUSES = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.PACKED,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.PARTLY_RETURNED,
        OrderStatus.RETURNED,
    }
)


class OrderErrorCode(StrEnum):
    NOT_FOUND = "not_found"
    NONCE_MISMATCH = "nonce_mismatch"  # a stale, replayed or cross-site form
    EMPTY_CART = "empty_cart"
    CART_CHANGED = "cart_changed"  # the cart is not what the page showed
    WRONG_STATUS = "wrong_status"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    UNKNOWN_LINE = "unknown_line"
    AMBIGUOUS_LINE = "ambiguous_line"
    TOO_MANY_RETURNED = "too_many_returned"
    BAD_SHIPMENT = "bad_shipment"  # no carrier or tracking number (carts.fulfilment)


class OrderError(Exception):
    def __init__(self, code: OrderErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CheckoutForm:
    name: str
    phone: str
    delivery_method: str  # delivery | pickup
    address: str | None


def parse_checkout_form(data: Mapping[str, str]) -> tuple[CheckoutForm | None, dict[str, str]]:
    """The form's fields, checked: `(form, {})`, or `(None, {field: message})` naming every problem."""
    errors: dict[str, str] = {}
    name = (data.get("name") or "").strip()
    phone = (data.get("phone") or "").strip()
    method = (data.get("delivery_method") or "").strip()
    address = (data.get("address") or "").strip().replace("\r\n", "\n")
    if not name:
        errors["name"] = "Please enter your name."
    elif len(name) > NAME_MAX:
        errors["name"] = f"Your name can be at most {NAME_MAX} characters."
    elif _CONTROL.search(name):
        errors["name"] = "Your name has characters we cannot use."
    if not _PHONE.fullmatch(phone) or sum(c.isdigit() for c in phone) < 6:
        errors["phone"] = "Please enter a phone number: 6 to 20 digits, spaces, dashes or +."
    if method not in ("delivery", "pickup"):
        errors["delivery_method"] = "Please choose delivery or pickup."
    elif method == "delivery":
        if not address:
            errors["address"] = "Please enter the delivery address."
        elif len(address) > ADDRESS_MAX:
            errors["address"] = f"The address can be at most {ADDRESS_MAX} characters."
        elif _CONTROL.search(address):
            errors["address"] = "The address has characters we cannot use."
    if errors:
        return None, errors
    return CheckoutForm(name, phone, method, address if method == "delivery" else None), {}


@dataclass(frozen=True, slots=True)
class OrderLineInfo:
    id: int
    product_id: int
    code: str
    name: str
    variant: tuple[tuple[str, str], ...]
    qty: int
    unit_price: Decimal
    returned_qty: int = 0

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.qty

    @property
    def variant_text(self) -> str:
        return " / ".join(value for _, value in self.variant)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "code": self.code,
            "name": self.name,
            "variant": dict(self.variant),
            "qty": self.qty,
            "unit_price": f"{self.unit_price:.2f}",
            "returned_qty": self.returned_qty,
        }


@dataclass(frozen=True, slots=True)
class OrderInfo:
    id: int
    number: str
    page_id: str
    psid: str
    status: str
    currency: str
    subtotal: Decimal
    total: Decimal
    customer_name: str
    phone: str
    delivery_method: str
    address: str | None
    payment_reference: str | None
    placed_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    lines: tuple[OrderLineInfo, ...] = field(default=())
    packed_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "status": self.status,
            "page_id": self.page_id,
            "psid": self.psid,
            "currency": self.currency,
            "subtotal": f"{self.subtotal:.2f}",
            "total": f"{self.total:.2f}",
            "customer_name": self.customer_name,
            "phone": self.phone,
            "delivery_method": self.delivery_method,
            "address": self.address,
            "payment_reference": self.payment_reference,
            "placed_at": self.placed_at.isoformat(),
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
            "cancelled_at": self.cancelled_at.isoformat() if self.cancelled_at else None,
            "lines": [line.to_dict() for line in self.lines],
            "packed_at": self.packed_at.isoformat() if self.packed_at else None,
            "shipped_at": self.shipped_at.isoformat() if self.shipped_at else None,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "carrier": self.carrier,
            "tracking_number": self.tracking_number,
        }


def format_order_number(order_id: int) -> str:
    return f"PO-{order_id:06d}"


def calculate_totals(lines: Iterable[CartLineInfo]) -> tuple[Decimal, Decimal]:
    """(subtotal, total); the same until shipping fees or discounts exist."""
    subtotal = sum((line.total for line in lines), Decimal(0))
    return subtotal, subtotal


# A paid order's statuses that take returns: paid, on its way through fulfilment, or returned in part.
RETURNABLE_STATUSES = frozenset(
    {OrderStatus.PAID, OrderStatus.PACKED, OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.PARTLY_RETURNED}
)


def calculate_return_status(lines: Iterable[OrderLineInfo], unreturned: OrderStatus = OrderStatus.PAID) -> OrderStatus:
    """`returned` when every unit came back, `partly_returned` when some did, else `unreturned` (the order's
    fulfilment status: paid, packed, shipped or delivered)."""
    lines = list(lines)
    returned = sum(line.returned_qty for line in lines)
    if returned == 0:
        return unreturned
    return OrderStatus.RETURNED if returned >= sum(line.qty for line in lines) else OrderStatus.PARTLY_RETURNED


def calculate_cart_version(claims: Iterable[tuple[int, int]]) -> str:
    """A short fingerprint of the held claims (id, qty): the form carries it, so a changed cart is noticed."""
    text = ",".join(f"{claim_id}:{qty}" for claim_id, qty in sorted(claims))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ReturnItem:
    code: str
    qty: int
    variant: tuple[tuple[str, str], ...] | None = None  # None: any variant (when only one line has the code)


def match_return_lines(lines: Sequence[OrderLineInfo], items: Iterable[ReturnItem]) -> dict[int, int]:
    """Which order line each returned item is (line id -> units), checked against what is left to return."""
    wanted: dict[int, int] = {}
    for item in items:
        found = [
            line
            for line in lines
            if line.code.casefold() == item.code.casefold() and (item.variant is None or line.variant == item.variant)
        ]
        if not found:
            raise OrderError(OrderErrorCode.UNKNOWN_LINE, f"{item.code}: the order has no such line")
        if len(found) > 1:
            raise OrderError(
                OrderErrorCode.AMBIGUOUS_LINE,
                f"{item.code}: the order has it in several variants; give the variant",
            )
        wanted[found[0].id] = wanted.get(found[0].id, 0) + item.qty
    for line in lines:
        if wanted.get(line.id, 0) > line.qty - line.returned_qty:
            raise OrderError(
                OrderErrorCode.TOO_MANY_RETURNED,
                f"{line.code}: {wanted[line.id]} returned but only {line.qty - line.returned_qty} can be",
            )
    return wanted
