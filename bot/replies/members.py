"""What a member reads in Messenger: the member card, referral links, sign-up and linking answers. Pure.

Built with `bot.replies.render`'s checked builders, so every message fits Meta's limits. The phone and email
quick replies are Messenger's own (`user_phone_number`, `user_email`): the shopper's profile value is
offered on a button, and a tap sends it back as the quick reply's payload.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, urlencode

from bot.replies.i18n import gettext, money, number
from bot.replies.render import Button, Message, render_buttons, render_text
from crm_bridge.rules import Program, RuleError, RuleErrorCode, Tier, calculate_progress

PHONE_QUICK_REPLY = {"content_type": "user_phone_number"}
EMAIL_QUICK_REPLY = {"content_type": "user_email"}


@dataclass(frozen=True, slots=True)
class MemberCardInfo:
    code: str
    tier: Tier
    period_spend: Decimal
    available: int
    pending: int
    currency: str
    shop_name: str
    page: str  # the Page's username, or its id
    has_phone: bool
    has_email: bool
    # The newest points change: (points, reason code, its values, the stored English) (issue 21); None: none.
    last_change: tuple[int, str | None, str | None, str] | None = None


def referral_link(page: str, code: str) -> str:
    return f"https://m.me/{quote(page, safe='.')}?{urlencode({'ref': code})}"


def whatsapp_link(text: str) -> str:
    return f"https://wa.me/?{urlencode({'text': text}, quote_via=quote)}"


def share_text(locale: str, shop_name: str, page: str, code: str) -> str:
    return gettext(locale, "Shop with me at {shop}! {link}", shop=shop_name, link=referral_link(page, code))


def render_member_card(locale: str, program: Program, card: MemberCardInfo) -> list[Message]:
    """The answer to `points` / `積分` / `會員`: tier, points, progress, then the links to share."""
    lines = [
        gettext(locale, "🎖️ {tier} · member {code}", tier=card.tier.name, code=card.code),
        gettext(locale, "⭐ Points: {points} available", points=number(locale, card.available)),
    ]
    if card.pending:
        lines.append(
            gettext(locale, "⏳ {points} pending (after the return window)", points=number(locale, card.pending))
        )
    worth = card.tier.redeem_value * (max(card.available, 0) // card.tier.redeem_points)
    if worth:
        lines.append(gettext(locale, "💰 Worth {amount} at checkout", amount=money(locale, worth, card.currency)))
    progress = calculate_progress(program, card.tier, card.period_spend)
    if progress is not None:
        nxt, needed = progress
        lines.append(
            gettext(locale, "📈 {amount} more to {tier}", amount=money(locale, needed, card.currency), tier=nxt.name)
        )
    else:
        lines.append(gettext(locale, "🏆 Top tier"))
    if card.last_change is not None:
        points, code, params, reason = card.last_change
        lines.append(
            gettext(
                locale,
                "🧾 Last: {points} · {reason}",
                points=f"{points:+d}",
                reason=points_reason(locale, code, params, reason),
            )
        )
    quick = []
    if not card.has_phone:
        quick.append(PHONE_QUICK_REPLY)
    if not card.has_email:
        quick.append(EMAIL_QUICK_REPLY)
    if quick:
        lines.append(gettext(locale, "Share your phone or email to link your orders"))
    first = render_text("\n".join(lines))
    if quick:
        first[-1]["quick_replies"] = quick
    link = referral_link(card.page, card.code)
    invite = render_buttons(
        gettext(locale, "🎁 Invite friends: both of you earn points\n{link}", link=link),
        [
            Button(gettext(locale, "Open my link"), url=link),
            Button(
                gettext(locale, "Share on WhatsApp"),
                url=whatsapp_link(share_text(locale, card.shop_name, card.page, card.code)),
            ),
        ],
    )
    return [*first, invite]


def render_referral_welcome(
    locale: str, welcome: str | None, points: int, referrer_name: str | None, gift: str | None = None
) -> list[Message]:
    """The Get Started (or link) answer to a shopper who joined through a member's link; `welcome`: the shop's
    welcome text, or None for a greeting; `gift`: the sign-up coupon's lines (`bot.replies.coupons.signup_gift`)."""
    hello = welcome or gettext(locale, "Hi!")
    if referrer_name:
        joined = gettext(locale, "🎉 Welcome to our members' club (invited by {name})!", name=referrer_name)
    else:
        joined = gettext(locale, "🎉 Welcome to our members' club!")
    text = f"{hello}\n\n{joined}"
    if points:
        text += "\n" + gettext(
            locale, "⭐ {points} points are yours. Type 'points' to see them.", points=number(locale, points)
        )
    if gift:
        text += "\n" + gift
    return render_text(text)


_REFUSALS = {
    RuleErrorCode.SELF_REFERRAL: "That's your own invite link: share it with friends!",
    RuleErrorCode.ALREADY_MEMBER: "You're already one of our members. Type 'points' for your card.",
    RuleErrorCode.REFERRAL_LOOP: "You're already one of our members. Type 'points' for your card.",
    RuleErrorCode.DAILY_CAP: "Welcome! This invite link has been used a lot today; you can still shop as usual.",
}


def render_referral_refused(locale: str, error: RuleError) -> list[Message]:
    return render_text(gettext(locale, _REFUSALS.get(error.code, "Welcome!")))


def _contact_words(locale: str, kind: str) -> str:
    return gettext(locale, "phone number") if kind == "phone" else gettext(locale, "email")


def render_linked(locale: str, kind: str) -> list[Message]:
    return render_text(
        gettext(
            locale,
            "✅ Thanks! Your {what} is linked to your membership. Type 'points' for your card.",
            what=_contact_words(locale, kind),
        )
    )


def render_contact_taken(locale: str, kind: str, code_sent: bool) -> list[Message]:
    """To a shopper whose phone or email another membership has: nothing is joined without proof."""
    what = _contact_words(locale, kind)
    if code_sent:
        return render_text(
            gettext(
                locale,
                "🔐 This {what} belongs to another membership. To join them, open that membership's Messenger chat "
                "with us: we sent a 6-digit code there. Type the code here.",
                what=what,
            )
        )
    return render_text(
        gettext(
            locale,
            "This {what} belongs to another membership, so we kept your points apart. If both are yours, "
            "ask us in this chat and we will join them.",
            what=what,
        )
    )


def render_link_code(locale: str, kind: str, code: str) -> list[Message]:
    """To the member whose phone or email someone else gave: the code, and what it does if shared."""
    return render_text(
        gettext(
            locale,
            "🔐 Someone asked to join another Messenger account to your membership using your {what}. "
            "If that was you, type {code} in that other chat within 15 minutes. If not, ignore this and never "
            "share the code: it gives your points away.",
            what=_contact_words(locale, kind),
            code=code,
        )
    )


def render_link_confirmed(locale: str) -> list[Message]:
    return render_text(
        gettext(locale, "✅ Code accepted: your memberships are joined, points and all. Type 'points' for your card.")
    )


def render_link_code_wrong(locale: str, tries_left: int) -> list[Message]:
    if tries_left <= 0:
        return render_text(gettext(locale, "❌ That code is not right, and it can no longer be used."))
    msgid = (
        "❌ That code is not right. {n} try left." if tries_left == 1 else "❌ That code is not right. {n} tries left."
    )
    return render_text(gettext(locale, msgid, n=tries_left))


# A points row's reason by its code (crm_bridge.rules.PointsReason), some by a value too (`code:value`).
_POINTS_REASONS = {
    "order_earned": "Order {order} ({tier})",
    "referral_purchase:first": "First purchase of member {member}: {order} (level {level})",
    "referral_purchase": "Purchase of member {member}: {order} (level {level})",
    "refunded": "Points used on order {order} given back",
    "reversed:returned": "Taken back: order {order} was returned",
    "reversed": "Taken back: order {order} was cancelled",
    "paid_at_checkout": "Paid {value} of order {order}",
    "signup": "Welcome: you joined",
    "referral_signup": "Member {member} joined (level {level})",
    "birthday": "Happy birthday {year}",
    "expired": "Points earned before {date} expired",
    "self_referral_reversed": "Taken back: the referral was the member itself",
    "tier_reached": "Reached {tier}: order {order}",
    "tier_period": "{tier} for the period from {date}",
}
_REASON_VALUES = {"referral_purchase": "which", "reversed": "kind"}


def points_reason(locale: str, code: str | None, params: str | Mapping[str, str] | None, reason: str) -> str:
    """A points row's reason in `locale`: by its code and values; a merchant's own words (no code), or a
    code this version does not know, as written (`reason`)."""
    if not code:
        return reason
    values: Mapping[str, str] = json.loads(params) if isinstance(params, str) else (params or {})
    key = f"{code}:{values.get(_REASON_VALUES.get(code, ''), '')}"
    msgid = _POINTS_REASONS.get(key) or _POINTS_REASONS.get(code)
    if msgid is None:
        return reason
    try:
        return gettext(locale, msgid, **values)
    except (KeyError, IndexError):  # a row whose values do not fit (written by hand): its English
        return reason


def render_signup_gift(locale: str, gift: str) -> list[Message]:
    """A member made at checkout: welcome, and their sign-up code (`gift`: `bot.replies.coupons.signup_gift`)."""
    welcome = gettext(locale, "🎉 Welcome to our members' club!")
    return render_text(f"{welcome}\n{gift}")
