"""Statuses and outcomes a merchant reads, in words of their language (pure: msgids and a lookup, no I/O).

Each table maps a stored value (an enum's value) to an English msgid; `bot.replies.i18n` translates it. A
value with no words yet is shown as it is rather than hidden.
"""

from __future__ import annotations

from bot.replies.i18n import gettext

# What became of a comment (`comment_log.outcome`, carts.comment_orders.CommentOutcome).
COMMENT_OUTCOMES = {
    "received": "received, not decided yet",
    "ignored": "not an order (ignored)",
    "no_campaign": "no campaign sells on this post",
    "not_an_order": "not an order",
    "pending": "waiting for stock",
    "added": "added to the cart",
    "waitlisted": "on the waitlist (sold out)",
    "campaign_closed": "the campaign was closed",
    "needs_variant": "needs a size or colour",
    "over_limit": "over the limit per shopper",
    "unknown_code": "unknown product code",
    "ambiguous": "unclear which product",
}


def comment_outcome(locale: str, outcome: str) -> str:
    """A comment's outcome in words ("added to the cart", "已加入購物車")."""
    msgid = COMMENT_OUTCOMES.get(outcome)
    return gettext(locale, msgid) if msgid else outcome
