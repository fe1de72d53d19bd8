"""The Babel catalog helper: locales picked, texts translated, every catalog entry keeps its parameters."""

from __future__ import annotations

import re
import string

import pytest
from babel.messages.pofile import read_po

from bot.replies.i18n import LOCALE_DIR, LOCALES, gettext, normalize_locale, pick_locale


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("zh-HK", "zh_Hant"),
        ("zh_TW", "zh_Hant"),
        ("zh-Hant-HK", "zh_Hant"),
        ("en_US", "en"),
        ("fr_FR", None),
        ("", None),
    ],
)
def test_locales_people_write_are_ours(given: str, expected: str | None) -> None:
    assert normalize_locale(given) == expected


def test_the_first_known_locale_wins_else_english() -> None:
    assert pick_locale(None, "fr", "zh_HK") == "zh_Hant"
    assert pick_locale("en_GB", "zh_Hant") == "en"
    assert pick_locale(None, None) == "en"


def test_texts_are_translated_with_their_parameters() -> None:
    assert gettext("zh_Hant", "Order {number} confirmed", number="PO-000007") == "訂單 PO-000007 已確認"
    assert gettext("en", "Order {number} confirmed", number="PO-000007") == "Order PO-000007 confirmed"
    assert gettext("zh_Hant", "A text nobody translated") == "A text nobody translated"


@pytest.mark.parametrize("locale", [locale for locale in LOCALES if locale != "en"])
def test_every_translation_keeps_the_msgids_parameters(locale: str) -> None:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as file:
        catalog = read_po(file, locale=locale)
    names = re.compile(r"\{(\w+)\}")
    checked = 0
    for message in catalog:
        if not message.id:
            continue
        assert message.string, f"{message.id!r} has no translation"
        assert set(names.findall(message.string)) == set(names.findall(message.id)), message.id
        list(string.Formatter().parse(message.string))  # braces balanced: no format error at run time
        checked += 1
    assert checked > 0
