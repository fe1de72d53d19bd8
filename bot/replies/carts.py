"""What the shopper reads after commenting, and in Messenger about their cart. Pure: no I/O.

A private reply is one message (Meta allows no second one until the shopper answers), so it is a button
template: what the comments did, the cart's size and total, a "View cart" button; a missing size or
colour comes as quick replies whose payload carries the choice made so far (`v1:PICK:...`, built and
read by `bot.replies.payload_codec`), so the next tap can ask for the next option or make the claim, without
server-side state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from bot.replies.payload_codec import Payload, PayloadAction, decode_payload, encode_payload
from bot.replies.render import (
    MAX_BUTTON_TEXT,
    MAX_QUICK_REPLIES,
    MAX_QUICK_REPLY_TITLE,
    Button,
    Message,
    QuickReply,
    render_buttons,
    render_text,
)
from carts.comment_orders import CommentOutcome, ItemOutcome
from carts.core import CartInfo, format_money

VIEW_CART_PAYLOAD = encode_payload(PayloadAction.CART)


@dataclass(frozen=True)
class ItemResult:
    code: str
    name: str
    qty: int
    outcome: str  # a CommentOutcome for a claim (added, waitlisted, ...) or an ItemOutcome
    variant_text: str = ""
    limit: int | None = None
    chosen: Mapping[str, str] = field(default_factory=dict)  # for needs_variant: options already given
    missing: Sequence[tuple[str, Sequence[str]]] = ()  # for needs_variant: (option, allowed values)


@dataclass(frozen=True)
class CommentResult:
    comment_id: str
    items: tuple[ItemResult, ...]
    closed_text: str | None = None  # the campaign's reply to orders after it closed


def _item_line(item: ItemResult, currency: str, asked_below: bool = True) -> str:
    """One item's line; `asked_below`: its choice is the one the quick replies offer (else it is asked next)."""
    label = f"{item.code} {item.name}".strip()
    variant = f" ({item.variant_text})" if item.variant_text else ""
    if item.outcome == CommentOutcome.ADDED:
        return f"✅ {label}{variant} ×{item.qty} added"
    if item.outcome == CommentOutcome.WAITLISTED:
        return f"⏳ {label}{variant} ×{item.qty}: sold out, you are on the waitlist"
    if item.outcome == ItemOutcome.NEEDS_VARIANT:
        option = item.missing[0][0] if item.missing else "option"
        if asked_below or not item.missing or not item.missing[0][1]:
            return f"❓ {label} ×{item.qty}: which {option}? Tap below"
        example = f"{item.code} {item.missing[0][1][0]}"
        return f"❓ {label} ×{item.qty}: which {option}? Asked next, or type “{example}”"
    if item.outcome == ItemOutcome.OVER_LIMIT:
        return f"⚠️ {label} ×{item.qty} not added: the limit is {item.limit} per person"
    if item.outcome == ItemOutcome.UNKNOWN_CODE:
        return f"❔ {item.code} is not on sale in this post"
    if item.outcome == ItemOutcome.AMBIGUOUS:
        return f"❔ +{item.qty}: which item? Please comment the code too, e.g. A+{item.qty}"
    return f"{label} ×{item.qty}"


def cart_summary(cart: CartInfo) -> str:
    if cart.is_empty:
        return "🛒 Your cart is empty"
    units = "item" if cart.units == 1 else "items"
    return f"🛒 Cart: {cart.units} {units} · {format_money(cart.subtotal, cart.currency)}"


def pick_payload(comment_id: str, code: str, chosen: Mapping[str, str]) -> str:
    pairs = [part for name, value in sorted(chosen.items()) for part in (name, value)]
    return encode_payload(PayloadAction.PICK, comment_id, code, *pairs)


@dataclass(frozen=True)
class Pick:
    comment_id: str
    code: str
    chosen: dict[str, str]


def parse_pick_payload(payload: str) -> Pick | None:
    """The variant choice a quick reply carries, or None if it is not a (valid, current) one."""
    decoded = decode_payload(payload)
    if not isinstance(decoded, Payload) or decoded.action is not PayloadAction.PICK:
        return None
    comment_id, code, *pairs = decoded.args
    if len(pairs) % 2:
        return None
    return Pick(comment_id, code, dict(zip(pairs[::2], pairs[1::2], strict=True)))


def option_quick_replies(
    comment_id: str, code: str, chosen: Mapping[str, str], option: str, values: Sequence[str]
) -> list[QuickReply]:
    """One quick reply per value of the next option, each carrying the choices made so far."""
    return [
        QuickReply(value[:MAX_QUICK_REPLY_TITLE], pick_payload(comment_id, code, {**chosen, option: value}))
        for value in list(values)[:MAX_QUICK_REPLIES]
    ]


def render_choice_question(
    comment_id: str, code: str, name: str, qty: int, chosen: Mapping[str, str], option: str, values: Sequence[str]
) -> list[Message]:
    """The question for an item's next option in the chat, with its values as quick replies."""
    label = f"{code} {name}".strip()
    return render_text(
        f"❓ {label} ×{qty}: which {option}? 請選擇：",
        option_quick_replies(comment_id, code, chosen, option, values),
    )


def _first_choice(results: Sequence[CommentResult]) -> tuple[str, ItemResult] | None:
    """The first item that still needs an option: the quick replies ask it, the chat asks the others next."""
    for result in results:
        for item in result.items:
            if item.outcome == ItemOutcome.NEEDS_VARIANT and item.missing:
                return result.comment_id, item
    return None


def _quick_replies(first: tuple[str, ItemResult] | None) -> list[QuickReply]:
    if first is None:
        return []
    comment_id, item = first
    option, values = item.missing[0]
    return option_quick_replies(comment_id, item.code, item.chosen, option, values)


def hold_time_left(expires_at: datetime | None, now: datetime, zone: tzinfo | None = None) -> str | None:
    """How long the cart stays held, as the shopper reads it ("23 min left"); None once it ran out.

    `zone`: the shop's time zone, for the clock time it ends at; without it only the time left is said.
    """
    if expires_at is None or expires_at <= now:
        return None
    minutes = max(1, math.ceil((expires_at - now).total_seconds() / 60))  # "0 min left" would be no news
    hours, rest = divmod(minutes, 60)
    en = f"{minutes} min" if not hours else f"{hours} h" + (f" {rest} min" if rest else "")
    zh = f"{minutes} 分鐘" if not hours else f"{hours} 小時" + (f" {rest} 分鐘" if rest else "")
    until = f" (until {expires_at.astimezone(zone):%H:%M})" if zone is not None else ""
    return f"⏳ Held for you: {en} left{until} 保留時間尚餘 {zh}"


def cart_buttons(cart: CartInfo, checkout_url: str | None) -> list[Button]:
    buttons = [Button("Checkout 結帳", url=checkout_url)] if checkout_url and not cart.is_empty else []
    return [*buttons, Button("View cart 購物車", payload=VIEW_CART_PAYLOAD)]


def render_checkout(cart: CartInfo, checkout_url: str | None) -> list[Message]:
    """The answer to `checkout` / `結帳`: the total and the button to the checkout page."""
    if cart.is_empty or not checkout_url:
        return render_cart(cart)
    return [
        render_buttons(f"{cart_summary(cart)}\nReady to check out? 準備好結帳了嗎？", cart_buttons(cart, checkout_url))
    ]


def render_comment_reply(
    name: str | None, results: Sequence[CommentResult], cart: CartInfo, checkout_url: str | None = None
) -> Message:
    """The one private reply for one or more comments of a shopper."""
    greeting = f"Hi {name}! 你好！" if name else "Hi! 你好！"
    first = _first_choice(results)
    lines = [
        line
        for r in results
        for line in (
            [r.closed_text]
            if r.closed_text
            else [_item_line(i, cart.currency, first is None or first[1] is i) for i in r.items]
        )
    ]
    summary = cart_summary(cart)
    text = "\n".join([greeting, *lines, "", summary])
    if len(text) > MAX_BUTTON_TEXT:
        # Keep the greeting and the cart total; say how many lines did not fit (View cart shows all).
        shown: list[str] = []
        for line in lines:
            candidate = "\n".join([greeting, *shown, line, f"…and {len(lines)} more", "", summary])
            if len(candidate) > MAX_BUTTON_TEXT:
                break
            shown.append(line)
        text = "\n".join([greeting, *shown, f"…and {len(lines) - len(shown)} more", "", summary])
    message = render_buttons(text, cart_buttons(cart, checkout_url))
    quick = _quick_replies(first)
    if quick:
        message["quick_replies"] = [q.to_meta() for q in quick]
    return message


def render_cart(cart: CartInfo, checkout_url: str | None = None, hold: str | None = None) -> list[Message]:
    """The whole cart, for `cart` / `購物車` or the View cart button: its lines, the total, the hold's time
    left (`hold_time_left`) and the Checkout button; as text split in parts when it is long."""
    if cart.is_empty:
        return render_text(
            "🛒 Your cart is empty. Comment a code like A+1 under our posts to add items.\n"
            "購物車是空的，在帖子留言「A+1」即可加入。"
        )
    lines = ["🛒 Your cart 購物車"]
    for line in cart.lines:
        variant = f" ({line.variant_text})" if line.variant_text else ""
        lines.append(f"• {line.code} {line.name}{variant} ×{line.qty}  {format_money(line.total, cart.currency)}")
    tail = [f"Total 合計: {format_money(cart.subtotal, cart.currency)}", *([hold] if hold else [])]
    if not checkout_url:
        return render_text("\n".join([*lines, *tail]))
    checkout = [Button("Checkout 結帳", url=checkout_url)]
    whole = "\n".join([*lines, *tail])
    if len(whole) <= MAX_BUTTON_TEXT:
        return [render_buttons(whole, checkout)]
    # A long cart: its lines as text, then the total and the time left with the button.
    return [*render_text("\n".join(lines)), render_buttons("\n".join(tail), checkout)]
