"""The console's forms read as shop-file sections (issue 19). Pure: form fields in, the shop file's own
parsers out, so the browser, the YAML file and the admin API refuse the same things in the same words.

A form names its inputs by the section's field paths (`shop.timezone`, `tiers[1].spend`,
`referral.levels[0].signup`), and a refusal is a `FormError` naming that input, so the page can show the
problem beside it. Each value becomes a YAML node as the file would have it: words stay text, numbers
(`5000`, `12.5`) and percentages (`5%`) are read the way YAML reads them from a file; a blank field is
left out (the section's default).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

from carts.order_rules import OrderRules
from config.catalog_file import CatalogFileError
from config.membership_file import LEVEL_FIELDS, parse_membership_node
from config.sale_file import parse_orders_node
from config.shop_file import ShopInfo, _shop_info
from crm_bridge.rules import MAX_REFERRAL_LEVELS, MAX_TIERS, Program

__all__ = [
    "LEVEL_INPUTS",
    "PROGRAM_INPUTS",
    "SETTINGS_INPUTS",
    "TIER_INPUTS",
    "FormError",
    "field_of",
    "parse_membership_form",
    "parse_settings_form",
]

SOURCE = "console"
_STR = "tag:yaml.org,2002:str"
# The inputs of each form, by field path, and whether the value is words (kept as text) or a YAML value.
SETTINGS_INPUTS = (
    "shop.name",
    "shop.currency",
    "shop.timezone",
    "shop.language",
    "orders.pay_within",
    "orders.remind_before",
)
PROGRAM_INPUTS = (
    "page_username",
    "period_months",
    "carry_over",
    "return_window_days",
    "points_expire_months",
    "birthday_points",
    "redeem_cap_percent",
    "redeem_cap_points",
    "referral.new_member_points",
    "referral.daily_cap",
)
TIER_INPUTS = (
    "key",
    "name",
    "spend",
    "earn.points",
    "earn.per",
    "redeem.points",
    "redeem.value",
    "express_upgrade",
    "bonus",
)
LEVEL_INPUTS = LEVEL_FIELDS
_WORDS = {"page_username", "key", "name"}


@dataclass(frozen=True, slots=True)
class FormError(ValueError):
    """A form value the shop file would refuse: `field` is the input's name, `problem` the file's words."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


def _scalar(value: str, *, words: bool) -> yaml.Node:
    """A typed value as the shop file would hold it: text for words, else what YAML reads it as."""
    if not words:
        try:
            node = yaml.compose(value, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            node = None
        # Only a plain value: `[1, 2]` or `{a: 1}` typed in a box is text, which the section refuses.
        if isinstance(node, yaml.ScalarNode):
            return yaml.ScalarNode(node.tag, node.value)
    return yaml.ScalarNode(_STR, value)


def _mapping(values: Mapping[str, yaml.Node]) -> yaml.MappingNode:
    """Nested mappings from dotted paths: {"earn.points": n} → {earn: {points: n}}."""
    tree: dict[str, object] = {}
    for path, node in values.items():
        parts = path.split(".")
        branch = tree
        for part in parts[:-1]:
            branch = branch.setdefault(part, {})  # type: ignore[assignment]
        branch[parts[-1]] = node
    return _node(tree)


def _node(value: object) -> yaml.Node:
    if isinstance(value, yaml.Node):
        return value
    if isinstance(value, list):
        return yaml.SequenceNode("tag:yaml.org,2002:seq", [_node(item) for item in value])
    assert isinstance(value, dict)
    return yaml.MappingNode(
        "tag:yaml.org,2002:map", [(yaml.ScalarNode(_STR, key), _node(item)) for key, item in value.items()]
    )


def _with_lines(node: yaml.Node) -> yaml.Node:
    """The node read back from its text, so it carries the marks (lines) the section parsers expect."""
    return yaml.compose(yaml.serialize(node, allow_unicode=True), Loader=yaml.SafeLoader)


def _given(form: Mapping[str, str], names: Sequence[str], prefix: str = "") -> dict[str, yaml.Node]:
    values: dict[str, yaml.Node] = {}
    for name in names:
        value = (form.get(prefix + name) or "").strip()
        if value:
            values[name] = _scalar(value, words=name.rsplit(".", 1)[-1] in _WORDS or name.startswith("shop."))
    return values


def _refusal(exc: CatalogFileError, section: str) -> FormError:
    where = exc.where or section
    return FormError(where.removeprefix(f"{section}."), exc.problem)


def parse_settings_form(form: Mapping[str, str], current: OrderRules) -> tuple[ShopInfo, OrderRules]:
    """The shop's settings as the `shop:` and `orders:` sections read them. The form does not hold
    `pay_within_by_method`: `current`'s is kept."""
    shop_values = {
        k.removeprefix("shop."): v for k, v in _given(form, SETTINGS_INPUTS).items() if k.startswith("shop.")
    }
    order_values = {
        k.removeprefix("orders."): v for k, v in _given(form, SETTINGS_INPUTS).items() if k.startswith("orders.")
    }
    by_method = current.to_dict()["pay_within_by_method"]
    if by_method:
        order_values["pay_within_by_method"] = _node({k: yaml.ScalarNode(_STR, v) for k, v in by_method.items()})
    try:
        info = _shop_info(_with_lines(_mapping(shop_values)), SOURCE)
    except CatalogFileError as exc:
        raise FormError(exc.where or "shop", exc.problem) from None
    try:
        orders = parse_orders_node(_with_lines(_mapping(order_values)), SOURCE)
    except CatalogFileError as exc:
        raise FormError(exc.where or "orders", exc.problem) from None
    return info, orders


def parse_membership_form(form: Mapping[str, str]) -> Program:
    """The membership programme as the `membership:` section reads it. Inputs: `PROGRAM_INPUTS`, then
    `tiers[i].<TIER_INPUTS>` (i < MAX_TIERS) and `referral.levels[i].<LEVEL_INPUTS>`; a tier or level whose
    inputs are all blank is left out, so a row is removed by emptying it."""
    section = _given(form, PROGRAM_INPUTS)
    # (the form's row, its values): a refusal names the row as the form shows it, not its place in the list
    tier_rows = [(i, v) for i in range(MAX_TIERS) if (v := _given(form, TIER_INPUTS, f"tiers[{i}]."))]
    level_rows = [
        (i, v) for i in range(MAX_REFERRAL_LEVELS) if (v := _given(form, LEVEL_INPUTS, f"referral.levels[{i}]."))
    ]
    tiers = [_mapping(values) for _, values in tier_rows]
    levels = [_mapping(values) for _, values in level_rows]
    tree = _mapping(section)
    tree.value.append((yaml.ScalarNode(_STR, "tiers"), yaml.SequenceNode("tag:yaml.org,2002:seq", tiers)))
    if levels:
        referral = next((v for k, v in tree.value if k.value == "referral"), None)
        if referral is None:
            referral = yaml.MappingNode("tag:yaml.org,2002:map", [])
            tree.value.append((yaml.ScalarNode(_STR, "referral"), referral))
        referral.value.append((yaml.ScalarNode(_STR, "levels"), yaml.SequenceNode("tag:yaml.org,2002:seq", levels)))
    try:
        return parse_membership_node(_with_lines(tree), SOURCE)
    except CatalogFileError as exc:
        refusal = _refusal(exc, "membership")
        field = re.sub(r"^tiers\[(\d+)\]", lambda m: f"tiers[{tier_rows[int(m[1])][0]}]", refusal.field)
        field = re.sub(r"^referral\.levels\[(\d+)\]", lambda m: f"referral.levels[{level_rows[int(m[1])][0]}]", field)
        raise FormError(field, refusal.problem) from None


def field_of(path: str) -> str:
    """The input a refusal names: `keywords[3]` is the keywords box, `tiers[1].earn` its points box."""
    return re.sub(r"\[\d+\]$", "", path)
