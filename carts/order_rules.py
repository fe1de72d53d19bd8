"""The pure rules of checkout and orders: the checkout form, totals, order numbers, matching returned items,
how long an unpaid order may wait (`OrderRules`), and delivery options with their fees (`ShippingRules`).

Pure: no I/O (no SQL, no web). `carts.orders` loads held stock and order rows into these shapes, decides
with the functions here and writes the result; the errors it raises (`OrderError`) are defined here
because matching returned items refuses with them too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    NOT_MERGEABLE = "not_mergeable"
    COUPON_REFUSED = "coupon_refused"  # the code does not apply (carts.coupons.CouponRefused says why)


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
    shipping_fee: Decimal = Decimal(0)
    delivery_option: str | None = None  # the shop's option key (and "/region"), see `ShippingRules`
    payment_method: str | None = None
    expires_at: datetime | None = None  # an unpaid order expires then
    note: str | None = None  # why it ended so (merged into another order)
    coupon_code: str | None = None  # the coupon or voucher applied at checkout
    coupon_discount: Decimal = Decimal(0)  # what it took off (part of `total`)

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
            "shipping_fee": f"{self.shipping_fee:.2f}",
            "delivery_option": self.delivery_option,
            "payment_method": self.payment_method,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "note": self.note,
            "coupon_code": self.coupon_code,
            "coupon_discount": f"{self.coupon_discount:.2f}",
        }


def format_order_number(order_id: int) -> str:
    return f"PO-{order_id:06d}"


def calculate_totals(
    lines: Iterable[CartLineInfo | OrderLineInfo], shipping_fee: Decimal = Decimal(0), discount: Decimal = Decimal(0)
) -> tuple[Decimal, Decimal]:
    """(subtotal, total): the lines' sum, then the discount off it (never below zero) and the shipping fee on."""
    subtotal = sum((line.total for line in lines), Decimal(0))
    return subtotal, max(Decimal(0), subtotal - discount) + shipping_fee


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


# --- unpaid orders' time to pay -------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?")
DURATION_MAX = timedelta(days=90)


def parse_duration(text: str) -> timedelta:
    """`48h`, `7d`, `1d12h`, `90m` as a time span; `ValueError` naming the problem otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError("must be a time like 48h, 7d, 1d12h or 90m")
    days, hours, minutes = (int(part or 0) for part in match.groups())
    span = timedelta(days=days, hours=hours, minutes=minutes)
    if not timedelta(minutes=1) <= span <= DURATION_MAX:
        raise ValueError("must be from 1 minute to 90 days")
    return span


def format_duration(span: timedelta) -> str:
    """The inverse of `parse_duration`: `2d`, `1d12h`, `90m` → `1h30m`."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n) or "0m"


@dataclass(frozen=True, slots=True)
class OrderRules:
    """How long an unpaid order waits for payment (per payment method where set), and when to remind first."""

    pay_within: timedelta = timedelta(hours=48)
    pay_within_by_method: Mapping[str, timedelta] = field(default_factory=dict)
    remind_before: timedelta | None = timedelta(hours=6)  # None: no reminder

    def expiry(self, placed_at: datetime, payment_method: str | None) -> tuple[datetime, datetime | None]:
        """(expires_at, remind_at) of an order placed at `placed_at`. The reminder comes `remind_before` ahead,
        but never in the first half of the time to pay (as a hold's reminder: a fresh order needs none)."""
        within = self.pay_within_by_method.get(payment_method or "", self.pay_within)
        expires_at = placed_at + within
        if self.remind_before is None:
            return expires_at, None
        return expires_at, expires_at - min(self.remind_before, within / 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pay_within": format_duration(self.pay_within),
            "pay_within_by_method": {k: format_duration(v) for k, v in self.pay_within_by_method.items()},
            "remind_before": None if self.remind_before is None else format_duration(self.remind_before),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderRules:
        remind = data.get("remind_before")
        return cls(
            parse_duration(data["pay_within"]),
            {k: parse_duration(v) for k, v in data.get("pay_within_by_method", {}).items()},
            None if remind is None else parse_duration(remind),
        )


# --- shipping -----------------------------------------------------------------------------------------


class DeliveryKind(StrEnum):
    DELIVERY = "delivery"  # to the shopper's address
    PICKUP = "pickup"  # at a pickup point, in its opening hours


@dataclass(frozen=True, slots=True)
class ShippingOption:
    """One way to get the parcel: a delivery method or a pickup point, with its fee.

    `fee` is flat; `regions` (district or region -> fee) replaces it, the shopper choosing the region;
    `free_above`: no fee when the order's subtotal (before points) reaches it.
    """

    key: str
    name: str
    kind: DeliveryKind
    fee: Decimal = Decimal(0)
    free_above: Decimal | None = None
    regions: Mapping[str, Decimal] = field(default_factory=dict)
    address: str | None = None  # a pickup point's
    hours: str | None = None  # a pickup point's opening hours, as the shop writes them

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind.value,
            "fee": f"{self.fee:.2f}",
            "free_above": None if self.free_above is None else f"{self.free_above:.2f}",
            "regions": {name: f"{fee:.2f}" for name, fee in self.regions.items()},
            "address": self.address,
            "hours": self.hours,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShippingOption:
        free_above = data.get("free_above")
        return cls(
            data["key"],
            data["name"],
            DeliveryKind(data["kind"]),
            Decimal(data.get("fee", "0")),
            None if free_above is None else Decimal(free_above),
            {name: Decimal(fee) for name, fee in data.get("regions", {}).items()},
            data.get("address"),
            data.get("hours"),
        )


@dataclass(frozen=True, slots=True)
class DeliveryChoice:
    """One entry of the checkout's select: an option, and its region when the fee is by region."""

    option: ShippingOption
    region: str | None = None

    @property
    def value(self) -> str:
        return self.option.key if self.region is None else f"{self.option.key}/{self.region}"

    @property
    def label(self) -> str:
        return self.option.name if self.region is None else f"{self.option.name}: {self.region}"

    def fee(self, subtotal: Decimal) -> Decimal:
        return calculate_shipping_fee(self.option, self.region, subtotal)


def calculate_shipping_fee(option: ShippingOption, region: str | None, subtotal: Decimal) -> Decimal:
    """The fee of `option` (to `region`, when its fee is by region) for an order of `subtotal`."""
    if option.free_above is not None and subtotal >= option.free_above:
        return Decimal(0)
    if option.regions:
        if region not in option.regions:
            raise ValueError(f"{option.key}: no such region {region!r}")
        return option.regions[region]
    return option.fee


@dataclass(frozen=True, slots=True)
class ShippingRules:
    """The shop's delivery options and pickup points, in the order the checkout lists them."""

    options: tuple[ShippingOption, ...] = ()

    def choices(self) -> list[DeliveryChoice]:
        return [
            DeliveryChoice(option, region)
            for option in self.options
            for region in (list(option.regions) or [None])  # type: ignore[list-item]
        ]

    def choice(self, value: str) -> DeliveryChoice | None:
        return next((c for c in self.choices() if c.value == value), None)

    def to_dict(self) -> dict[str, Any]:
        return {"options": [option.to_dict() for option in self.options]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShippingRules:
        return cls(tuple(ShippingOption.from_dict(option) for option in data.get("options", [])))


def parse_delivery_choice(rules: ShippingRules, data: Mapping[str, str]) -> tuple[DeliveryChoice | None, str | None]:
    """The checkout's `delivery_option` among the shop's: `(choice, None)`, or `(None, message)`.

    A shop without options keeps the plain delivery-or-pickup choice: `(None, None)`.
    """
    if not rules.options:
        return None, None
    choice = rules.choice((data.get("delivery_option") or "").strip())
    if choice is None:
        return None, "Please choose how to get your order."
    return choice, None
