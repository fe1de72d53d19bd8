"""The shop file's `messenger_profile:` section: the Page's Get Started button, greeting, ice breakers and
persistent menu, as Meta's Messenger Profile API takes them. Pure.

Every section is per locale, in Meta's locale names (`default` is the fallback Meta requires, then e.g.
`en_US`, `zh_TW`, `zh_HK`). Menu items name what PlusOne already answers (`cart`, `checkout`, `points`,
`person`: their titles come in the shopper's language) or give their own `{title, payload}` / `{title, url}`:

    messenger_profile:
      get_started: GET_STARTED            # optional; the payload the bot reads as Get Started
      greeting:                           # up to 160 characters each; {{user_first_name}} is Meta's
        default: "Hi {{user_first_name}}! Comment a code under our posts, or ask us here."
        zh_TW: "你好 {{user_first_name}}！在貼文留言代碼下單，或在這裡問我們。"
      ice_breakers:                       # up to 4 per locale; note: they take the Get Started button's place
        default: [{question: "How do I order?", payload: "v1:FAQ:how-to-order"}]
      persistent_menu:                    # up to 20 items per locale
        default: [cart, checkout, points, person]
        zh_HK: [cart, checkout, points, person, {title: 營業時間, payload: "v1:FAQ:hours"}]

A section left out gets PlusOne's defaults (bot.replies.messenger_profile): Get Started, a greeting and the
menu in English and Chinese. Errors name the file, line and field like the rest of the shop file.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import yaml

from config.catalog_file import CatalogFileError, _is_null, _line, _mapping_fields, _text

__all__ = [
    "GET_STARTED_PAYLOADS",
    "MENU_ACTIONS",
    "PROFILE_FIELDS",
    "IceBreaker",
    "LocaleEntries",
    "MenuItem",
    "MessengerProfileConfig",
    "MessengerProfileFileError",
    "parse_messenger_profile_node",
    "profile_from_json",
    "profile_to_json",
]

PROFILE_FIELDS = ("get_started", "greeting", "ice_breakers", "persistent_menu")
# The Get Started payloads the bot reads as Get Started (bot.replies.payload_codec): the m.me link's
# referral arrives on that postback, so another payload would lose it.
GET_STARTED_PAYLOADS = ("GET_STARTED", "GET_STARTED_PAYLOAD", "v1:GET_STARTED")
MENU_ACTIONS = ("cart", "checkout", "points", "person", "language")
# Meta's limits: greeting text 160 characters; ice breakers at most 4 questions; persistent menu at most
# 20 items, titles 30 characters, payloads 1,000 (Messenger Profile API references, 2024-2026).
GREETING_MAX = 160
ICE_BREAKERS_MAX = 4
MENU_ITEMS_MAX = 20
TITLE_MAX = 30
PAYLOAD_MAX = 1000
QUESTION_MAX = 80  # Emulator choice as much as ours: Meta documents no limit, its UI cuts long questions
_LOCALE = re.compile(r"default|[a-z]{2}_[A-Z]{2}")


class MessengerProfileFileError(CatalogFileError):
    """A `messenger_profile:` section that cannot be used: file, line, field and problem."""


@dataclass(frozen=True, slots=True)
class MenuItem:
    """A persistent menu item: one of PlusOne's own (`action`), or the merchant's postback or web link."""

    action: str | None = None  # one of MENU_ACTIONS
    title: str | None = None
    payload: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class IceBreaker:
    question: str
    payload: str


T = TypeVar("T")
LocaleEntries = tuple[tuple[str, T], ...]  # (Meta's locale, value), `default` first


@dataclass(frozen=True, slots=True)
class MessengerProfileConfig:
    """The section as written; None for a part left out (PlusOne's default is used for it)."""

    get_started: str = "GET_STARTED"
    greeting: LocaleEntries[str] | None = None
    ice_breakers: LocaleEntries[tuple[IceBreaker, ...]] | None = None
    persistent_menu: LocaleEntries[tuple[MenuItem, ...]] | None = None


def _error(source: str, problem: str, node: yaml.Node, where: str) -> MessengerProfileFileError:
    return MessengerProfileFileError(source, problem, _line(node), where)


def _mapping(node: yaml.Node, source: str, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _error(source, "must be a mapping", node, where)
    return _mapping_fields(node, source, where)


def _limited(node: yaml.Node, source: str, where: str, limit: int) -> str:
    value = _text(node, source, where)
    if not value.strip():
        raise _error(source, "must not be empty", node, where)
    if len(value) > limit:
        raise _error(source, f"is {len(value)} characters; Meta allows {limit}", node, where)
    return value


def _per_locale(node: yaml.Node, source: str, where: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    fields = _mapping(node, source, where)
    entries: list[tuple[str, yaml.Node, yaml.Node]] = []
    for locale, (key_node, value_node) in fields.items():
        if not _LOCALE.fullmatch(locale):
            raise _error(
                source, "must be default or a Meta locale like en_US, zh_TW, zh_HK", key_node, f"{where}.{locale}"
            )
        entries.append((locale, key_node, value_node))
    if "default" not in fields:
        raise _error(source, "needs a default locale (Meta shows it to everyone else)", node, where)
    entries.sort(key=lambda entry: entry[0] != "default")
    return entries


def _greeting(node: yaml.Node, source: str) -> LocaleEntries[str]:
    return tuple(
        (locale, _limited(value, source, f"messenger_profile.greeting.{locale}", GREETING_MAX))
        for locale, _, value in _per_locale(node, source, "messenger_profile.greeting")
    )


def _ice_breakers(node: yaml.Node, source: str) -> LocaleEntries[tuple[IceBreaker, ...]]:
    result: list[tuple[str, tuple[IceBreaker, ...]]] = []
    for locale, _, value in _per_locale(node, source, "messenger_profile.ice_breakers"):
        where = f"messenger_profile.ice_breakers.{locale}"
        if not isinstance(value, yaml.SequenceNode) or not value.value:
            raise _error(source, "must be a list of {question, payload}", value, where)
        if len(value.value) > ICE_BREAKERS_MAX:
            raise _error(source, f"has {len(value.value)} questions; Meta allows {ICE_BREAKERS_MAX}", value, where)
        items = []
        for index, item in enumerate(value.value):
            at = f"{where}[{index}]"
            fields = _mapping(item, source, at)
            unknown = sorted(set(fields) - {"question", "payload"})
            if unknown:
                raise _error(source, "unknown field (question, payload)", fields[unknown[0]][0], f"{at}.{unknown[0]}")
            for name in ("question", "payload"):
                if name not in fields:
                    raise _error(source, "missing", item, f"{at}.{name}")
            question = _limited(fields["question"][1], source, f"{at}.question", QUESTION_MAX)
            items.append(IceBreaker(question, _limited(fields["payload"][1], source, f"{at}.payload", PAYLOAD_MAX)))
        result.append((locale, tuple(items)))
    return tuple(result)


def _menu_item(node: yaml.Node, source: str, where: str) -> MenuItem:
    if isinstance(node, yaml.ScalarNode) and not _is_null(node):
        action = str(node.value)
        if action not in MENU_ACTIONS:
            raise _error(source, f"must be one of {', '.join(MENU_ACTIONS)} or {{title, payload|url}}", node, where)
        return MenuItem(action=action)
    fields = _mapping(node, source, where)
    unknown = sorted(set(fields) - {"title", "payload", "url"})
    if unknown:
        raise _error(source, "unknown field (title, payload, url)", fields[unknown[0]][0], f"{where}.{unknown[0]}")
    if "title" not in fields:
        raise _error(source, "missing", node, f"{where}.title")
    title = _limited(fields["title"][1], source, f"{where}.title", TITLE_MAX)
    if ("payload" in fields) == ("url" in fields):
        raise _error(source, "needs either payload (a postback) or url (a web link)", node, where)
    if "url" in fields:
        url = _limited(fields["url"][1], source, f"{where}.url", 2000)
        if not url.startswith("https://"):
            raise _error(source, "must start with https://", fields["url"][1], f"{where}.url")
        return MenuItem(title=title, url=url)
    return MenuItem(title=title, payload=_limited(fields["payload"][1], source, f"{where}.payload", PAYLOAD_MAX))


def _menu(node: yaml.Node, source: str) -> LocaleEntries[tuple[MenuItem, ...]]:
    result: list[tuple[str, tuple[MenuItem, ...]]] = []
    for locale, _, value in _per_locale(node, source, "messenger_profile.persistent_menu"):
        where = f"messenger_profile.persistent_menu.{locale}"
        if not isinstance(value, yaml.SequenceNode) or not value.value:
            raise _error(source, "must be a list of menu items", value, where)
        if len(value.value) > MENU_ITEMS_MAX:
            raise _error(source, f"has {len(value.value)} items; Meta allows {MENU_ITEMS_MAX}", value, where)
        result.append((locale, tuple(_menu_item(item, source, f"{where}[{i}]") for i, item in enumerate(value.value))))
    return tuple(result)


def parse_messenger_profile_node(node: yaml.Node, source: str) -> MessengerProfileConfig:
    """The `messenger_profile:` section, validated against Meta's limits."""
    fields = _mapping(node, source, "messenger_profile")
    unknown = sorted(set(fields) - set(PROFILE_FIELDS))
    if unknown:
        key = fields[unknown[0]][0]
        raise _error(
            source, f"unknown field (one of {', '.join(PROFILE_FIELDS)})", key, f"messenger_profile.{unknown[0]}"
        )

    def given(name: str) -> yaml.Node | None:
        value = fields.get(name)
        return None if value is None or _is_null(value[1]) else value[1]

    get_started = "GET_STARTED"
    if (node_gs := given("get_started")) is not None:
        get_started = _text(node_gs, source, "messenger_profile.get_started").strip()
        if get_started not in GET_STARTED_PAYLOADS:
            # The m.me link's referral comes on the Get Started postback: the bot must know it for one.
            raise _error(
                source, f"must be one of {', '.join(GET_STARTED_PAYLOADS)}", node_gs, "messenger_profile.get_started"
            )
    greeting = given("greeting")
    ice_breakers = given("ice_breakers")
    menu = given("persistent_menu")
    return MessengerProfileConfig(
        get_started=get_started,
        greeting=_greeting(greeting, source) if greeting is not None else None,
        ice_breakers=_ice_breakers(ice_breakers, source) if ice_breakers is not None else None,
        persistent_menu=_menu(menu, source) if menu is not None else None,
    )


def profile_to_json(config: MessengerProfileConfig) -> str:
    """The section as JSON, for the database (read back by `profile_from_json`)."""

    def items(entries: LocaleEntries[Any] | None) -> Any:
        if entries is None:
            return None
        return [
            [locale, [asdict(v) for v in value] if isinstance(value, tuple) else value] for locale, value in entries
        ]

    data = {
        "get_started": config.get_started,
        "greeting": items(config.greeting),
        "ice_breakers": items(config.ice_breakers),
        "persistent_menu": items(config.persistent_menu),
    }
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def profile_from_json(text: str) -> MessengerProfileConfig:
    data = json.loads(text)

    def entries(name: str, make: Any) -> Any:
        value = data.get(name)
        if value is None:
            return None
        return tuple((locale, make(item)) for locale, item in value)

    return MessengerProfileConfig(
        get_started=data.get("get_started") or "GET_STARTED",
        greeting=entries("greeting", str),
        ice_breakers=entries("ice_breakers", lambda qs: tuple(IceBreaker(**q) for q in qs)),
        persistent_menu=entries("persistent_menu", lambda ms: tuple(MenuItem(**m) for m in ms)),
    )
