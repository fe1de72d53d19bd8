"""A shopper's marketing consent in Messenger: the words that opt out (`STOP`, `取消訂閱`, `退訂`) and back in
(`START`, `訂閱`), and the answers, in the shopper's language (pure)."""

from __future__ import annotations

from bot.replies.i18n import gettext
from bot.replies.render import Message, render_text

# Typed alone (any case, full-width punctuation around it): the whole message is the word.
STOP_WORDS = frozenset({"stop", "unsubscribe", "取消訂閱", "退訂", "取消订阅", "退订"})
START_WORDS = frozenset({"start", "subscribe", "訂閱", "订阅", "重新訂閱"})

OPTED_OUT = (
    "Done: you will get no more offers or news from us here or by e-mail. Your orders' updates still come. "
    "Changed your mind? Send START (or 訂閱)."
)
ALREADY_OUT = "You already get no offers or news from us. Send START (or 訂閱) to get them again."
OPTED_IN = "Welcome back! You will get our offers and news again. Send STOP (or 取消訂閱) to stop them."
ALREADY_IN = "You already get our offers and news. Send STOP (or 取消訂閱) to stop them."


def consent_word(text: str | None) -> bool | None:
    """True: the shopper opts out; False: back in; None: not a consent word."""
    word = (text or "").strip().strip("!！.。").lower()
    if word in STOP_WORDS:
        return True
    if word in START_WORDS:
        return False
    return None


def consent_reply(locale: str, *, out: bool, changed: bool) -> list[Message]:
    if out:
        return render_text(gettext(locale, OPTED_OUT if changed else ALREADY_OUT))
    return render_text(gettext(locale, OPTED_IN if changed else ALREADY_IN))
