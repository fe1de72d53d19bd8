"""The one Jinja2 environment of the server-rendered pages: the checkout and the merchant inbox.

Templates live under bot/web/templates/ (the inbox's in its inbox/ folder) and are named by their path
there: "checkout.html", "inbox/list.html". They are read and compiled once, in a thread (file reads would
block the event loop), then answered from memory. Autoescape is on: shoppers' and products' names are
text, never markup.

Language and time come from the render's context, so one environment serves every reader:
- `locale` ("en" or "zh_Hant", bot.replies.i18n): `{{ _("Orders") }}` and `{% trans %}` (Jinja2's i18n
  extension, new style: `{{ _("%(n)s orders", n=count) }}`, values escaped) read the Babel catalog
  bot/locale/<locale>/LC_MESSAGES/messages.po; `babel_extract` finds the msgids for the catalog test.
- `tz` (a ZoneInfo; UTC when absent) and `now`: `{{ moment|when }}` is the date and time in the shop's
  zone, with the year only when it is not this year ("3 Dec 14:05", "2025年12月31日 23:59");
  `{{ moment|ago }}` is relative ("3 minutes ago", "3 分鐘前").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from babel import Locale
from babel.dates import format_skeleton, format_timedelta
from jinja2 import pass_context
from jinja2.runtime import Context

from bot.replies.i18n import DEFAULT_LOCALE, LOCALES, money, pick_locale, translations
from carts.core import CartLineInfo

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_environment: jinja2.Environment | None = None


def variant_json(line: CartLineInfo) -> str:
    """A cart line's variant as its claims store it (canonical JSON, "" for none): the inbox's cart forms
    post it back to name the line."""
    return json.dumps(dict(line.variant), sort_keys=True, ensure_ascii=False) if line.variant else ""


def _locale(context: Context) -> str:
    return pick_locale(context.get("locale")) if context.get("locale") else DEFAULT_LOCALE


def _babel_locales() -> dict[str, Locale]:
    """Babel's data for each of our locales, read now: Babel reads its files on first use, and a read on the
    event loop would block it (and so would `Locale.parse` of a name, which looks for the file)."""
    locales = {}
    for name in LOCALES:
        locale = Locale.parse(name)
        _ = locale.datetime_skeletons, locale.unit_display_names  # loads the locale's data and its parents'
        locales[name] = locale
    return locales


_BABEL: dict[str, Locale] = {}


def _babel(context: Context) -> Locale:
    return _BABEL[_locale(context)]


@pass_context
def _gettext(context: Context, msgid: str) -> str:
    return translations(_locale(context)).ugettext(msgid)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, count: int) -> str:
    return translations(_locale(context)).ungettext(singular, plural, count)


def _local(context: Context, moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the database's times are UTC
    zone = context.get("tz")
    return moment.astimezone(zone if isinstance(zone, tzinfo) else UTC)


@pass_context
def _money(context: Context, amount: Decimal | int | str, currency: str) -> str:
    """An amount in the reader's language, Babel's format (bot.replies.i18n.money): `HK$1,280`."""
    return money(_locale(context), Decimal(amount), currency)


@pass_context
def _when(context: Context, moment: datetime | None) -> str:
    """The date and time in the shop's zone, in the reader's language; the year only when not this year."""
    if moment is None:
        return ""
    local, locale = _local(context, moment), _babel(context)
    now = context.get("now")
    this_year = isinstance(now, datetime) and _local(context, now).year == local.year
    day = format_skeleton("MMMd" if this_year else "yMMMd", local, locale=locale)
    return f"{day} {format_skeleton('Hm', local, locale=locale)}"


@pass_context
def _ago(context: Context, moment: datetime | None) -> str:
    """How long ago (or how soon), in the reader's language: "3 minutes ago", "in 2 hours"."""
    now = context.get("now")
    if moment is None or not isinstance(now, datetime):
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    return format_timedelta(aware - now, add_direction=True, locale=_babel(context))


def build_environment(sources: Mapping[str, str]) -> jinja2.Environment:
    """The environment over `sources` (template name → text), every template compiled."""
    if not _BABEL:
        _BABEL.update(_babel_locales())
    env = jinja2.Environment(loader=jinja2.DictLoader(sources), autoescape=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = _money
    env.filters["when"] = _when
    env.filters["hhmm"] = _when  # the older name, kept for the templates that use it
    env.filters["ago"] = _ago
    env.filters["urlq"] = lambda text: quote(str(text), safe="")
    env.globals["variant_json"] = variant_json
    for name in sources:
        env.get_template(name)  # compile now; DictLoader then answers from memory
    return env


def template_sources() -> dict[str, str]:
    """Every template under TEMPLATE_DIR by its name there."""
    return {path.relative_to(TEMPLATE_DIR).as_posix(): path.read_text("utf-8") for path in TEMPLATE_DIR.rglob("*.html")}


def _load() -> jinja2.Environment:
    return build_environment(template_sources())


async def environment() -> jinja2.Environment:
    """The environment, built on first use (in a thread) and kept."""
    global _environment
    if _environment is None:
        _environment = await asyncio.to_thread(_load)
    return _environment


async def render_page(
    name: str, context: Mapping[str, Any], *, headers: Mapping[str, str], status: int = 200
) -> web.Response:
    """Template `name` rendered with `context`, as an HTML response with the caller's security headers."""
    html = (await environment()).get_template(name).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=headers)
