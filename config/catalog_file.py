"""The catalog file (issue 4): a YAML (or JSON) `products:` list read into typed `ProductConfig`s.

Only `load_catalog_file` touches the disk; everything else is pure and works on PyYAML nodes, whose
marks give every error its line, as one line: `shop.yaml:7: products[2].price: must be a number >= 0`.
The shop file of issue 5 holds the same product entries, so `parse_products_node` validates a
`products:` node wherever it sits in a bigger file (`compose_yaml` gives the nodes).

A product is `code`, `name`, `price` (a number >= 0, kept as `Decimal`), optional `stock` (a whole
number >= 0; absent or null means not tracked), optional `variants` (option name -> list of values),
optional `nicknames` (words shoppers call it by, like `[紅裙, red dress]`) and optional `name_keyword`
(default true: the name orders too, as in `我要碎花裙兩件`; false for a name that is everyday talk).
Codes, values and nicknames follow the order parser's rules (`parsers.order_comment.check_code`,
`check_keyword`), so a file that loads always builds an `OrderParser`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from parsers.order_comment import (
    CatalogEntry,
    check_code,
    check_keyword,
    check_option_value,
    code_key,
    option_value_key,
    product_keywords,
)

__all__ = [
    "PRODUCT_FIELDS",
    "CatalogFileError",
    "ProductConfig",
    "catalog_entries",
    "check_nicknames",
    "compose_yaml",
    "load_catalog_file",
    "parse_catalog_text",
    "parse_product_node",
    "parse_products_node",
]

PRODUCT_FIELDS = ("code", "name", "price", "stock", "variants", "nicknames", "name_keyword")
MAX_NICKNAMES = 20
_REQUIRED = ("code", "name", "price")
_TAG = "tag:yaml.org,2002:"
_NUMBER = "must be a number >= 0"
_WHOLE = "must be a whole number >= 0"
_CONSTRUCTOR = yaml.constructor.SafeConstructor()  # turns int and float nodes into numbers, YAML's way


class CatalogFileError(ValueError):
    """A catalog file that cannot be used. `str()` is one line naming the file, line and field."""

    def __init__(self, source: str, problem: str, line: int | None = None, where: str | None = None):
        self.source = source
        self.line = line
        self.where = where
        self.problem = problem
        place = source if line is None else f"{source}:{line}"
        super().__init__(f"{place}: {where}: {problem}" if where else f"{place}: {problem}")


@dataclass(frozen=True, slots=True)
class ProductConfig:
    """One product of the catalog as the merchant configured it."""

    code: str
    name: str
    price: Decimal
    stock: int | None = None
    variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    line: int = field(default=0, compare=False)  # where the entry starts in its file, for later messages
    nicknames: tuple[str, ...] = ()
    name_keyword: bool = True

    def to_catalog_entry(self) -> CatalogEntry:
        return CatalogEntry(
            code=self.code,
            name=self.name,
            variants=self.variants,
            keywords=product_keywords(self.code, self.name, self.nicknames, self.name_keyword),
        )


def catalog_entries(products: Iterable[ProductConfig]) -> tuple[CatalogEntry, ...]:
    """What `parsers.order_comment.OrderParser` needs from the products."""
    return tuple(product.to_catalog_entry() for product in products)


def load_catalog_file(path: str | os.PathLike[str]) -> tuple[ProductConfig, ...]:
    """Read and validate a catalog file. Raises `CatalogFileError` naming the file, line and field."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CatalogFileError(source, "no such file") from None
    except UnicodeDecodeError as exc:
        raise CatalogFileError(source, f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise CatalogFileError(source, f"cannot be read: {exc.strerror or exc}") from None
    return parse_catalog_text(text, source)


def parse_catalog_text(text: str, source: str = "<catalog>") -> tuple[ProductConfig, ...]:
    """Validate the text of a catalog file: a mapping whose only key is `products`. Pure."""
    root = compose_yaml(text, source)
    if root is None:
        raise CatalogFileError(source, "missing (the file is empty)", 1, "products")
    if not isinstance(root, yaml.MappingNode):
        raise CatalogFileError(source, "must be a mapping with a `products:` list", _line(root), "catalog")
    fields = _mapping_fields(root, source, "")
    for key, (key_node, _) in fields.items():
        if key != "products":
            raise CatalogFileError(source, "unknown field (expected products)", _line(key_node), key)
    if "products" not in fields:
        raise CatalogFileError(source, "missing", _line(root), "products")
    return parse_products_node(fields["products"][1], source)


def compose_yaml(text: str, source: str) -> yaml.Node | None:
    """Parse YAML (or JSON) into nodes, which remember their lines. None for an empty document."""
    if text.lstrip().startswith(("{", "[")):
        # PyYAML refuses tab indentation, which JSON writers use. Raw tabs in valid JSON can only be
        # whitespace between tokens (inside strings they are escaped), so they are safe to swap.
        text = text.replace("\t", " ")
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "cannot be parsed"
        if exc.problem and exc.context and not exc.context.startswith("while"):
            problem = f"{exc.context}, {exc.problem}"  # "expected a single document..., but found another"
        raise CatalogFileError(source, f"invalid YAML: {problem}", line) from None
    except yaml.YAMLError as exc:
        raise CatalogFileError(source, f"invalid YAML: {exc}") from None


def parse_products_node(node: yaml.Node, source: str, where: str = "products") -> tuple[ProductConfig, ...]:
    """Validate a list of product entries; codes must be unique case-insensitively. Pure."""
    if not isinstance(node, yaml.SequenceNode):
        raise CatalogFileError(source, "must be a list of products", _line(node), where)
    if not node.value:
        raise CatalogFileError(source, "must list at least one product", _line(node), where)
    products: list[ProductConfig] = []
    seen: dict[str, tuple[int, ProductConfig]] = {}
    for index, item in enumerate(node.value):
        product = parse_product_node(item, source, f"{where}[{index}]")
        key = code_key(product.code)
        if key in seen:
            first, other = seen[key]
            raise CatalogFileError(
                source,
                f"duplicate code {product.code!r} ({where}[{first}] at line {other.line} is {other.code!r})",
                _line(_mapping_fields(item, source, "")["code"][1]),
                f"{where}[{index}].code",
            )
        seen[key] = (index, product)
        products.append(product)
    for index, product in enumerate(products):
        for number, nickname in enumerate(product.nicknames):
            other = seen.get(code_key(nickname))
            if other is not None and other[1] is not product:
                raise CatalogFileError(
                    source,
                    f"{nickname!r} is the code of {where}[{other[0]}]: a code always means its own product",
                    product.line,
                    f"{where}[{index}].nicknames[{number}]",
                )
    return tuple(products)


def parse_product_node(node: yaml.Node, source: str, where: str) -> ProductConfig:
    """Validate one product entry (a mapping with PRODUCT_FIELDS). Pure."""
    if not isinstance(node, yaml.MappingNode):
        raise CatalogFileError(source, "must be a mapping with code, name and price", _line(node), where)
    fields = _mapping_fields(node, source, where)
    for key, (key_node, _) in fields.items():
        if key not in PRODUCT_FIELDS:
            expected = ", ".join(PRODUCT_FIELDS)
            raise CatalogFileError(source, f"unknown field (expected {expected})", _line(key_node), f"{where}.{key}")
    for key in _REQUIRED:
        if key not in fields or _is_null(fields[key][1]):
            raise CatalogFileError(source, "missing", _line(node), f"{where}.{key}")

    code_node = fields["code"][1]
    code = _text(code_node, source, f"{where}.code").strip()
    problem = check_code(code)
    if problem:
        raise CatalogFileError(source, problem, _line(code_node), f"{where}.code")
    name = _text(fields["name"][1], source, f"{where}.name").strip()
    if not name:
        raise CatalogFileError(source, "must not be empty", _line(fields["name"][1]), f"{where}.name")
    price = _price(fields["price"][1], source, f"{where}.price")
    stock = _stock(fields["stock"][1], source, f"{where}.stock") if "stock" in fields else None
    variants = _variants(fields["variants"][1], source, f"{where}.variants") if "variants" in fields else {}
    nicknames = _nicknames(fields["nicknames"][1], source, f"{where}.nicknames") if "nicknames" in fields else ()
    name_keyword = True
    if "name_keyword" in fields:
        flag = fields["name_keyword"][1]
        if not isinstance(flag, yaml.ScalarNode) or flag.tag != _TAG + "bool":
            raise CatalogFileError(source, "must be true or false", _line(flag), f"{where}.name_keyword")
        name_keyword = bool(_CONSTRUCTOR.construct_yaml_bool(flag))
    return ProductConfig(
        code=code,
        name=name,
        price=price,
        stock=stock,
        variants=MappingProxyType(variants),
        line=_line(node),
        nicknames=nicknames,
        name_keyword=name_keyword,
    )


def check_nicknames(nicknames: Any, where: str = "nicknames") -> tuple[str, ...]:
    """Nicknames given as data (the admin API's JSON list, the console's form), checked as a file's are.

    Raises `CatalogFileError` naming the nickname (`nicknames[1]`), as a file's would.
    """
    if not isinstance(nicknames, list) or not all(isinstance(n, str) for n in nicknames):
        raise CatalogFileError("<form>", "must be a list of words, like [紅裙, red dress]", 1, where)
    node = compose_yaml(yaml.safe_dump(nicknames, allow_unicode=True), "<form>")
    return _nicknames(node, "<form>", where) if node is not None else ()


def _nicknames(node: yaml.Node, source: str, where: str) -> tuple[str, ...]:
    if _is_null(node):
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise CatalogFileError(source, "must be a list of words, like [紅裙, red dress]", _line(node), where)
    if len(node.value) > MAX_NICKNAMES:
        raise CatalogFileError(source, f"must list at most {MAX_NICKNAMES} nicknames", _line(node), where)
    nicknames: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(node.value):
        path = f"{where}[{index}]"
        nickname = " ".join(_text(item, source, path).split())
        problem = check_keyword(nickname)
        if problem:
            raise CatalogFileError(source, problem, _line(item), path)
        if code_key(nickname) in seen:
            raise CatalogFileError(source, f"{nickname!r} is listed twice", _line(item), path)
        seen.add(code_key(nickname))
        nicknames.append(nickname)
    return tuple(nicknames)


def check_variants(variants: Any, where: str = "variants") -> dict[str, tuple[str, ...]]:
    """Options given as data (the admin API's JSON, the console's form), checked by the file's own rules.

    Raises `CatalogFileError` naming the option or value (`variants.size[1]`), as a file's would.
    """
    if not isinstance(variants, dict) or not all(
        isinstance(values, list) and all(isinstance(v, str) for v in values) for values in variants.values()
    ):
        raise CatalogFileError("<form>", "must map each option to its values, like `size: [S, M, L]`", 1, where)
    for option, values in variants.items():
        if "\x00" in option or any("\x00" in value for value in values):  # PostgreSQL text cannot hold it
            raise CatalogFileError("<form>", "must not contain NUL characters", 1, f"{where}.{option}")
    # Dumped and read back: the same checks (empty, duplicate or ambiguous values) as in a shop file.
    node = compose_yaml(yaml.safe_dump({str(k): v for k, v in variants.items()}, allow_unicode=True), "<form>")
    return _variants(node, "<form>", where) if node is not None else {}


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null"


def _mapping_fields(node: yaml.MappingNode, source: str, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """The mapping's fields by name, keeping the key nodes for their lines; duplicate keys are errors."""
    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        path = f"{where}.{key_node.value}" if where else str(key_node.value)
        if not isinstance(key_node, yaml.ScalarNode):
            raise CatalogFileError(source, "field names must be plain text", _line(key_node), where or "catalog")
        if key_node.value in fields:
            raise CatalogFileError(source, "given twice", _line(key_node), path)
        fields[key_node.value] = (key_node, value_node)
    return fields


def _text(node: yaml.Node, source: str, where: str) -> str:
    # The text as written, so `code: ON` stays "ON" and `size: [yes, no]` keeps its words, instead
    # of YAML 1.1 reading them as booleans.
    if not isinstance(node, yaml.ScalarNode) or _is_null(node):
        raise CatalogFileError(source, "must be text", _line(node), where)
    return str(node.value)


def _price(node: yaml.Node, source: str, where: str) -> Decimal:
    if not isinstance(node, yaml.ScalarNode):
        raise CatalogFileError(source, _NUMBER, _line(node), where)
    if node.tag == _TAG + "int":
        value = Decimal(_CONSTRUCTOR.construct_yaml_int(node))
    elif node.tag == _TAG + "float":
        as_float = _CONSTRUCTOR.construct_yaml_float(node)
        if not math.isfinite(as_float):
            raise CatalogFileError(source, _NUMBER, _line(node), where)
        try:
            # From the text, so 12.30 stays exactly 12.30 rather than its binary float neighbour.
            value = Decimal(str(node.value).replace("_", ""))
        except InvalidOperation:
            value = Decimal(repr(as_float))
    else:
        hint = ""
        if node.tag == _TAG + "str" and _is_decimal(str(node.value)):
            hint = f", not text: write {str(node.value).strip()} without quotes"
        raise CatalogFileError(source, _NUMBER + hint, _line(node), where)
    if value < 0:
        raise CatalogFileError(source, _NUMBER, _line(node), where)
    return value


def _is_decimal(text: str) -> bool:
    try:
        return Decimal(text.strip()).is_finite()
    except InvalidOperation:
        return False


def _stock(node: yaml.Node, source: str, where: str) -> int | None:
    if _is_null(node):
        return None
    if not isinstance(node, yaml.ScalarNode) or node.tag != _TAG + "int":
        raise CatalogFileError(source, _WHOLE, _line(node), where)
    stock = _CONSTRUCTOR.construct_yaml_int(node)
    if stock < 0:
        raise CatalogFileError(source, _WHOLE, _line(node), where)
    return int(stock)


def _variants(node: yaml.Node, source: str, where: str) -> dict[str, tuple[str, ...]]:
    if _is_null(node):
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise CatalogFileError(source, "must map each option to its values, like `size: [S, M, L]`", _line(node), where)
    variants: dict[str, tuple[str, ...]] = {}
    owner: dict[tuple[str, ...], str] = {}  # value words -> the option that has them
    for option, (key_node, values_node) in _mapping_fields(node, source, where).items():
        path = f"{where}.{option}"
        if not option.strip():
            raise CatalogFileError(source, "option names must not be empty", _line(key_node), where)
        if not isinstance(values_node, yaml.SequenceNode):
            raise CatalogFileError(source, "must be a list of values, like [S, M, L]", _line(values_node), path)
        if not values_node.value:
            raise CatalogFileError(source, "must list at least one value", _line(values_node), path)
        values: list[str] = []
        for index, value_node in enumerate(values_node.value):
            value = _text(value_node, source, f"{path}[{index}]").strip()
            problem = check_option_value(value)
            if problem:
                raise CatalogFileError(source, problem, _line(value_node), f"{path}[{index}]")
            key = option_value_key(value)
            if key in owner:
                # A shopper's word must pick one value of one option, or it would be a guess.
                same = "of this option" if owner[key] == option else f"of option {owner[key]!r}"
                raise CatalogFileError(
                    source, f"{value!r} is already a value {same}", _line(value_node), f"{path}[{index}]"
                )
            owner[key] = option
            values.append(value)
        variants[option] = tuple(values)
    return variants
