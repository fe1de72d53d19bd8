"""The Page's Messenger profile as Meta's Messenger Profile API takes it: Get Started, the greeting, ice
breakers and the persistent menu, built from the shop file's `messenger_profile:` section or PlusOne's
defaults (English and Chinese). Pure.

Meta's locales (`default`, `en_US`, `zh_TW`, `zh_HK`) are read as ours (en, zh_Hant) for the texts PlusOne
writes; `default` speaks the shop's language. The menu's own items are postbacks the bot answers
(bot.replies.payload_codec): the cart, its checkout link, the member card, a person.
"""

from __future__ import annotations

from typing import Any

from bot.replies.i18n import gettext, pick_locale
from bot.replies.payload_codec import PayloadAction, encode_payload
from config.messenger_profile_file import MenuItem, MessengerProfileConfig

__all__ = ["DEFAULT_LOCALES", "MANAGED_FIELDS", "build_profile", "profile_changes"]

# `default` first (Meta needs it), then the locales PlusOne writes its own texts for.
DEFAULT_LOCALES = ("default", "en_US", "zh_TW", "zh_HK")
MANAGED_FIELDS = ("get_started", "greeting", "ice_breakers", "persistent_menu")

GREETING = "Hi {{user_first_name}}! Comment a product code under our posts to order, or write to us here."
MENU_TITLES = {
    "cart": "Cart",
    "checkout": "Checkout",
    "points": "My points",
    "person": "Talk to a person",
}
MENU_PAYLOADS = {
    "cart": encode_payload(PayloadAction.CART),
    "checkout": encode_payload(PayloadAction.CHECKOUT),
    "points": encode_payload(PayloadAction.POINTS),
    "person": encode_payload(PayloadAction.AGENT),
}
DEFAULT_MENU = ("cart", "checkout", "points", "person", "language")
# The language switch offers the other language, written in it: a menu in English offers 中文, and back.
_OTHER_LANGUAGE = {"en": ("zh_Hant", "中文"), "zh_Hant": ("en", "English")}


def _ours(meta_locale: str, shop_locale: str) -> str:
    """Our locale for one of Meta's: `default` is the shop's language."""
    return pick_locale(shop_locale if meta_locale == "default" else meta_locale, shop_locale)


def _menu_item(item: MenuItem, locale: str) -> dict[str, Any]:
    if item.action == "language":
        other, title = _OTHER_LANGUAGE[locale]
        return {"type": "postback", "title": title, "payload": encode_payload(PayloadAction.LANGUAGE, other)}
    if item.action is not None:
        title = gettext(locale, MENU_TITLES[item.action])
        return {"type": "postback", "title": title, "payload": MENU_PAYLOADS[item.action]}
    if item.url is not None:
        return {"type": "web_url", "title": item.title, "url": item.url}
    return {"type": "postback", "title": item.title, "payload": item.payload}


def build_profile(config: MessengerProfileConfig | None, shop_locale: str = "en") -> dict[str, Any]:
    """The profile fields to set, each as Meta's POST takes it; a part the shop file leaves out gets the default
    (no ice breakers by default: they would take the Get Started button's place, and m.me referrals with it)."""
    config = config or MessengerProfileConfig()
    if config.greeting is not None:
        greeting = [{"locale": locale, "text": text} for locale, text in config.greeting]
    else:
        greeting = [
            {"locale": locale, "text": gettext(_ours(locale, shop_locale), GREETING)} for locale in DEFAULT_LOCALES
        ]
    if config.persistent_menu is not None:
        menus = [(locale, items) for locale, items in config.persistent_menu]
    else:
        menus = [(locale, tuple(MenuItem(action=a) for a in DEFAULT_MENU)) for locale in DEFAULT_LOCALES]
    profile: dict[str, Any] = {
        "get_started": {"payload": config.get_started},
        "greeting": greeting,
        "persistent_menu": [
            {
                "locale": locale,
                "composer_input_disabled": False,
                "call_to_actions": [_menu_item(item, _ours(locale, shop_locale)) for item in items],
            }
            for locale, items in menus
        ],
    }
    if config.ice_breakers is not None:
        profile["ice_breakers"] = [
            {"locale": locale, "call_to_actions": [{"question": q.question, "payload": q.payload} for q in items]}
            for locale, items in config.ice_breakers
        ]
    return profile


def profile_changes(wanted: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The fields of `wanted` the Page does not have as wanted (compared as JSON values): what to POST."""
    return {name: value for name, value in wanted.items() if current.get(name) != value}
