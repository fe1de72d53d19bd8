"""What the shopper reads after commenting, and in Messenger about their cart. Pure: no I/O.

A private reply is one message (Meta allows no second one until the shopper answers), so it is a button
template: what the comments did, the cart's size and total, a "View cart" button; a missing size or
colour comes as quick replies whose payload carries the choice made so far (`v1:PICK:...`, built and
read by `bot.replies.payload_codec`), so the next tap can ask for the next option or make the claim, without
server-side state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from bot.replies.coupons import voucher_news
from bot.replies.i18n import gettext, has_han, money, number, pick_locale
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
from carts.core import CartInfo
from carts.coupon_rules import VoucherNews
from carts.stock_rules import ClaimChange

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
    # For ambiguous_product: (code, name) of the products it may be; for choose_product: of those on screen.
    candidates: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class CommentResult:
    comment_id: str
    items: tuple[ItemResult, ...]
    closed_text: str | None = None  # the campaign's reply to orders after it closed, in the shop's own words
    closed: bool = False  # the campaign had closed (its `closed_text`, else ours in the shopper's language)
    held_back: bool = False  # a blocked buyer's order: nothing held, the shopper is asked to write to the shop
    voucher: VoucherNews | None = None  # it said a first-N offer's keyword: what it got (bot.replies.coupons)


# Option names shops commonly give variants, as a shopper reads them in each language. A name the shop
# wrote in its own words that is not here is shown as written, in both languages.
_OPTION_LABELS = {
    "size": "size",
    "尺碼": "size",
    "尺寸": "size",
    "colour": "colour",
    "color": "colour",
    "顏色": "colour",
    "颜色": "colour",
    "style": "style",
    "款式": "style",
    "flavour": "flavour",
    "flavor": "flavour",
    "口味": "flavour",
    "option": "option",
}


def option_label(locale: str, option: str) -> str:
    """A variant option's name in `locale`.

    The shop file may name an option in both languages, `Colour / 顏色` (or with `|`): the shopper reads the part
    in their language. A name in one language that shops commonly use (`colour`, `顏色`, `size`...) is
    translated; any other name is shown as the shop wrote it."""
    parts = [part.strip() for part in re.split(r"[/|]", option) if part.strip()]
    if len(parts) > 1:
        chinese = pick_locale(locale) == "zh_Hant"
        mine = [part for part in parts if has_han(part) == chinese]
        if mine:
            return mine[0]
    known = _OPTION_LABELS.get(option.strip().lower())
    return gettext(locale, known) if known else option


def _item_line(locale: str, item: ItemResult, asked_below: bool = True) -> str:
    """One item's line; `asked_below`: its choice is the one the quick replies offer (else it is asked next)."""
    label = f"{item.code} {item.name}".strip()
    variant = f" ({item.variant_text})" if item.variant_text else ""
    qty = number(locale, item.qty)
    if item.outcome == CommentOutcome.ADDED:
        return gettext(locale, "✅ {label}{variant} ×{qty} added", label=label, variant=variant, qty=qty)
    if item.outcome == CommentOutcome.WAITLISTED:
        return gettext(
            locale,
            "⏳ {label}{variant} ×{qty}: sold out, you are on the waitlist",
            label=label,
            variant=variant,
            qty=qty,
        )
    if item.outcome == ItemOutcome.NEEDS_VARIANT:
        option = option_label(locale, item.missing[0][0] if item.missing else "option")
        if asked_below or not item.missing or not item.missing[0][1]:
            return gettext(locale, "❓ {label} ×{qty}: which {option}? Tap below", label=label, qty=qty, option=option)
        example = f"{item.code} {item.missing[0][1][0]}"
        return gettext(
            locale,
            "❓ {label} ×{qty}: which {option}? Asked next, or type “{example}”",
            label=label,
            qty=qty,
            option=option,
            example=example,
        )
    if item.outcome == ItemOutcome.OVER_LIMIT:
        return gettext(
            locale,
            "⚠️ {label} ×{qty} not added: the limit is {limit} per person",
            label=label,
            qty=qty,
            limit=item.limit,
        )
    if item.outcome == ItemOutcome.UNKNOWN_CODE:
        return gettext(locale, "❔ {code} is not on sale in this post", code=item.code)
    if item.outcome == ItemOutcome.CHOOSE_PRODUCT and item.candidates:
        choices = " / ".join(f"{code} {name}".strip() for code, name in item.candidates)
        example = f"{item.candidates[-1][0]}+{item.qty}"
        return gettext(
            locale,
            "❓ ×{qty}: which one did you mean, {choices}? Tap below, or comment the code, e.g. {example}",
            qty=qty,
            choices=choices,
            example=example,
        )
    if item.outcome == ItemOutcome.AMBIGUOUS:
        return gettext(locale, "❔ +{qty}: which item? Please comment the code too, e.g. A+{qty}", qty=item.qty)
    if item.outcome == ItemOutcome.AMBIGUOUS_PRODUCT:
        codes = " / ".join(code for code, _ in item.candidates)
        if not item.qty:  # a removal: explained, never guessed
            return gettext(
                locale, "❔ “{words}” could be {codes}: please comment the code", words=item.code, codes=codes
            )
        if asked_below:
            return gettext(locale, "❔ “{words}” ×{qty}: which one do you mean? Tap below", words=item.code, qty=qty)
        return gettext(
            locale,
            "❔ “{words}” ×{qty}: which one? Please comment the code ({codes})",
            words=item.code,
            qty=qty,
            codes=codes,
        )
    if item.outcome == ItemOutcome.UNREADABLE_QUANTITY:
        if asked_below:
            return gettext(locale, "❔ {label}: how many would you like? Tap below", label=label)
        return gettext(locale, "❔ {label}: how many? Please comment e.g. {code}+1", label=label, code=item.code)
    return f"{label} ×{qty}"


def cart_summary(locale: str, cart: CartInfo) -> str:
    if cart.is_empty:
        return gettext(locale, "🛒 Your cart is empty")
    msgid = "🛒 Cart: {units} item · {total}" if cart.units == 1 else "🛒 Cart: {units} items · {total}"
    return gettext(locale, msgid, units=number(locale, cart.units), total=money(locale, cart.subtotal, cart.currency))


_HOLD_NEWS = {
    # a size or colour picked in the chat, decided by the allocator
    ClaimChange.HELD: "✅ {label} ×{qty} added",
    ClaimChange.WAITLISTED: "⏳ {label} ×{qty}: sold out, you are on the waitlist",
    ClaimChange.PROMOTED: "🎉 Good news! {label} ×{qty} is now in your cart, from the waitlist.",
    ClaimChange.EXPIRED: "⌛ Your hold on {label} ×{qty} has run out and it was released.",
    ClaimChange.REMINDER: "⏰ {label} ×{qty} is held for you for a few more minutes.",
}


def hold_news(locale: str, change: str, label: str, qty: int, cart: CartInfo) -> str:
    """News of a held, waitlisted, promoted, expired or expiring claim, with the cart's size and total."""
    text = gettext(locale, _HOLD_NEWS[ClaimChange(change)], label=label, qty=number(locale, qty))
    return f"{text}\n\n{cart_summary(locale, cart)}"


def expired_choice(locale: str) -> str:
    """To a shopper who tapped an old, forged or no longer valid size or colour."""
    return gettext(locale, "Sorry, that choice is no longer available. Please comment the code again.")


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
    locale: str,
    comment_id: str,
    code: str,
    name: str,
    qty: int,
    chosen: Mapping[str, str],
    option: str,
    values: Sequence[str],
) -> list[Message]:
    """The question for an item's next option in the chat, with its values as quick replies."""
    label = f"{code} {name}".strip()
    return render_text(
        gettext(
            locale,
            "❓ {label} ×{qty}: which {option}?",
            label=label,
            qty=number(locale, qty),
            option=option_label(locale, option),
        ),
        option_quick_replies(comment_id, code, chosen, option, values),
    )


def render_next_option(
    locale: str, comment_id: str, code: str, name: str, chosen: Mapping[str, str], option: str, values: Sequence[str]
) -> list[Message]:
    """After one option is picked, the question for the next one of the same item."""
    label = f"{code} {name}".strip()
    return render_text(
        gettext(locale, "{label}: which {option}?", label=label, option=option_label(locale, option)),
        option_quick_replies(comment_id, code, chosen, option, values),
    )


def _first_choice(results: Sequence[CommentResult]) -> tuple[str, ItemResult] | None:
    """The first item that still needs a choice (an option, which product, how many): the quick replies ask
    it, the chat asks the other options next."""
    for result in results:
        for item in result.items:
            if item.outcome == ItemOutcome.NEEDS_VARIANT and item.missing:
                return result.comment_id, item
            if item.outcome == ItemOutcome.AMBIGUOUS_PRODUCT and item.candidates and item.qty:
                return result.comment_id, item
            if item.outcome == ItemOutcome.UNREADABLE_QUANTITY:
                return result.comment_id, item
    return None


# The quantities offered when a comment's quantity could not be read (`A幾件`).
QUANTITY_CHOICES = (1, 2, 3)


def order_payload(comment_id: str, code: str, qty: int) -> str:
    """The payload of a tap that says which product, or how many, an asked item of a comment is."""
    return encode_payload(PayloadAction.ORDER, comment_id, code, str(qty))


@dataclass(frozen=True)
class OrderChoice:
    comment_id: str
    code: str
    qty: int


def parse_order_payload(payload: str) -> OrderChoice | None:
    """The product or quantity a quick reply carries, or None if it is not a valid one."""
    decoded = decode_payload(payload)
    if not isinstance(decoded, Payload) or decoded.action is not PayloadAction.ORDER:
        return None
    comment_id, code, qty = decoded.args
    if not qty.isascii() or not qty.isdigit() or not 1 <= int(qty) <= 999:
        return None
    return OrderChoice(comment_id, code, int(qty))


def point_payload(comment_id: str, code: str) -> str:
    return encode_payload(PayloadAction.POINT, comment_id, code)


def parse_point_payload(payload: str) -> tuple[str, str] | None:
    """(comment id, order code) of a tapped product choice, or None if it is not a (valid, current) one."""
    decoded = decode_payload(payload)
    if not isinstance(decoded, Payload) or decoded.action is not PayloadAction.POINT:
        return None
    comment_id, code = decoded.args
    return comment_id, code


def product_quick_replies(comment_id: str, candidates: Sequence[tuple[str, str]]) -> list[QuickReply]:
    """One quick reply per product that was on screen, newest last, each naming it ("B Linen shirt")."""
    return [
        QuickReply(f"{code} {name}".strip()[:MAX_QUICK_REPLY_TITLE], point_payload(comment_id, code))
        for code, name in list(candidates)[:MAX_QUICK_REPLIES]
    ]


def _product_question(results: Sequence[CommentResult]) -> list[QuickReply]:
    """The quick replies of the first comment that asks which product on screen it meant, if any."""
    for result in results:
        for item in result.items:
            if item.outcome == ItemOutcome.CHOOSE_PRODUCT and item.candidates:
                return product_quick_replies(result.comment_id, item.candidates)
    return []


def already_chosen(locale: str, code: str) -> str:
    """To a shopper who taps a product again for a comment whose product they already chose."""
    return gettext(locale, "You already chose {code} for that comment. Type “cart” to see your cart.", code=code)


def _quick_replies(first: tuple[str, ItemResult] | None) -> list[QuickReply]:
    if first is None:
        return []
    comment_id, item = first
    if item.outcome == ItemOutcome.AMBIGUOUS_PRODUCT:
        return [
            QuickReply(f"{code} {name}".strip()[:MAX_QUICK_REPLY_TITLE], order_payload(comment_id, code, item.qty))
            for code, name in list(item.candidates)[:MAX_QUICK_REPLIES]
        ]
    if item.outcome == ItemOutcome.UNREADABLE_QUANTITY:
        return [QuickReply(str(n), order_payload(comment_id, item.code, n)) for n in QUANTITY_CHOICES]
    option, values = item.missing[0]
    return option_quick_replies(comment_id, item.code, item.chosen, option, values)


def hold_time_left(locale: str, expires_at: datetime | None, now: datetime, zone: tzinfo | None = None) -> str | None:
    """How long the cart stays held, as the shopper reads it ("23 min left"); None once it ran out.

    `zone`: the shop's time zone, for the clock time it ends at; without it only the time left is said.
    """
    if expires_at is None or expires_at <= now:
        return None
    minutes = max(1, math.ceil((expires_at - now).total_seconds() / 60))  # "0 min left" would be no news
    hours, rest = divmod(minutes, 60)
    if not hours:
        left = gettext(locale, "{minutes} min", minutes=minutes)
    elif rest:
        left = gettext(locale, "{hours} h {minutes} min", hours=hours, minutes=rest)
    else:
        left = gettext(locale, "{hours} h", hours=hours)
    if zone is None:
        return gettext(locale, "⏳ Held for you: {left} left", left=left)
    until = f"{expires_at.astimezone(zone):%H:%M}"
    return gettext(locale, "⏳ Held for you: {left} left (until {until})", left=left, until=until)


def cart_buttons(locale: str, cart: CartInfo, checkout_url: str | None) -> list[Button]:
    checkout = gettext(locale, "Checkout")
    buttons = [Button(checkout, url=checkout_url)] if checkout_url and not cart.is_empty else []
    return [*buttons, Button(gettext(locale, "View cart"), payload=VIEW_CART_PAYLOAD)]


def render_checkout(locale: str, cart: CartInfo, checkout_url: str | None) -> list[Message]:
    """The answer to `checkout` / `結帳`: the total and the button to the checkout page."""
    if cart.is_empty or not checkout_url:
        return render_cart(locale, cart)
    text = f"{cart_summary(locale, cart)}\n{gettext(locale, 'Ready to check out?')}"
    return [render_buttons(text, cart_buttons(locale, cart, checkout_url))]


def first_name(name: str | None) -> str | None:
    """What to call a shopper: the first word of a Latin name ("Amy" of "Amy Chan"), a Chinese name whole."""
    name = (name or "").strip()
    if not name:
        return None
    return name if has_han(name) else name.split()[0]


def greeting(locale: str, name: str | None) -> str:
    """ "Hi Amy!", or "Hi!" when we do not know their name."""
    called = first_name(name)
    return gettext(locale, "Hi {name}!", name=called) if called else gettext(locale, "Hi!")


def render_comment_reply(
    locale: str,
    name: str | None,
    results: Sequence[CommentResult],
    cart: CartInfo,
    checkout_url: str | None = None,
    zone: tzinfo | None = None,
) -> Message:
    """The one private reply for one or more comments of a shopper (`zone`: the shop's, for a voucher's end)."""
    hello = greeting(locale, name)
    if results and all(r.held_back for r in results):  # a blocked buyer: no cart, no checkout, a kind word
        return render_text("\n".join([hello, held_back_reply(locale)]))[0]
    first = _first_choice(results)
    lines = [
        line
        for r in results
        for line in (
            [r.closed_text or gettext(locale, "This sale has ended.")]
            if r.closed or r.closed_text
            else [_item_line(locale, i, first is None or first[1] is i) for i in r.items]
        )
    ]
    # A keyword comment's voucher (or "all taken"): said once, however many comments said the keyword.
    vouchers = [voucher_news(locale, r.voucher, cart.currency, zone) for r in results if r.voucher is not None]
    lines += list(dict.fromkeys(vouchers))
    summary = cart_summary(locale, cart)
    text = "\n".join([hello, *lines, "", summary])
    if len(text) > MAX_BUTTON_TEXT:
        # Keep the greeting and the cart total; say how many lines did not fit (View cart shows all).
        shown: list[str] = []
        for line in lines:
            more = gettext(locale, "…and {n} more", n=len(lines))
            candidate = "\n".join([hello, *shown, line, more, "", summary])
            if len(candidate) > MAX_BUTTON_TEXT:
                break
            shown.append(line)
        more = gettext(locale, "…and {n} more", n=len(lines) - len(shown))
        text = "\n".join([hello, *shown, more, "", summary])
    message = render_buttons(text, cart_buttons(locale, cart, checkout_url))
    quick = _quick_replies(first) or _product_question(results)
    if quick:
        message["quick_replies"] = [q.to_meta() for q in quick]
    return message


def held_back_reply(locale: str) -> str:
    """A blocked buyer's answer to an order: polite, never "blocked"; the shop sorts it out in the chat."""
    return gettext(
        locale,
        "Thank you for your order! Please send us a message here first: we'll confirm it with you "
        "before we set anything aside.",
    )


def render_cart(locale: str, cart: CartInfo, checkout_url: str | None = None, hold: str | None = None) -> list[Message]:
    """The whole cart, for `cart` / `購物車` or the View cart button: its lines, the total, the hold's time
    left (`hold_time_left`) and the Checkout button; as text split in parts when it is long."""
    if cart.is_empty:
        return render_text(
            gettext(locale, "🛒 Your cart is empty. Comment a code like A+1 under our posts to add items.")
        )
    lines = [gettext(locale, "🛒 Your cart")]
    for line in cart.lines:
        variant = f" ({line.variant_text})" if line.variant_text else ""
        price = money(locale, line.total, cart.currency)
        lines.append(f"• {line.code} {line.name}{variant} ×{number(locale, line.qty)}  {price}")
    total = gettext(locale, "Total: {amount}", amount=money(locale, cart.subtotal, cart.currency))
    tail = [total, *([hold] if hold else [])]
    if not checkout_url:
        return render_text("\n".join([*lines, *tail]))
    checkout = [Button(gettext(locale, "Checkout"), url=checkout_url)]
    whole = "\n".join([*lines, *tail])
    if len(whole) <= MAX_BUTTON_TEXT:
        return [render_buttons(whole, checkout)]
    # A long cart: its lines as text, then the total and the time left with the button.
    return [*render_text("\n".join(lines)), render_buttons("\n".join(tail), checkout)]
