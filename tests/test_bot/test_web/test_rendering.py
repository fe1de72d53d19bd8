"""The pages' language and time (bot.web.rendering): `_()` reads the reader's catalog, `|when` and `|ago`
show a moment in the shop's time zone and the reader's words, and every text a template marks for
translation has its Traditional Chinese."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_file
from jinja2.ext import babel_extract

from bot.replies.i18n import translations
from bot.web.rendering import TEMPLATE_DIR, build_environment, template_sources

HONG_KONG = ZoneInfo("Asia/Hong_Kong")
NOW = datetime(2026, 12, 31, 10, 0, tzinfo=UTC)  # 18:00 on 31 December in Hong Kong


def render(text: str, **context: object) -> str:
    return build_environment({"page.html": text}).get_template("page.html").render(**context)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "Cart · Checkout"), ("zh_Hant", "購物車 · 結帳"), (None, "Cart · Checkout")],
)
def test_texts_are_in_the_readers_language(locale: str | None, expected: str) -> None:
    assert render('{{ _("Cart") }} · {{ _("Checkout") }}', locale=locale) == expected


def test_a_translated_text_still_escapes_what_it_is_given() -> None:
    page = render('{{ _("Hi %(name)s", name=shopper) }}', locale="en", shopper="<img src=x onerror=alert(1)>")
    assert page == "Hi &lt;img src=x onerror=alert(1)&gt;"


@pytest.mark.parametrize(
    ("moment", "locale", "expected"),
    [
        # The walkthrough's "31 Dec 16:00" for a Hong Kong shop: it is already New Year's Day there, next year.
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "en", "Jan 1, 2027 00:00"),
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "zh_Hant", "2027年1月1日 00:00"),
        (datetime(2026, 12, 3, 6, 5, tzinfo=UTC), "en", "Dec 3 14:05"),  # this year: no year
        (datetime(2026, 12, 3, 6, 5), "zh_Hant", "12月3日 14:05"),  # the database's naive UTC
        (None, "en", ""),
    ],
)
def test_a_moment_is_shown_in_the_shops_zone_with_the_year_only_when_not_this_year(
    moment: datetime | None, locale: str, expected: str
) -> None:
    assert render("{{ moment|when }}", moment=moment, locale=locale, tz=HONG_KONG, now=NOW) == expected


def test_without_a_zone_times_are_utc() -> None:
    assert render("{{ moment|when }}", moment=datetime(2026, 12, 3, 6, 5, tzinfo=UTC), now=NOW) == "Dec 3 06:05"


@pytest.mark.parametrize(
    ("moment", "locale", "expected"),
    [
        (datetime(2026, 12, 31, 9, 57, tzinfo=UTC), "en", "3 minutes ago"),
        (datetime(2026, 12, 31, 9, 57, tzinfo=UTC), "zh_Hant", "3 分鐘前"),
        (datetime(2026, 12, 31, 12, 0, tzinfo=UTC), "en", "in 2 hours"),
    ],
)
def test_relative_times(moment: datetime, locale: str, expected: str) -> None:
    assert render("{{ moment|ago }}", moment=moment, locale=locale, now=NOW) == expected


def marked_texts() -> list[tuple[str, int, str]]:
    """Every msgid the templates mark (`_()`, `gettext`, `ngettext`, `{% trans %}`, and the checkout's `t()`)."""
    found = []
    for name in sorted(template_sources()):
        extracted = extract_from_file(
            babel_extract,
            str(TEMPLATE_DIR / name),
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "t": None},
            options={"extensions": "jinja2.ext.i18n"},
        )
        for lineno, message, _comments, _context in extracted:
            for msgid in message if isinstance(message, tuple) else (message,):
                found.append((name, lineno, msgid))
    return found


def test_every_text_a_template_marks_has_its_chinese() -> None:
    texts = marked_texts()
    assert any(name == "checkout.html" for name, _line, _msgid in texts)  # the walk sees the checkout's t()
    catalog = translations("zh_Hant")
    missing = [f"{name}:{line}: {msgid!r}" for name, line, msgid in texts if catalog.ugettext(msgid) == msgid]
    assert not missing, "untranslated in bot/locale/zh_Hant/LC_MESSAGES/messages.po:\n" + "\n".join(missing)


@pytest.mark.parametrize(
    ("zone", "english", "chinese"),
    [
        ("Asia/Hong_Kong", "Hong Kong Time", "香港時間"),
        ("Asia/Taipei", "Taiwan Time", "台北時間"),
        ("UTC", "UTC", "UTC"),
    ],
)
def test_a_zone_is_named_in_the_readers_language_not_by_its_key(zone: str, english: str, chinese: str) -> None:
    from zoneinfo import ZoneInfo

    from bot.web.rendering import build_environment

    env = build_environment({"t": "{{ z|zone }}"})
    assert env.get_template("t").render(locale="en", z=ZoneInfo(zone)) == english
    assert env.get_template("t").render(locale="zh_Hant", z=zone) == chinese
