"""The shop's payment methods, checked: FPS, PayMe, bank transfer, cash on pickup, card by Stripe. Pure.

The same checks serve the shop file's `payments:` section (`config.payments_file`) and the admin API
(`bot.web.payments_api`): both hand a plain mapping to `parse_payment_methods`, which names the field
of the first problem (`fps.id: must be 7 to 9 digits`).

    payments:
      fps: {id: "1234567", name: Blossom Florist}
      payme: {link: "https://payme.hsbc/blossom", name: Blossom}     # or phone: "+852 9123 4567"
      bank_transfer: {bank: HSBC, account: "123-456789-001", name: Blossom Florist Ltd}
      cash_on_pickup: true
      stripe: {enabled: true}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from carts.fps import FPS_ID


class PaymentKind(StrEnum):
    FPS = "fps"
    PAYME = "payme"
    BANK_TRANSFER = "bank_transfer"
    CASH_ON_PICKUP = "cash_on_pickup"
    STRIPE = "stripe"


# The order a shopper sees them in: instant and free first.
KIND_ORDER = tuple(PaymentKind)
_FIELDS: dict[PaymentKind, tuple[str, ...]] = {
    PaymentKind.FPS: ("id", "name"),
    PaymentKind.PAYME: ("link", "phone", "name"),
    PaymentKind.BANK_TRANSFER: ("bank", "account", "name"),
    PaymentKind.CASH_ON_PICKUP: (),
    PaymentKind.STRIPE: ("enabled",),
}
TEXT_MAX = 100
_PHONE = re.compile(r"\+?[0-9][0-9 \-]{5,19}")
_PAYME_LINK = re.compile(r"https://(payme\.hsbc|payme\.hsbc\.com\.hk)/[A-Za-z0-9_\-./]{1,200}")
_ACCOUNT = re.compile(r"[0-9][0-9 \-]{4,39}")


class PaymentConfigError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    """One way to pay; only the fields of its kind are set."""

    kind: PaymentKind
    fps_id: str | None = None
    payme_link: str | None = None
    payme_phone: str | None = None
    bank: str | None = None
    account: str | None = None
    name: str | None = None  # the payee's name the shopper will see in their banking app

    def to_dict(self) -> dict[str, Any]:
        """The method as the admin API and `parse_payment_methods` write it."""
        data = asdict(self)
        kind = data.pop("kind")
        if kind == PaymentKind.CASH_ON_PICKUP:
            return {}
        if kind == PaymentKind.STRIPE:
            return {"enabled": True}
        renamed = {"fps_id": "id", "payme_link": "link", "payme_phone": "phone"}
        return {renamed.get(key, key): value for key, value in data.items() if value is not None}


def payment_methods_to_dict(methods: tuple[PaymentMethod, ...]) -> dict[str, Any]:
    return {
        method.kind.value: (True if method.kind is PaymentKind.CASH_ON_PICKUP else method.to_dict())
        for method in methods
    }


def _text(data: Mapping[str, Any], kind: str, name: str, required: bool) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise PaymentConfigError(f"{kind}.{name}", "missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PaymentConfigError(f"{kind}.{name}", "must be text")
    text = " ".join(str(value).split())
    if not text:
        raise PaymentConfigError(f"{kind}.{name}", "must not be empty (leave it out for none)")
    if len(text) > TEXT_MAX:
        raise PaymentConfigError(f"{kind}.{name}", f"must be at most {TEXT_MAX} characters")
    return text


def _method(kind: PaymentKind, value: Any) -> PaymentMethod | None:
    if kind is PaymentKind.CASH_ON_PICKUP:
        if not isinstance(value, bool):
            raise PaymentConfigError(kind, "must be true or false")
        return PaymentMethod(kind) if value else None
    if not isinstance(value, Mapping):
        raise PaymentConfigError(kind, f"must be a mapping with {', '.join(_FIELDS[kind])}")
    for key in value:
        if key not in _FIELDS[kind]:
            raise PaymentConfigError(f"{kind}.{key}", f"unknown field (expected {', '.join(_FIELDS[kind])})")
    if kind is PaymentKind.STRIPE:
        enabled = value.get("enabled", True)
        if not isinstance(enabled, bool):
            raise PaymentConfigError("stripe.enabled", "must be true or false")
        return PaymentMethod(kind) if enabled else None
    name = _text(value, kind, "name", required=True)
    if kind is PaymentKind.FPS:
        fps_id = _text(value, kind, "id", required=True)
        if not FPS_ID.fullmatch(fps_id or ""):
            raise PaymentConfigError("fps.id", "must be the shop's FPS id: 7 to 9 digits")
        return PaymentMethod(kind, fps_id=fps_id, name=name)
    if kind is PaymentKind.PAYME:
        link, phone = _text(value, kind, "link", False), _text(value, kind, "phone", False)
        if (link is None) == (phone is None):
            raise PaymentConfigError("payme", "give either link (your PayMe payment link) or phone")
        if link is not None and not _PAYME_LINK.fullmatch(link):
            raise PaymentConfigError("payme.link", "must be a PayMe link, like https://payme.hsbc/yourshop")
        if phone is not None and not _PHONE.fullmatch(phone):
            raise PaymentConfigError("payme.phone", "must be a phone number: digits, spaces, dashes, + first")
        return PaymentMethod(kind, payme_link=link, payme_phone=phone, name=name)
    bank, account = _text(value, kind, "bank", True), _text(value, kind, "account", True)
    if not _ACCOUNT.fullmatch(account or ""):
        raise PaymentConfigError("bank_transfer.account", "must be the account number: digits, spaces and dashes")
    return PaymentMethod(kind, bank=bank, account=account, name=name)


def parse_payment_methods(data: Any) -> tuple[PaymentMethod, ...]:
    """The shop's methods from `{kind: settings}`, in the order shoppers see them; raises `PaymentConfigError`."""
    if data is None:
        return ()
    if not isinstance(data, Mapping):
        raise PaymentConfigError("payments", f"must be a mapping with {', '.join(KIND_ORDER)}")
    for key in data:
        if key not in KIND_ORDER:
            raise PaymentConfigError(str(key), f"unknown payment method (expected {', '.join(KIND_ORDER)})")
    methods = (_method(kind, data[kind]) for kind in KIND_ORDER if kind in data)
    return tuple(method for method in methods if method is not None)


def check_payment_choice(methods: tuple[PaymentMethod, ...], chosen: str, delivery_method: str) -> str | None:
    """The problem with a shopper's choice at checkout, or None: one of the shop's, cash only at pickup."""
    if not methods:
        return None  # the shop has not said: the order asks for payment the old way (a receipt in Messenger)
    if chosen not in {method.kind for method in methods}:
        return "Please choose how you will pay."
    if chosen == PaymentKind.CASH_ON_PICKUP and delivery_method != "pickup":
        return "Cash is paid when you pick up: choose pickup, or another way to pay."
    return None


def amount_in_minor_units(amount: Any, currency: str) -> int:
    """Stripe's amount: cents (HKD, USD...), or whole units for currencies without them (JPY...)."""
    zero_decimal = {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    }
    return int(amount) if currency.upper() in zero_decimal else int((amount * 100).to_integral_value())
