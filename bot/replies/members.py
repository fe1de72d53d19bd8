"""What a member reads in Messenger: the member card, referral links, sign-up and linking answers. Pure.

Built with `bot.replies.render`'s checked builders, so every message fits Meta's limits. The phone and email
quick replies are Messenger's own (`user_phone_number`, `user_email`): the shopper's profile value is
offered on a button, and a tap sends it back as the quick reply's payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, urlencode

from bot.replies.render import Button, Message, render_buttons, render_text
from carts.core import format_money
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


def referral_link(page: str, code: str) -> str:
    return f"https://m.me/{quote(page, safe='.')}?{urlencode({'ref': code})}"


def whatsapp_link(text: str) -> str:
    return f"https://wa.me/?{urlencode({'text': text}, quote_via=quote)}"


def share_text(shop_name: str, page: str, code: str) -> str:
    return f"Shop with me at {shop_name}! 一齊嚟 {shop_name} 買嘢！ {referral_link(page, code)}"


def render_member_card(program: Program, card: MemberCardInfo) -> list[Message]:
    """The answer to `points` / `積分` / `會員`: tier, points, progress, then the links to share."""
    lines = [
        f"🎖️ {card.tier.name} · member {card.code}",
        f"⭐ Points 積分: {card.available:,} available 可用",
    ]
    if card.pending:
        lines.append(f"⏳ {card.pending:,} pending 待確認 (after the return window)")
    worth = card.tier.redeem_value * (max(card.available, 0) // card.tier.redeem_points)
    if worth:
        lines.append(f"💰 Worth {format_money(worth, card.currency)} at checkout 結帳可抵")
    progress = calculate_progress(program, card.tier, card.period_spend)
    if progress is not None:
        nxt, needed = progress
        lines.append(f"📈 {format_money(needed, card.currency)} more to {nxt.name} 升級尚差")
    else:
        lines.append("🏆 Top tier 最高級別")
    quick = []
    if not card.has_phone:
        quick.append(PHONE_QUICK_REPLY)
    if not card.has_email:
        quick.append(EMAIL_QUICK_REPLY)
    if quick:
        lines.append("Share your phone or email to link your orders 分享電話或電郵以連結訂單")
    first = render_text("\n".join(lines))
    if quick:
        first[-1]["quick_replies"] = quick
    link = referral_link(card.page, card.code)
    invite = render_buttons(
        f"🎁 Invite friends 邀請朋友: both of you earn points 雙方都有積分\n{link}",
        [
            Button("Open my link 我的連結", url=link),
            Button("Share on WhatsApp", url=whatsapp_link(share_text(card.shop_name, card.page, card.code))),
        ],
    )
    return [*first, invite]


def render_referral_welcome(welcome: str, points: int, referrer_name: str | None) -> list[Message]:
    """The Get Started (or link) answer to a shopper who joined through a member's link."""
    by = f" (invited by {referrer_name})" if referrer_name else ""
    text = f"{welcome}\n\n🎉 Welcome to our members' club{by}! 歡迎加入會員！"
    if points:
        text += f"\n⭐ {points:,} points are yours 你已獲得 {points:,} 積分. Type 'points' to see them."
    return render_text(text)


_REFUSALS = {
    RuleErrorCode.SELF_REFERRAL: "That's your own invite link: share it with friends! 這是你自己的邀請連結。",
    RuleErrorCode.ALREADY_MEMBER: "You're already one of our members 你已經是會員. Type 'points' for your card.",
    RuleErrorCode.REFERRAL_LOOP: "You're already one of our members 你已經是會員. Type 'points' for your card.",
    RuleErrorCode.DAILY_CAP: "Welcome! 歡迎！ This invite link has been used a lot today; you can still shop as usual.",
}


def render_referral_refused(error: RuleError) -> list[Message]:
    return render_text(_REFUSALS.get(error.code, "Welcome! 歡迎！"))


def render_linked(kind: str) -> list[Message]:
    what = "phone number 電話" if kind == "phone" else "email 電郵"
    return render_text(f"✅ Thanks! Your {what} is linked to your membership. Type 'points' for your card.")


def _contact_words(kind: str) -> str:
    return "phone number 電話" if kind == "phone" else "email 電郵"


def render_contact_taken(kind: str, code_sent: bool) -> list[Message]:
    """To a shopper whose phone or email another membership has: nothing is joined without proof."""
    what = _contact_words(kind)
    if code_sent:
        return render_text(
            f"🔐 This {what} belongs to another membership. To join them, open that membership's Messenger chat "
            "with us: we sent a 6-digit code there. Type the code here. "
            "此聯絡方式屬於另一個會員。我們已把 6 位數字驗證碼發到該會員的 Messenger，請在這裡輸入驗證碼以合併。"
        )
    return render_text(
        f"This {what} belongs to another membership, so we kept your points apart. If both are yours, "
        "ask us in this chat and we will join them. 此聯絡方式屬於另一個會員；如兩個都是你的，請聯絡我們合併。"
    )


def render_link_code(kind: str, code: str) -> list[Message]:
    """To the member whose phone or email someone else gave: the code, and what it does if shared."""
    return render_text(
        f"🔐 Someone asked to join another Messenger account to your membership using your {_contact_words(kind)}. "
        f"If that was you, type {code} in that other chat within 15 minutes. If not, ignore this and never "
        f"share the code: it gives your points away. 有人以你的聯絡方式要求合併會員。如是你本人，請在另一個對話輸入 "
        f"{code}；否則請忽略，切勿分享驗證碼。"
    )


def render_link_confirmed() -> list[Message]:
    return render_text(
        "✅ Code accepted: your memberships are joined, points and all. 已合併你的會員記錄。"
        "Type 'points' for your card."
    )


def render_link_code_wrong(tries_left: int) -> list[Message]:
    if tries_left <= 0:
        return render_text("❌ That code is not right, and it can no longer be used. 驗證碼錯誤，已失效。")
    return render_text(f"❌ That code is not right. {tries_left} tries left. 驗證碼錯誤，尚餘 {tries_left} 次。")
