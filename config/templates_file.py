"""The shop file's `templates:` section: the utility message templates that reach a shopper after 24 hours. Pure.

Meta retired the order-update message tags on 27 April 2026; after the 24-hour window an order's news
can only go as a utility template made on the Page and approved by Meta (docs/meta-platform.md). Each
template has a body per language with numbered parameters `{{1}}`, `{{2}}`..., and `fields` names the
order fields that fill them, in order:

    templates:
      shipped:
        fields: [order_number, carrier, tracking_number]
        languages:
          en: "Order {{1}} is on its way with {{2}}, tracking number {{3}}."
          zh_HK: "訂單 {{1}} 已由 {{2}} 寄出，追蹤編號 {{3}}。"

Errors name the file, line and field, like the rest of the shop file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import yaml

from config.catalog_file import CatalogFileError, _is_null, _line, _mapping_fields, _text

__all__ = [
    "ORDER_FIELDS",
    "TEMPLATE_FIELDS",
    "TEMPLATE_NAMES",
    "TemplateSpec",
    "TemplatesFileError",
    "body_parameters",
    "parse_templates_node",
    "render_body",
]

# The order updates PlusOne sends; a template of another name would never be used.
TEMPLATE_NAMES = ("order_confirmed", "payment_received", "shipped", "hold_expiring", "order_expiring")
TEMPLATE_FIELDS = ("fields", "languages")
# What an order update can fill a parameter with (the sender of each update passes them in this vocabulary).
ORDER_FIELDS = (
    "order_number",
    "shopper_name",
    "total",
    "status",
    "checkout_url",
    "order_url",
    "expires_at",
    "time_left",
    "carrier",
    "tracking_number",
    "tracking_url",
    "shop_name",
)
BODY_MAX = 1024  # Meta's limit on a template body
PARAMS_MAX = 10
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Za-z]{2,4})?")
_PARAM = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


class TemplatesFileError(CatalogFileError):
    """A `templates:` section that cannot be used: file, line, field and problem."""


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """One template as the shop file declares it: its body per language and the fields of its parameters."""

    name: str
    fields: tuple[str, ...]
    bodies: MappingProxyType[str, str]  # language -> body with {{1}}..{{n}}

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.bodies)

    def params(self, values: dict[str, Any]) -> list[str]:
        """The parameters in order, from an order's values by field name (a missing one is empty)."""
        return [str(values.get(name, "") or "") for name in self.fields]


def body_parameters(body: str) -> list[str]:
    """The parameter names as written in a body, in order of appearance (`{{1}}` gives "1")."""
    return _PARAM.findall(body)


def render_body(body: str, params: list[str]) -> str:
    """The body with `{{n}}` replaced by the n-th parameter: what the shopper reads."""
    return _PARAM.sub(lambda m: params[int(m.group(1)) - 1] if m.group(1).isdigit() else m.group(0), body)


def parse_templates_node(node: yaml.Node, source: str, where: str = "templates") -> tuple[TemplateSpec, ...]:
    if not isinstance(node, yaml.MappingNode):
        raise TemplatesFileError(source, f"must be a mapping of {', '.join(TEMPLATE_NAMES)}", _line(node), where)
    specs: list[TemplateSpec] = []
    for name, (key_node, value) in _mapping_fields(node, source, where).items():
        if name not in TEMPLATE_NAMES:
            raise TemplatesFileError(
                source, f"unknown template (expected {', '.join(TEMPLATE_NAMES)})", _line(key_node), f"{where}.{name}"
            )
        specs.append(_template(name, value, source, f"{where}.{name}"))
    return tuple(specs)


def _template(name: str, node: yaml.Node, source: str, where: str) -> TemplateSpec:
    if not isinstance(node, yaml.MappingNode):
        raise TemplatesFileError(source, "must be a mapping with fields and languages", _line(node), where)
    fields: dict[str, yaml.Node] = {}
    for key, (key_node, value) in _mapping_fields(node, source, where).items():
        if key not in TEMPLATE_FIELDS:
            raise TemplatesFileError(
                source, f"unknown field (expected {', '.join(TEMPLATE_FIELDS)})", _line(key_node), f"{where}.{key}"
            )
        if not _is_null(value):
            fields[key] = value
    order_fields = _order_fields(fields.get("fields"), node, source, f"{where}.fields")
    languages = fields.get("languages")
    if not isinstance(languages, yaml.MappingNode) or not languages.value:
        at = languages if languages is not None else node
        raise TemplatesFileError(
            source, "must map each language (like en or zh_HK) to its body", _line(at), f"{where}.languages"
        )
    bodies: dict[str, str] = {}
    for language, (key_node, body_node) in _mapping_fields(languages, source, f"{where}.languages").items():
        at = f"{where}.languages.{language}"
        if not _LANGUAGE.fullmatch(language):
            raise TemplatesFileError(source, "must be a language code like en, en_US or zh_HK", _line(key_node), at)
        body = _text(body_node, source, at).strip()
        problem = _check_body(body, len(order_fields))
        if problem:
            raise TemplatesFileError(source, problem, _line(body_node), at)
        bodies[language] = body
    return TemplateSpec(name=name, fields=order_fields, bodies=MappingProxyType(bodies))


def _order_fields(node: yaml.Node | None, parent: yaml.Node, source: str, where: str) -> tuple[str, ...]:
    if node is None:
        return ()
    if not isinstance(node, yaml.SequenceNode) or len(node.value) > PARAMS_MAX:
        raise TemplatesFileError(source, f"must be a list of at most {PARAMS_MAX} order fields", _line(node), where)
    names: list[str] = []
    for index, item in enumerate(node.value):
        name = _text(item, source, f"{where}[{index}]").strip()
        if name not in ORDER_FIELDS:
            problem = f"unknown order field (expected one of {', '.join(ORDER_FIELDS)})"
            raise TemplatesFileError(source, problem, _line(item), f"{where}[{index}]")
        names.append(name)
    return tuple(names)


def _check_body(body: str, count: int) -> str | None:
    if not body:
        return "must not be empty"
    if len(body) > BODY_MAX:
        return f"must be at most {BODY_MAX} characters"
    found = body_parameters(body)
    if any(not p.isdigit() for p in found):
        return "parameters must be numbered like {{1}}, {{2}}"
    numbers = {int(p) for p in found}
    if numbers != set(range(1, count + 1)):
        expected = ", ".join(f"{{{{{n}}}}}" for n in range(1, count + 1)) or "no parameters"
        return f"must use {expected} (one per name in fields), not {', '.join(sorted(set(found))) or 'none'}"
    return None
