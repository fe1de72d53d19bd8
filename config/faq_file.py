"""The shop file's `faq:` section (issue 6): each Page's keyword FAQ, welcome and fallback. Pure.

    faq:
      page_id: "1000000000001"        # default: shop.page_id; a list of such mappings for several Pages
      welcome: Hi! 你好！...            # optional: the answer to Get Started
      fallback: Thanks! 多謝！...       # optional: when nothing else answers (at most once in a while)
      rules:
        - key: hours
          keywords: [hours, opening hours, 營業時間, 幾點開]
          match: any                    # any (default) | all | exact
          priority: 0                   # the higher wins when several rules match
          reply: We're open 11:00-20:00. 營業時間 11:00-20:00。   # one text for every shopper, or one per
          # language, each shopper getting theirs (else the other):  reply: {en: "We're open...", zh_Hant: 營業時間...}
          quick_replies: [{title: Address 地址, rule: address}]
          buttons: [{title: Map 地圖, url: "https://maps.example/shop"}]

`parse_faq_node` reads the section (errors name the file, line and field, like the rest of the shop
file); the `check_*` helpers are shared with the admin API (`bot.web.faq_api`), which takes the same fields
as JSON (`parse_faq_rule_json`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from config.catalog_file import _is_null, _line, _text
from parsers.faq import FaqButton, FaqQuickReply, FaqReply, FaqRule, MatchMode, exact_form
from parsers.normalize import normalize_text

__all__ = [
    "FAQ_FIELDS",
    "FAQ_RULE_FIELDS",
    "FaqConfig",
    "check_rule_key",
    "parse_faq_node",
    "parse_faq_rule_json",
]

FAQ_FIELDS = ("page_id", "welcome", "fallback", "rules")
FAQ_RULE_FIELDS = ("key", "keywords", "match", "priority", "reply", "quick_replies", "buttons")
QUICK_REPLY_FIELDS = ("title", "rule")
BUTTON_FIELDS = ("title", "url", "rule")

RULE_KEY_MAX = 80
KEYWORD_MAX = 200
KEYWORDS_MAX = 50
PRIORITY_LIMIT = 1000
TEXT_MAX = 1999  # Messenger's text limit is 2,000 characters
BUTTON_TEXT_MAX = 640  # a button template's text
TITLE_MAX = 20  # quick reply and button titles
QUICK_REPLIES_MAX = 13
BUTTONS_MAX = 3
URL_MAX = 2000
# The languages a reply may be written in, one text each: a shopper gets theirs, else the other.
REPLY_LANGUAGES = ("en", "zh_Hant")
_NO_REPLY = "give the answer in en, zh_Hant or both"

_RULE_KEY = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True, slots=True)
class FaqConfig:
    """One Page's FAQ: its rules, and optionally its own welcome and fallback texts."""

    page_id: str
    rules: tuple[FaqRule, ...] = ()
    welcome: str | None = None
    fallback: str | None = None
    line: int = field(default=0, compare=False)


# --- checks shared with the admin API (each returns the problem, or None when the value is fine) ---


def check_rule_key(key: str) -> str | None:
    if not _RULE_KEY.fullmatch(key) or len(key) > RULE_KEY_MAX:
        return f"must be lower-case letters, digits, - and _ (like opening-hours), at most {RULE_KEY_MAX} characters"
    return None


def _check_text(text: str, limit: int) -> str | None:
    if not text.strip():
        return "must not be empty"
    if "\x00" in text:
        return "must not contain NUL characters"
    if len(text) > limit:
        return f"must be at most {limit} characters"
    return None


def _check_keywords(keywords: list[str], mode: MatchMode) -> tuple[int, str] | None:
    """(index, problem) of the first bad keyword, or (-1, problem) for the list itself."""
    if not keywords:
        return -1, "must list at least one keyword"
    if len(keywords) > KEYWORDS_MAX:
        return -1, f"must list at most {KEYWORDS_MAX} keywords"
    seen: dict[str, int] = {}
    for index, keyword in enumerate(keywords):
        problem = _check_text(keyword, KEYWORD_MAX)
        if problem:
            return index, problem
        form = exact_form(keyword) if mode is MatchMode.EXACT else normalize_text(keyword)
        if not form:
            return index, "has nothing to match once punctuation and spaces are set aside"
        if form in seen:
            return index, f"is the same keyword as keywords[{seen[form]}] (case and width do not count)"
        seen[form] = index
    return None


def _check_url(url: str) -> str | None:
    if not url.startswith(("https://", "http://")) or len(url) > URL_MAX or any(c.isspace() for c in url):
        return "must be an http(s) address without spaces, like https://maps.example/shop"
    return None


# --- the YAML section ---


class _Reader:
    """Reads nodes of one file, raising the shop file's errors (file, line and field)."""

    def __init__(self, source: str) -> None:
        from config.shop_file import ShopFileError  # the shop file imports this module: import at use

        self.source = source
        self.error = ShopFileError

    def fail(self, problem: str, node: yaml.Node, where: str) -> Exception:
        return self.error(self.source, problem, _line(node), where)

    def fields(self, node: yaml.Node, where: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        from config.shop_file import _fields

        return {k: v for k, v in _fields(node, self.source, where, allowed).items() if not _is_null(v)}

    def text(self, node: yaml.Node, where: str, limit: int) -> str:
        value = _text(node, self.source, where).strip()
        problem = _check_text(value, limit)
        if problem:
            raise self.fail(problem, node, where)
        return value

    def required(self, fields: dict[str, yaml.Node], name: str, parent: yaml.Node, where: str) -> yaml.Node:
        if name not in fields:
            raise self.fail("missing", parent, f"{where}.{name}")
        return fields[name]

    def sequence(self, node: yaml.Node, where: str, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(f"must be a list of {what}", node, where)
        return list(node.value)


def parse_faq_node(node: yaml.Node, source: str, default_page_id: str | None) -> tuple[FaqConfig, ...]:
    """The `faq:` section: one mapping (one Page) or a list of them (several Pages)."""
    reader = _Reader(source)
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    configs: list[FaqConfig] = []
    pages: dict[str, int] = {}
    for index, item in enumerate(items):
        where = f"faq[{index}]" if isinstance(node, yaml.SequenceNode) else "faq"
        config = _faq(reader, item, where, default_page_id)
        if config.page_id in pages:
            raise reader.fail(f"Page {config.page_id} already has an FAQ (faq[{pages[config.page_id]}])", item, where)
        pages[config.page_id] = index
        configs.append(config)
    return tuple(configs)


def _faq(reader: _Reader, node: yaml.Node, where: str, default_page_id: str | None) -> FaqConfig:
    from config.shop_file import _page_id

    fields = reader.fields(node, where, FAQ_FIELDS)
    if "page_id" in fields:
        page_id = _page_id(fields["page_id"], reader.source, f"{where}.page_id")
    elif default_page_id is not None:
        page_id = default_page_id
    else:
        raise reader.fail("missing (and shop.page_id gives no default)", node, f"{where}.page_id")
    welcome = reader.text(fields["welcome"], f"{where}.welcome", TEXT_MAX) if "welcome" in fields else None
    fallback = reader.text(fields["fallback"], f"{where}.fallback", TEXT_MAX) if "fallback" in fields else None
    rules: list[FaqRule] = []
    rule_nodes: list[tuple[yaml.Node, str]] = []
    keys: dict[str, int] = {}
    rule_items = reader.sequence(fields["rules"], f"{where}.rules", "rules") if "rules" in fields else []
    for index, item in enumerate(rule_items):
        path = f"{where}.rules[{index}]"
        rule = _rule(reader, item, path)
        if rule.key in keys:
            key_node = reader.fields(item, path, FAQ_RULE_FIELDS)["key"]
            raise reader.fail(f"duplicate key {rule.key!r} ({where}.rules[{keys[rule.key]}])", key_node, f"{path}.key")
        keys[rule.key] = index
        rules.append(rule)
        rule_nodes.append((item, path))
    # Quick replies and buttons may name any rule of the Page, so they are checked once all are read.
    for rule, (item, path) in zip(rules, rule_nodes, strict=True):
        fields_of = reader.fields(item, path, FAQ_RULE_FIELDS)
        for name, targets in (
            ("quick_replies", [q.rule for q in rule.reply.quick_replies]),
            ("buttons", [b.rule for b in rule.reply.buttons]),
        ):
            for index, target in enumerate(targets):
                if target is not None and target not in keys:
                    entry = fields_of[name].value[index]
                    raise reader.fail(f"no rule with key {target!r} in this FAQ", entry, f"{path}.{name}[{index}].rule")
    return FaqConfig(page_id=page_id, rules=tuple(rules), welcome=welcome, fallback=fallback, line=_line(node))


def _rule(reader: _Reader, node: yaml.Node, where: str) -> FaqRule:
    fields = reader.fields(node, where, FAQ_RULE_FIELDS)
    key_node = reader.required(fields, "key", node, where)
    key = _text(key_node, reader.source, f"{where}.key").strip()
    problem = check_rule_key(key)
    if problem:
        raise reader.fail(problem, key_node, f"{where}.key")
    mode = MatchMode.ANY
    if "match" in fields:
        value = _text(fields["match"], reader.source, f"{where}.match").strip()
        try:
            mode = MatchMode(value)
        except ValueError:
            raise reader.fail("must be any, all or exact", fields["match"], f"{where}.match") from None
    keywords_node = reader.required(fields, "keywords", node, where)
    keyword_nodes = reader.sequence(keywords_node, f"{where}.keywords", "keywords, like [hours, 營業時間]")
    keywords = [_text(k, reader.source, f"{where}.keywords[{i}]").strip() for i, k in enumerate(keyword_nodes)]
    bad = _check_keywords(keywords, mode)
    if bad is not None:
        index, problem = bad
        at = keywords_node if index < 0 else keyword_nodes[index]
        raise reader.fail(problem, at, f"{where}.keywords" if index < 0 else f"{where}.keywords[{index}]")
    priority = 0
    if "priority" in fields:
        priority_node = fields["priority"]
        if not isinstance(priority_node, yaml.ScalarNode) or priority_node.tag != _TAG + "int":
            raise reader.fail(_PRIORITY_PROBLEM, priority_node, f"{where}.priority")
        priority = int(yaml.constructor.SafeConstructor().construct_yaml_int(priority_node))
        if abs(priority) > PRIORITY_LIMIT:
            raise reader.fail(_PRIORITY_PROBLEM, priority_node, f"{where}.priority")
    quick_replies = tuple(
        FaqQuickReply(**_entry(reader, item, f"{where}.quick_replies[{i}]", QUICK_REPLY_FIELDS, ("title", "rule")))
        for i, item in enumerate(_list(reader, fields, "quick_replies", where, QUICK_REPLIES_MAX))
    )
    buttons: list[FaqButton] = []
    for i, item in enumerate(_list(reader, fields, "buttons", where, BUTTONS_MAX)):
        path = f"{where}.buttons[{i}]"
        values = _entry(reader, item, path, BUTTON_FIELDS, ("title",))
        if ("url" in values) == ("rule" in values):
            raise reader.fail("give either url (a link) or rule (another answer)", item, path)
        if "url" in values and (problem := _check_url(values["url"])):
            raise reader.fail(problem, item, f"{path}.url")
        buttons.append(FaqButton(**values))
    limit = BUTTON_TEXT_MAX if buttons else TEXT_MAX
    reply_node = reader.required(fields, "reply", node, where)
    texts: tuple[tuple[str, str], ...] = ()
    if isinstance(reply_node, yaml.MappingNode):  # one text per language
        found = []
        for key_node, text_node in reply_node.value:
            language = _text(key_node, reader.source, f"{where}.reply")
            if language not in REPLY_LANGUAGES:
                raise reader.fail("unknown language: en or zh_Hant", key_node, f"{where}.reply.{language}")
            found.append((language, reader.text(text_node, f"{where}.reply.{language}", limit)))
        texts = _reply_texts(dict(found))
        if not texts:
            raise reader.fail(_NO_REPLY, reply_node, f"{where}.reply")
        reply = texts[0][1]
    else:
        reply = reader.text(reply_node, f"{where}.reply", limit)
    return FaqRule(
        key=key,
        keywords=tuple(keywords),
        reply=FaqReply(reply, quick_replies, tuple(buttons), texts),
        match=mode,
        priority=priority,
        line=_line(node),
    )


_PRIORITY_PROBLEM = f"must be a whole number from -{PRIORITY_LIMIT} to {PRIORITY_LIMIT}"


def _list(reader: _Reader, fields: dict[str, yaml.Node], name: str, where: str, most: int) -> list[yaml.Node]:
    if name not in fields:
        return []
    items = reader.sequence(fields[name], f"{where}.{name}", name.replace("_", " "))
    if len(items) > most:
        raise reader.fail(f"Messenger allows at most {most}", fields[name], f"{where}.{name}")
    return items


def _entry(
    reader: _Reader, node: yaml.Node, where: str, allowed: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, str]:
    fields = reader.fields(node, where, allowed)
    values: dict[str, str] = {}
    for name in allowed:
        if name in fields:
            limit = TITLE_MAX if name == "title" else URL_MAX
            values[name] = reader.text(fields[name], f"{where}.{name}", limit)
        elif name in required:
            raise reader.fail("missing", node, f"{where}.{name}")
    return values


# --- the admin API's JSON ---


def parse_faq_rule_json(body: Any, key: str | None = None) -> FaqRule:
    """An FAQ rule from the admin API's JSON (the YAML rule's fields); ValueError("field: problem").

    `key`, when given, is the rule's key from the URL (the body may leave it out). Quick replies and
    buttons that name other rules are checked by the caller, which knows the Page's rules.
    """
    if not isinstance(body, dict):
        raise ValueError(f"body: must be a JSON object with {', '.join(FAQ_RULE_FIELDS)}")
    unknown = sorted(set(body) - set(FAQ_RULE_FIELDS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (expected {', '.join(FAQ_RULE_FIELDS)})")
    if key is not None and body.get("key", key) != key:
        raise ValueError(f"key: the body's key {body['key']!r} is not the address's {key!r}")
    key = body.get("key", key)
    if not isinstance(key, str) or (problem := check_rule_key(key)):
        raise ValueError(f"key: {problem if isinstance(key, str) else 'must be text'}")
    try:
        mode = MatchMode(body.get("match", "any"))
    except (ValueError, TypeError):
        raise ValueError("match: must be any, all or exact") from None
    keywords = body.get("keywords")
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ValueError('keywords: must be a list of text, like ["hours", "營業時間"]')
    keywords = [k.strip() for k in keywords]
    bad = _check_keywords(keywords, mode)
    if bad is not None:
        raise ValueError(f"keywords{'' if bad[0] < 0 else f'[{bad[0]}]'}: {bad[1]}")
    priority = body.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > PRIORITY_LIMIT:
        raise ValueError(f"priority: {_PRIORITY_PROBLEM}")
    quick_replies = tuple(
        FaqQuickReply(**v)
        for v in _json_entries(body, "quick_replies", QUICK_REPLIES_MAX, ("title", "rule"), ("title", "rule"))
    )
    buttons: list[FaqButton] = []
    for index, values in enumerate(_json_entries(body, "buttons", BUTTONS_MAX, BUTTON_FIELDS, ("title",))):
        if ("url" in values) == ("rule" in values):
            raise ValueError(f"buttons[{index}]: give either url (a link) or rule (another answer)")
        if "url" in values and (problem := _check_url(values["url"])):
            raise ValueError(f"buttons[{index}].url: {problem}")
        buttons.append(FaqButton(**values))
    reply = body.get("reply")
    limit = BUTTON_TEXT_MAX if buttons else TEXT_MAX
    texts: tuple[tuple[str, str], ...] = ()
    if isinstance(reply, dict):  # one text per language
        for language, text in reply.items():
            if language not in REPLY_LANGUAGES:
                raise ValueError(f"reply.{language}: unknown language: en or zh_Hant")
            if not isinstance(text, str):
                raise ValueError(f"reply.{language}: must be text")
            if text.strip() and (problem := _check_text(text.strip(), limit)):
                raise ValueError(f"reply.{language}: {problem}")
        texts = _reply_texts({k: v.strip() for k, v in reply.items()})
        if not texts:
            raise ValueError(f"reply: {_NO_REPLY}")
        reply = texts[0][1]
    elif not isinstance(reply, str):
        raise ValueError("reply: must be text")
    elif problem := _check_text(reply, limit):
        raise ValueError(f"reply: {problem}")
    return FaqRule(
        key=key,
        keywords=tuple(keywords),
        reply=FaqReply(reply.strip(), quick_replies, tuple(buttons), texts),
        match=mode,
        priority=priority,
    )


def _reply_texts(by_language: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The per-language texts given (empty ones left out), in REPLY_LANGUAGES' order."""
    return tuple((language, by_language[language]) for language in REPLY_LANGUAGES if by_language.get(language))


def _json_entries(
    body: dict[str, Any], name: str, most: int, allowed: tuple[str, ...], required: tuple[str, ...]
) -> list[dict[str, str]]:
    entries = body.get(name) or []
    if not isinstance(entries, list):
        raise ValueError(f"{name}: must be a list")
    if len(entries) > most:
        raise ValueError(f"{name}: Messenger allows at most {most}")
    out: list[dict[str, str]] = []
    for index, entry in enumerate(entries):
        where = f"{name}[{index}]"
        if not isinstance(entry, dict) or set(entry) - set(allowed):
            raise ValueError(f"{where}: must be an object with {', '.join(allowed)}")
        values: dict[str, str] = {}
        for field_name in allowed:
            value = entry.get(field_name)
            if value is None:
                if field_name in required:
                    raise ValueError(f"{where}.{field_name}: missing")
                continue
            limit = TITLE_MAX if field_name == "title" else URL_MAX
            if not isinstance(value, str) or (problem := _check_text(value, limit)):
                raise ValueError(f"{where}.{field_name}: {problem if isinstance(value, str) else 'must be text'}")
            values[field_name] = value.strip()
        out.append(values)
    return out
