"""What a shopper reads about vouchers and coupons: the first-N offer's answer in the private reply, what a
code gives, and why a code was refused at checkout. Pure: no I/O.

The refusals are `carts.coupon_rules.CouponRefusal` codes; each has its words here, in the shopper's
language (Babel catalogs, bot.replies.i18n).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

from bot.replies.i18n import gettext, money, number
from carts.coupon_rules import CouponRefusal, Discount, DiscountKind, OfferClaimStatus, VoucherNews


def discount_text(locale: str, discount: Discount, currency: str) -> str:
    """ "10% off", "HK$50 off" (「9折」 would be a Chinese shop's way for 10%, but a percentage is unambiguous)."""
    if discount.kind is DiscountKind.PERCENT:
        return gettext(locale, "{percent}% off", percent=number(locale, discount.value.normalize()))
    return gettext(locale, "{amount} off", amount=money(locale, discount.value, currency))


def voucher_news(locale: str, news: VoucherNews, currency: str, zone: tzinfo | None = None) -> str:
    """The private reply's lines about a first-N offer: the voucher (code, what it gives, from what spend,
    until when), the one they already have, or a polite "all taken"."""
    if news.status == OfferClaimStatus.ALL_TAKEN or not news.code:
        return gettext(locale, "🎁 Sorry, all the vouchers of this offer are taken. Thank you for joining in!")
    what = discount_text(locale, news.discount, currency)
    if news.status == OfferClaimStatus.ALREADY:
        lines = [gettext(locale, "🎁 You already have your voucher {code}: {what}.", code=news.code, what=what)]
    else:
        lines = [gettext(locale, "🎁 You got a voucher! Code {code}: {what}.", code=news.code, what=what)]
    if news.min_spend:
        lines.append(gettext(locale, "For orders of {amount} or more.", amount=money(locale, news.min_spend, currency)))
    if news.valid_until is not None:
        until = news.valid_until.astimezone(zone or UTC)
        lines.append(gettext(locale, "Use it by {until}.", until=f"{until:%Y-%m-%d %H:%M}"))
    lines.append(gettext(locale, "It is applied at checkout."))
    return " ".join(lines)


_REFUSALS = {
    CouponRefusal.UNKNOWN: "We do not know this code. Please check it and try again.",
    CouponRefusal.NOT_YOURS: "This code belongs to another shopper.",
    CouponRefusal.NOT_STARTED: "This code cannot be used yet.",
    CouponRefusal.EXPIRED: "This code has expired.",
    CouponRefusal.STOPPED: "This code is no longer valid.",
    CouponRefusal.NOT_APPLICABLE: "This code is not valid for the items in your cart.",
    CouponRefusal.BUDGET_SPENT: "This code has been fully used.",
    CouponRefusal.USED_UP: "You have already used this code.",
}


def refusal_text(locale: str, refusal: CouponRefusal, detail: Mapping[str, Any], currency: str) -> str:
    """Why a code does not apply, in the shopper's words."""
    if refusal is CouponRefusal.MIN_SPEND:
        return gettext(
            locale,
            "This code needs an order of {amount} or more: add {short} more.",
            amount=money(locale, Decimal(detail["min_spend"]), currency),
            short=money(locale, Decimal(detail["short"]), currency),
        )
    return gettext(locale, _REFUSALS[refusal])


def signup_gift(
    locale: str,
    code: str,
    discount: Discount,
    min_spend: Decimal | None,
    ends_at: datetime | None,
    currency: str,
    zone: tzinfo | None = None,
) -> str:
    """The welcome's lines about a new member's sign-up code: the code, what it gives, from what spend,
    until when (in the shop's zone), and that checkout applies it by itself."""
    lines = [
        gettext(
            locale,
            "🎁 A welcome gift for you: code {code}, {what}.",
            code=code,
            what=discount_text(locale, discount, currency),
        )
    ]
    if min_spend:
        lines.append(gettext(locale, "For orders of {amount} or more.", amount=money(locale, min_spend, currency)))
    if ends_at is not None:
        until = ends_at.astimezone(zone or UTC)
        lines.append(gettext(locale, "Use it by {until}.", until=f"{until:%Y-%m-%d %H:%M}"))
    lines.append(gettext(locale, "It is applied at checkout."))
    return " ".join(lines)
