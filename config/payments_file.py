"""The shop file's `payments:` section: how shoppers may pay (see `carts.payment_rules` for its fields).

The section is read into plain values and checked by `carts.payment_rules.parse_payment_methods`, the same
check the admin API runs on JSON; an error names the file, line and field like the rest of the shop file.
"""

from __future__ import annotations

from typing import Any

import yaml

from carts.payment_rules import PaymentConfigError, PaymentMethod, parse_payment_methods
from config.catalog_file import CatalogFileError, _line, _mapping_fields

_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _line_of(node: yaml.Node, source: str, field: str) -> int:
    """The line of `field` (`fps.id`) inside the section, else of the deepest mapping on its way."""
    current = node
    for part in field.split("."):
        if not isinstance(current, yaml.MappingNode):
            break
        fields = _mapping_fields(current, source, "payments")
        if part not in fields:
            break
        current = fields[part][1]
    return _line(current)


def parse_payments_node(node: yaml.Node, source: str) -> tuple[PaymentMethod, ...]:
    value: Any = _CONSTRUCTOR.construct_object(node, deep=True)
    try:
        return parse_payment_methods(value)
    except PaymentConfigError as error:
        where = error.field if error.field == "payments" else f"payments.{error.field}"
        raise CatalogFileError(source, error.message, _line_of(node, source, error.field), where) from None
