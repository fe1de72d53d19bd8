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
  `{{ moment|ago }}` is relative ("3 minutes ago", "3 分鐘前"); `{{ day|day }}` a calendar day ("Dec 3", "12月3日").
- Money and numbers in the reader's locale by Babel: `{{ amount|money(currency) }}` ("HK$1,280", "HK$450.50";
  no cents on a whole amount, as shops here write prices), `{{ n|number }}` ("12,345").
- Statuses and outcomes in words (bot.replies.statuses), never raw values: `{{ o.status|order_status }}`,
  `|payment_method`, `|comment_outcome`, `|item_outcome`, `|claim_status`, `|send_status`, `|send_reason`,
  `|order_step`, `|comment_verb`, `|points_kind`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from babel import Locale
from babel.dates import format_skeleton, format_timedelta
from babel.numbers import format_decimal
from jinja2 import pass_context
from jinja2.runtime import Context

from bot.replies import members as members_replies
from bot.replies import statuses
from bot.replies.carts import option_label
from bot.replies.i18n import DEFAULT_LOCALE, LOCALES, money, pick_locale, translations, zone_name
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


@pass_context
def _money(context: Context, amount: Decimal | int | float | None, currency: str) -> str:
    """An amount in the shop's currency, in the reader's locale: the bot's own format (`bot.replies.i18n.money`),
    so a page and a Messenger reply never show one total two ways."""
    if amount is None:
        return ""
    return money(_locale(context), Decimal(str(amount)), currency)


@pass_context
def _number(context: Context, value: Decimal | int | float | None) -> str:
    return "" if value is None else format_decimal(value, locale=_babel(context))


def _status_filter(words: Callable[[str, str], str]) -> Callable[..., str]:
    @pass_context
    def filter_(context: Context, value: str | None) -> str:
        return "" if value is None else words(_locale(context), str(value))

    return filter_


_STATUS_FILTERS = {
    "order_status": statuses.order_status,
    "payment_method": statuses.payment_method,
    "comment_outcome": statuses.comment_outcome,
    "item_outcome": statuses.item_outcome,
    "claim_status": statuses.claim_status,
    "send_status": statuses.send_status,
    "send_reason": statuses.send_reason,
    "order_step": statuses.order_step,
    "points_kind": statuses.points_kind,
    "comment_verb": statuses.comment_verb,
}


def _local(context: Context, moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the database's times are UTC
    zone = context.get("tz")
    return moment.astimezone(zone if isinstance(zone, tzinfo) else UTC)


@pass_context
def _option(context: Context, option: str) -> str:
    """A variant option's name in the reader's language (`size` → 尺碼), as the bot writes it to shoppers."""
    return option_label(_locale(context), str(option))


@pass_context
def _variant(context: Context, variant: Mapping[str, object] | Iterable[tuple[str, object]] | None) -> str:
    """A line's chosen variant (a mapping or its pairs), `size=M` → "尺碼 M", option names in the reader's
    language."""
    pairs = variant.items() if isinstance(variant, Mapping) else (variant or ())
    return ", ".join(f"{option_label(_locale(context), str(k))} {v}" for k, v in pairs)


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
def _day(context: Context, day: date | None) -> str:
    """A calendar day in the reader's language ("Dec 3", "12月3日"); the year only when not this year. What a
    date box holds is written this way beside it: a browser shows the box in its own format, not the page's."""
    if day is None:
        return ""
    now = context.get("now")
    this_year = isinstance(now, datetime) and _local(context, now).year == day.year
    return format_skeleton("MMMd" if this_year else "yMMMd", day, locale=_babel(context))


@pass_context
def _hm(context: Context, moment: datetime | None) -> str:
    """The time of day only, in the shop's zone ("14:05"): for rows of one day, like the live board's."""
    return "" if moment is None else format_skeleton("Hm", _local(context, moment), locale=_babel(context))


@pass_context
def _hms(context: Context, moment: datetime | None) -> str:
    """The time of day with seconds, in the shop's zone ("14:05:09"): a live's chapters last seconds."""
    return "" if moment is None else format_skeleton("Hms", _local(context, moment), locale=_babel(context))


@pass_context
def _zone(context: Context, zone: tzinfo | str | None) -> str:
    """A time zone's name in the reader's language ("Hong Kong Time", "香港時間"): bot.replies.i18n.zone_name."""
    return "" if zone is None else zone_name(_locale(context), zone)


@pass_context
def _ago(context: Context, moment: datetime | None) -> str:
    """How long ago (or how soon), in the reader's language: "3 minutes ago", "in 2 hours"."""
    now = context.get("now")
    if moment is None or not isinstance(now, datetime):
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    return format_timedelta(aware - now, add_direction=True, locale=_babel(context))


@pass_context
def _points_reason(context: Context, entry: Any) -> str:
    """A points row's reason (anything with `reason`, `reason_code`, `reason_params`) in the reader's words."""
    return members_replies.points_reason(_locale(context), entry.reason_code, entry.reason_params, entry.reason)


def build_environment(sources: Mapping[str, str]) -> jinja2.Environment:
    """The environment over `sources` (template name → text), every template compiled."""
    if not _BABEL:
        _BABEL.update(_babel_locales())
    env = jinja2.Environment(loader=jinja2.DictLoader(sources), autoescape=True, extensions=["jinja2.ext.i18n"])
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = _money
    env.filters["number"] = _number
    for filter_name, words in _STATUS_FILTERS.items():
        env.filters[filter_name] = _status_filter(words)
    env.filters["when"] = _when
    env.filters["points_reason"] = _points_reason
    env.filters["option"] = _option
    env.filters["variant"] = _variant
    env.filters["hhmm"] = _when  # the older name, kept for the templates that use it
    env.filters["ago"] = _ago
    env.filters["hm"] = _hm
    env.filters["hms"] = _hms
    env.filters["day"] = _day
    env.filters["zone"] = _zone
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
