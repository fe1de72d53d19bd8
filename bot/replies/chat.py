"""What the bot says in the chat when no shop text is set: welcome, fallback, a person coming, an old button,
the public note under a comment it could not answer privately, and the language switch. Pure: no I/O.

Each is an English msgid translated through `bot.replies.i18n` into the shopper's language. The language
switch is two quick replies (`中文`, `English`), each written in its own language so a shopper who reads
only one of them finds theirs; the choice is kept on the conversation and beats every other sign
(`bot.replies.i18n`'s rule).
"""

from __future__ import annotations

from bot.replies.i18n import LOCALE_NAMES, LOCALES, gettext, normalize_locale
from bot.replies.payload_codec import PayloadAction, encode_payload
from bot.replies.render import Message, QuickReply, render_text

WELCOME = "Hi! Comment a code like A+1 under our posts to order, or ask us anything here."
FALLBACK = "Thanks for your message! Our team will reply soon."
AGENT_REQUEST = "OK! A person from our team will reply here soon."
STALE_PAYLOAD = "Sorry, that button is no longer active. Please type your question, or comment the code again."
PUBLIC_FALLBACK = "We couldn't message you privately 📩 please send our Page a message in Messenger."
PUBLIC_FALLBACK_INSTAGRAM = "We couldn't message you privately 📩 please send us a Direct message on Instagram."
LANGUAGE_SET = "OK, I will write to you in English from now on."
LANGUAGE_ASK = "Which language would you like?"

# What a shopper types to choose (normalised: lower case, no spaces around); `language` alone asks.
LANGUAGE_WORDS = {
    "english": "en",
    "eng": "en",
    "英文": "en",
    "中文": "zh_Hant",
    "繁體中文": "zh_Hant",
    "繁体中文": "zh_Hant",
    "廣東話": "zh_Hant",
    "chinese": "zh_Hant",
}
LANGUAGE_ASK_WORDS = frozenset({"language", "languages", "lang", "語言", "语言"})


def language_quick_replies() -> list[QuickReply]:
    """`中文` and `English`, each in its own language, each setting the shopper's language when tapped."""
    return [
        QuickReply(
            LOCALE_NAMES[locale] if locale != "zh_Hant" else "中文", encode_payload(PayloadAction.LANGUAGE, locale)
        )
        for locale in reversed(LOCALES)
    ]


def welcome_text(locale: str, text: str | None = None) -> str:
    """The shop's own welcome `text` if it has one, else ours in `locale`."""
    return text or gettext(locale, WELCOME)


def welcome(locale: str, text: str | None = None) -> list[Message]:
    """Get Started's answer: the shop's own `text` if it has one, else ours; with the language switch."""
    return render_text(welcome_text(locale, text), language_quick_replies())


def fallback(locale: str, text: str | None = None) -> list[Message]:
    """When nothing else answered: the shop's own `text` if it has one, else ours; with the language switch."""
    return render_text(text or gettext(locale, FALLBACK), language_quick_replies())


def agent_request(locale: str) -> list[Message]:
    return render_text(gettext(locale, AGENT_REQUEST))


def stale_payload(locale: str) -> list[Message]:
    return render_text(gettext(locale, STALE_PAYLOAD))


def public_fallback(locale: str, instagram: bool = False) -> str:
    """The comment under a shopper's comment whose private reply failed for good (no prices, nothing personal)."""
    return gettext(locale, PUBLIC_FALLBACK_INSTAGRAM if instagram else PUBLIC_FALLBACK)


def language_set(locale: str) -> list[Message]:
    """The confirmation of a shopper's choice, in the language chosen."""
    return render_text(gettext(locale, LANGUAGE_SET))


def language_ask(locale: str) -> list[Message]:
    return render_text(gettext(locale, LANGUAGE_ASK), language_quick_replies())


def chosen_language(text: str | None) -> str | None:
    """The locale a typed word chooses (`English`, `中文`), or None."""
    word = (text or "").strip().strip("!！.。?？").lower()
    return LANGUAGE_WORDS.get(word) or (normalize_locale(word) if word in {"en", "zh_hant", "zh-hant"} else None)
