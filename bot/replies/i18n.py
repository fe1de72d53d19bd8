"""Texts in the shopper's or merchant's language: English (the msgids) and Traditional Chinese, through Babel.

Catalogs are the `.po` files under `bot/locale/<locale>/LC_MESSAGES/messages.po`, read once with
`babel.messages.pofile` on first use (no compile step, so a translator edits one text file). English needs no
catalog: a msgid is the English text. A message with parameters uses `str.format` names:
`gettext("zh_Hant", "Order {number} confirmed", number="PO-000001")`.

Which locale: the shopper's own when known (Messenger's profile, `?lang=` on a page), else the shop file's
`shop.language`, else English (`pick_locale`).
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po
from babel.support import Translations

DEFAULT_LOCALE = "en"
LOCALES = ("en", "zh_Hant")
LOCALE_NAMES = {"en": "English", "zh_Hant": "繁體中文"}
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
# What people and Meta write for Chinese in Hong Kong and Taiwan: all read Traditional Chinese here.
_ALIASES = {"zh": "zh_Hant", "zh_hk": "zh_Hant", "zh_tw": "zh_Hant", "zh_mo": "zh_Hant", "zh_hant": "zh_Hant"}


def normalize_locale(text: str | None) -> str | None:
    """`zh-HK`, `zh_TW`, `zh-Hant`, `en_US`... as one of `LOCALES`, or None when it is none of them."""
    if not text:
        return None
    key = text.strip().replace("-", "_").lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if key.startswith("zh_hant"):
        return "zh_Hant"
    if key == "en" or key.startswith("en_"):
        return "en"
    return None


def pick_locale(*candidates: str | None) -> str:
    """The first candidate that is a locale we have (the shopper's, then the shop's), else English."""
    for candidate in candidates:
        locale = normalize_locale(candidate)
        if locale is not None:
            return locale
    return DEFAULT_LOCALE


def _load(locale: str) -> Translations:
    """The catalog of `locale` (empty for English: the msgid is the text)."""
    catalog_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    result = Translations()
    if locale == DEFAULT_LOCALE or not catalog_path.is_file():
        return result
    with catalog_path.open("rb") as file:
        catalog = read_po(file, locale=locale)
    # Translations reads compiled catalogs only: fill its table from the .po's messages directly.
    for message in catalog:
        if message.id and message.string and not message.fuzzy:
            result._catalog[message.id] = message.string  # Babel's own table: it has no public setter
    return result


# Read at import, before any event loop runs: a request never waits on the disk for a catalog.
_TRANSLATIONS = {locale: _load(locale) for locale in LOCALES}


def translations(locale: str) -> Translations:
    """The catalog of `locale` (empty for English: the msgid is the text)."""
    return _TRANSLATIONS.get(locale) or _TRANSLATIONS[DEFAULT_LOCALE]


def gettext(locale: str, msgid: str, **params: object) -> str:
    """`msgid` in `locale` (English when untranslated), its `{names}` filled from `params`."""
    text = translations(pick_locale(locale)).ugettext(msgid)
    return text.format(**params) if params else text
