"""Every status and outcome a merchant reads, in words in their language: order statuses and history steps,
payment methods, what became of a comment and of each of its items, stock claims, the private reply's
and an outgoing message's state, and why Meta refused a message. Pure: no I/O.

The one mapping the inbox's pages use (`{{ order_status(o.status) }}` and kin, bot.web.rendering), so a
raw value like `needs_variant` never reaches a page. An unknown value (a newer kind an older page does
not know) is shown as words, underscores turned to spaces, never hidden.

`RAW_WORDS` lists every raw value with a wording: the page walk fails when one is left on a page.
"""

from __future__ import annotations

from bot.replies.i18n import gettext
from bot.replies.payments import method_label, status_label
from carts.comment_orders import CommentOutcome, ItemOutcome
from carts.order_rules import OrderStatus
from carts.payment_rules import PaymentKind
from carts.stock_rules import ClaimStatus

# What became of a comment (comment_log.outcome), as the live board's trail says it.
_COMMENT_OUTCOMES = {
    CommentOutcome.RECEIVED.value: "Received, not handled yet",
    CommentOutcome.IGNORED.value: "Ignored",
    CommentOutcome.NO_CAMPAIGN.value: "No campaign sells on this post",
    CommentOutcome.NOT_AN_ORDER.value: "Not an order",
    CommentOutcome.PENDING.value: "Being handled",
    CommentOutcome.ADDED.value: "Added to the cart",
    CommentOutcome.WAITLISTED.value: "On the waitlist",
    CommentOutcome.CAMPAIGN_CLOSED.value: "Campaign closed",
    CommentOutcome.OFFER.value: "Offer keyword: voucher answered",
    CommentOutcome.NEEDS_VARIANT.value: "Waiting for an option (size, colour…)",
    CommentOutcome.OVER_LIMIT.value: "Over the limit per shopper",
    CommentOutcome.UNKNOWN_CODE.value: "Code not on sale here",
    CommentOutcome.AMBIGUOUS.value: "Unclear which product",
    CommentOutcome.AMBIGUOUS_PRODUCT.value: "Asked which product",
    CommentOutcome.UNREADABLE_QUANTITY.value: "Asked how many",
    CommentOutcome.CHOOSE_PRODUCT.value: "Asked which product on screen",
    CommentOutcome.PRODUCT_CHOSEN.value: "Product chosen in the chat",
    CommentOutcome.EDITED.value: "Edited: cart changed",
    CommentOutcome.UNCHANGED.value: "Edited: nothing changed",
    CommentOutcome.RELEASED.value: "Removed: stock given back",
    CommentOutcome.NOTHING_TO_RELEASE.value: "Removed: nothing was held",
    CommentOutcome.BLOCKED.value: "Blocked buyer: nothing held, asked to write to the shop",
}
# What became of one item of a comment (comment_log.detail's items).
_ITEM_OUTCOMES = {
    ItemOutcome.CLAIMED.value: "Stock asked for",
    ItemOutcome.NEEDS_VARIANT.value: "Waiting for an option (size, colour…)",
    ItemOutcome.OVER_LIMIT.value: "Over the limit per shopper",
    ItemOutcome.UNKNOWN_CODE.value: "Code not on sale here",
    ItemOutcome.AMBIGUOUS.value: "Unclear which product",
    ItemOutcome.AMBIGUOUS_PRODUCT.value: "Asked which product",
    ItemOutcome.UNREADABLE_QUANTITY.value: "Asked how many",
    ItemOutcome.CHOOSE_PRODUCT.value: "Asked which product on screen",
}
# A stock claim (stock_claim.status).
_CLAIM_STATUSES = {
    ClaimStatus.PENDING.value: "Being handled",
    ClaimStatus.HELD.value: "Held",
    ClaimStatus.WAITLISTED.value: "On the waitlist",
    ClaimStatus.SOLD.value: "Sold",
    ClaimStatus.EXPIRED.value: "Hold ran out",
    ClaimStatus.RELEASED.value: "Given back",
    ClaimStatus.CANCELLED.value: "Cancelled",
}
# The private reply to a comment (comment_log.reply_status) and an outgoing message (outbox.status).
_SEND_STATUSES = {
    "due": "To be written",
    "queued": "Waiting to be sent",
    "pending": "Waiting to be sent",
    "sending": "Sending",
    "sent": "Sent",
    "failed": "Not delivered",
    "refused": "Not sent",
}
# Why a message did not get through: Meta's error as bot.outbound.graph classifies it (GraphErrorClass),
# and the rules' own refusals before sending (bot.outbound.messaging_rules).
_SEND_REASONS = {
    "retry_later": "Meta had a passing fault",
    "throttled": "Meta's sending limit was reached for a while",
    "page_restricted": "Meta stopped the Page from sending",
    "already_sent": "The comment already had its private reply",
    "outside_window": "Outside the 24-hour window: the shopper has not written in the last 24 hours",
    "no_window": "The shopper has never written to the Page",
    "outside_human_window": "More than 7 days since the shopper last wrote",
    "retired_tag": "Meta no longer allows this kind of message",
    "bot_cannot_use_tag": "Only a person may send this kind of message",
    "private_reply_expired": "Too late to answer the comment privately (7 days)",
    "private_reply_used": "The comment already had its private reply",
    "private_reply_live_ended": "The live ended: its comments can no longer be answered privately",
    "no_human_agent": "Outside the 24-hour window, and the app lacks Meta's Human Agent permission",
    "unavailable": "The shopper cannot receive messages from the Page",
    "bad_token": "The Page's access token is invalid or expired",
    "permission": "The app lacks a permission from Meta",
    "invalid_request": "Meta refused the message as not valid",
    "paused": "Sending is paused for this Page",
    "no_channel": "No way to reach this shopper after the window",
}
# The steps of an order's history (order_event.kind), as the merchant's order page lists them.
_ORDER_STEPS = {
    "placed": "Order placed",
    "paid": "Paid",
    "packed": "Packed",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "cancelled": "Cancelled",
    "expired": "Expired unpaid",
    "returned": "Returned",
    "reminded": "Reminded to pay",
    "merged": "Merged into another order",
    "merged_in": "Another order merged into this one",
}
# A comment's verb when it is not a new one (comment_log.verb).
_VERBS = {"edited": "Edited", "remove": "Removed"}
# A line of a member's points ledger (crm_bridge's point_ledger.kind).
_POINTS_KINDS = {
    "earn": "Earned",
    "redeem": "Used",
    "expire": "Expired",
    "adjust": "Adjusted",
    "bonus": "Tier bonus",
    "birthday": "Birthday",
    "referral": "Referral",
}


def _words(value: str) -> str:
    return value.replace("_", " ")


def order_status(locale: str, status: str) -> str:
    """An order's status: "Paid", "已付款"."""
    return status_label(locale, status)


def payment_method(locale: str, kind: str) -> str:
    """A payment method: "Bank transfer", "銀行轉帳"."""
    return method_label(locale, kind)


def comment_outcome(locale: str, outcome: str) -> str:
    """What became of a comment: "Waiting for an option (size, colour…)"."""
    return gettext(locale, _COMMENT_OUTCOMES[outcome]) if outcome in _COMMENT_OUTCOMES else _words(outcome)


def item_outcome(locale: str, outcome: str) -> str:
    """What became of one item of a comment."""
    return gettext(locale, _ITEM_OUTCOMES[outcome]) if outcome in _ITEM_OUTCOMES else _words(outcome)


def claim_status(locale: str, status: str) -> str:
    """A stock claim: "Held", "On the waitlist"."""
    return gettext(locale, _CLAIM_STATUSES[status]) if status in _CLAIM_STATUSES else _words(status)


def send_status(locale: str, status: str) -> str:
    """A private reply's or outgoing message's state: "Sent", "Not delivered"."""
    return gettext(locale, _SEND_STATUSES[status]) if status in _SEND_STATUSES else _words(status)


def send_reason(locale: str, reason: str) -> str:
    """Why a message did not get through, from Meta's error class or the rules' refusal."""
    return gettext(locale, _SEND_REASONS[reason]) if reason in _SEND_REASONS else _words(reason)


def order_step(locale: str, kind: str) -> str:
    """A step of an order's history: "Order placed"."""
    return gettext(locale, _ORDER_STEPS[kind]) if kind in _ORDER_STEPS else _words(kind)


def comment_verb(locale: str, verb: str) -> str:
    """A comment edited or removed after it was first read."""
    return gettext(locale, _VERBS[verb]) if verb in _VERBS else _words(verb)


def points_kind(locale: str, kind: str) -> str:
    """A line of a member's points: "Earned", "Tier bonus"."""
    return gettext(locale, _POINTS_KINDS[kind]) if kind in _POINTS_KINDS else _words(kind)


# Every raw value with a wording above, for the test that no page shows one raw: those a person could
# not mistake for a word (an underscore in it).
RAW_WORDS = frozenset(
    value
    for value in (
        *_COMMENT_OUTCOMES,
        *_ITEM_OUTCOMES,
        *_CLAIM_STATUSES,
        *_SEND_STATUSES,
        *_SEND_REASONS,
        *_ORDER_STEPS,
        *(s.value for s in OrderStatus),
        *(k.value for k in PaymentKind),
    )
    if "_" in value
)
