"""Texts in the shopper's or merchant's language: English (the msgids) and Traditional Chinese, through Babel.

Catalogs are the `.po` files under `bot/locale/<locale>/LC_MESSAGES/messages.po`, read once with
`babel.messages.pofile` on first use (no compile step, so a translator edits one text file). English needs no
catalog: a msgid is the English text. A message with parameters uses `str.format` names:
`gettext("zh_Hant", "Order {number} confirmed", number="PO-000001")`.

Which locale: the shopper's own when known, else the shop file's `shop.language`, else English
(`pick_locale`). A shopper's own (`shopper_locale`, kept on their conversation) is, strongest first:
1. their choice: the "中文 / English" quick reply or typing `English` / `中文`;
2. Meta's `locale` for them, when the User Profile API gives it (it needs a permission Meta rarely grants);
3. the script they write in: a message with Chinese characters is taken to mean they read Chinese. Latin
   letters say nothing (everyone types codes like `A+1` or `cart`), so an English reader in a Chinese
   shop reads Chinese until they choose English;
4. the shop's language.
On a page, `?lang=` wins over all of them.

Money and numbers go through Babel's formats for the locale (`money`, `number`): pure functions of the
CLDR data, no I/O.
"""

from __future__ import annotations

from datetime import tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum
from pathlib import Path

from babel import Locale
from babel.dates import get_timezone_name
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
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


class LocaleSource(IntEnum):
    """Where a shopper's locale came from; a higher one is never replaced by a lower one."""

    SCRIPT = 1  # the script of their own messages
    META = 2  # Meta's `locale` for them
    CHOSEN = 3  # their own choice


def has_han(text: str | None) -> bool:
    """Whether `text` has Chinese characters (CJK Unified Ideographs, Extension A, compatibility block)."""
    return bool(text) and any(
        "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf" or "\uf900" <= char <= "\ufaff"
        for char in text or ""
    )


def script_locale(text: str | None) -> str | None:
    """`zh_Hant` for text with Chinese characters; None otherwise (Latin letters are not evidence: see above)."""
    return "zh_Hant" if has_han(text) else None


def shopper_locale(
    stored: str | None, stored_source: int | None, found: str | None, source: LocaleSource
) -> tuple[str, int] | None:
    """The locale to keep after `found` (from `source`) is seen, or None to keep what is stored.

    A stronger or equal source replaces the stored one (a shopper may change their mind); a weaker never does.
    """
    locale = normalize_locale(found)
    if locale is None:
        return None
    if stored is not None and (stored_source or 0) > source:
        return None
    if stored == locale and stored_source == source:
        return None
    return locale, int(source)


# Babel's regional locales for ours: Hong Kong's conventions write HK$ and NT$ both unambiguously. Parsed and
# their CLDR data read at import, like the catalogs: formatting then never touches the disk inside the loop.
_BABEL_LOCALES = {"en": Locale.parse("en_HK"), "zh_Hant": Locale.parse("zh_Hant_HK")}
for _locale in _BABEL_LOCALES.values():
    format_currency(Decimal(1), "HKD", locale=_locale)


_NO_CENTS = frozenset({"TWD", "JPY", "KRW"})


def _babel_locale(locale: str) -> Locale:
    return _BABEL_LOCALES[pick_locale(locale)]


def money(locale: str, amount: Decimal, currency: str) -> str:
    """`HK$1,280`, `HK$450.50`, `NT$390` in `locale`'s format; whole amounts without cents, as shops write."""
    # Half up, as a till rounds (Babel rounds half to even); TWD and JPY are written without cents.
    whole = currency in _NO_CENTS or amount == amount.to_integral_value()
    shown = amount.quantize(Decimal(1) if whole else Decimal("0.01"), rounding=ROUND_HALF_UP)
    pattern = "¤#,##0" if whole else "¤#,##0.00"
    return format_currency(shown, currency, pattern, locale=_babel_locale(locale), currency_digits=False)


def number(locale: str, value: int | Decimal) -> str:
    """A count or amount of points with the locale's grouping: `1,280`."""
    return format_decimal(value, locale=_babel_locale(locale))


def zone_name(locale: str, zone: tzinfo | str) -> str:
    """A time zone's name in `locale` ("Hong Kong Time", "香港時間"), not its tz database key ("Asia/Hong_Kong");
    UTC stays "UTC" (Babel calls it an unknown region), and a zone Babel does not know keeps its key."""
    key = getattr(zone, "key", None) or str(zone)
    if key in ("UTC", "Etc/UTC", "GMT"):
        return "UTC"
    try:
        return get_timezone_name(key, width="long", locale=_babel_locale(locale))
    except LookupError:
        return key
