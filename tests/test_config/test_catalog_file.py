"""Tests for config.catalog_file: the sample catalog loads, and every mistake is one line naming the
file, the line and the field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from textwrap import dedent

import pytest
import yaml

from config.catalog_file import (
    CatalogFileError,
    ProductConfig,
    catalog_entries,
    compose_yaml,
    load_catalog_file,
    parse_catalog_text,
    parse_products_node,
)
from parsers.order_comment import OrderParser

SAMPLE = Path(__file__).parents[1] / "data" / "catalog_sample.yaml"


def test_sample_catalog_loads_into_typed_products() -> None:
    products = load_catalog_file(SAMPLE)
    assert [p.code for p in products] == ["A", "A1", "B", "Flower", "玫瑰"]
    dress, scarf, shirt, _, roses = products
    assert dress == ProductConfig(
        code="A",
        name="Floral wrap dress",
        price=Decimal("1280"),
        stock=12,
        variants={"size": ("S", "M", "L", "XL"), "colour": ("Red", "Black", "紅色", "Light Blue")},
    )
    assert scarf.price == Decimal("450.50")  # exact, not a binary float
    assert shirt.stock is None
    assert roses.stock == 0
    assert roses.variants == {"顏色": ("紅色", "白色", "粉紅色")}
    assert dress.line == 6


def test_sample_catalog_builds_a_parser() -> None:
    parser = OrderParser(catalog_entries(load_catalog_file(SAMPLE)))
    result = parser.parse("a+1 l 紅色, FLOWER x2, 玫瑰+1粉紅色, 取消A1")
    assert [(i.code, i.qty, i.variant) for i in result.items] == [
        ("A", 1, {"size": "L", "colour": "紅色"}),
        ("Flower", 2, None),
        ("玫瑰", 1, {"顏色": "粉紅色"}),
    ]
    assert [(r.code, r.qty) for r in result.removals] == [("A1", None)]


def test_json_is_valid_yaml_even_with_tabs(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    data = {"products": [{"code": "A", "name": "Dress", "price": 12.5, "variants": {"size": ["S", "M"]}}]}
    path.write_text(json.dumps(data, indent="\t", ensure_ascii=False), encoding="utf-8")
    (product,) = load_catalog_file(path)
    assert product.price == Decimal("12.5")
    assert product.variants == {"size": ("S", "M")}


def test_yaml_booleans_and_numbers_stay_as_written() -> None:
    (product,) = parse_catalog_text(
        "products:\n  - {code: ON, name: 123, price: 1_000, variants: {answer: [yes, no], size: [36, 38]}}\n"
    )
    assert product.code == "ON"
    assert product.name == "123"
    assert product.price == Decimal("1000")
    assert product.variants == {"answer": ("yes", "no"), "size": ("36", "38")}


def test_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_bytes("\ufeffproducts:\n  - {code: A, name: Dress, price: 1}\n".encode())
    assert load_catalog_file(path)[0].code == "A"


def _error(text: str) -> str:
    with pytest.raises(CatalogFileError) as caught:
        parse_catalog_text(dedent(text).lstrip("\n"), "shop.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


# Rows below add products to this one, so it shares their indentation (dedent() removes it).
GOOD = """
            products:
              - code: A
                name: Dress
                price: 100"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "shop.yaml:1: products: missing (the file is empty)", id="empty"),
        pytest.param("# nothing yet\n", "shop.yaml:1: products: missing (the file is empty)", id="comment-only"),
        pytest.param("- A\n", "shop.yaml:1: catalog: must be a mapping with a `products:` list", id="root-list"),
        pytest.param("shop: x\n", "shop.yaml:1: shop: unknown field (expected products)", id="unknown-top-key"),
        pytest.param("products: A\n", "shop.yaml:1: products: must be a list of products", id="not-a-list"),
        pytest.param("products: []\n", "shop.yaml:1: products: must list at least one product", id="no-products"),
        pytest.param(
            "products:\n  - A\n", "shop.yaml:2: products[0]: must be a mapping with code, name and price", id="scalar"
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
            """,
            "shop.yaml:2: products[0].price: missing",
            id="missing-price",
        ),
        pytest.param(
            """
            products:
              - name: Dress
                price: 1
            """,
            "shop.yaml:2: products[0].code: missing",
            id="missing-code",
        ),
        pytest.param(
            """
            products:
              - code:
                name: Dress
                price: 1
            """,
            "shop.yaml:2: products[0].code: missing",
            id="null-code",
        ),
        pytest.param(
            GOOD
            + """
              - code: B
                name: Shirt
                price: -1
            """,
            "shop.yaml:7: products[1].price: must be a number >= 0",
            id="negative-price",
        ),
        pytest.param(
            GOOD
            + """
              - code: B
                name: Shirt
                price: cheap
            """,
            "shop.yaml:7: products[1].price: must be a number >= 0",
            id="text-price",
        ),
        pytest.param(
            GOOD
            + """
              - code: B
                name: Shirt
                price: "390"
            """,
            "shop.yaml:7: products[1].price: must be a number >= 0, not text: write 390 without quotes",
            id="quoted-price",
        ),
        pytest.param(
            """
            products:
              - {code: A, name: Dress, price: .nan}
            """,
            "shop.yaml:2: products[0].price: must be a number >= 0",
            id="nan-price",
        ),
        pytest.param(
            """
            products:
              - {code: A, name: Dress, price: true}
            """,
            "shop.yaml:2: products[0].price: must be a number >= 0",
            id="bool-price",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                stock: 2.5
            """,
            "shop.yaml:5: products[0].stock: must be a whole number >= 0",
            id="fraction-stock",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                stock: -3
            """,
            "shop.yaml:5: products[0].stock: must be a whole number >= 0",
            id="negative-stock",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                colour: red
            """,
            "shop.yaml:5: products[0].colour: unknown field (expected code, name, price, stock, variants, nicknames, "
            "name_keyword)",
            id="unknown-field",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                price: 2
            """,
            "shop.yaml:5: products[0].price: given twice",
            id="duplicate-field",
        ),
        pytest.param(
            """
            products:
              - code: 1A
                name: Dress
                price: 1
            """,
            "shop.yaml:2: products[0].code: must be letters and digits only, starting with a letter "
            "(like A, A1, Flower, 玫瑰)",
            id="code-starts-with-digit",
        ),
        pytest.param(
            """
            products:
              - code: A-1
                name: Dress
                price: 1
            """,
            "shop.yaml:2: products[0].code: must be letters and digits only, starting with a letter "
            "(like A, A1, Flower, 玫瑰)",
            id="code-with-dash",
        ),
        pytest.param(
            """
            products:
              - code: [A]
                name: Dress
                price: 1
            """,
            "shop.yaml:2: products[0].code: must be text",
            id="code-list",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: "  "
                price: 1
            """,
            "shop.yaml:3: products[0].name: must not be empty",
            id="blank-name",
        ),
        pytest.param(
            GOOD
            + """
              - code: B
                name: Shirt
                price: 1
              - code: a
                name: Another dress
                price: 1
            """,
            "shop.yaml:8: products[2].code: duplicate code 'a' (products[0] at line 2 is 'A')",
            id="duplicate-code-case-insensitive",
        ),
        pytest.param(
            GOOD
            + """
              - code: Ａ
                name: Full-width A
                price: 1
            """,
            "shop.yaml:5: products[1].code: duplicate code 'Ａ' (products[0] at line 2 is 'A')",
            id="duplicate-code-full-width",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                variants: [S, M]
            """,
            "shop.yaml:5: products[0].variants: must map each option to its values, like `size: [S, M, L]`",
            id="variants-list",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                variants:
                  size: S
            """,
            "shop.yaml:6: products[0].variants.size: must be a list of values, like [S, M, L]",
            id="variant-scalar",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                variants:
                  size: []
            """,
            "shop.yaml:6: products[0].variants.size: must list at least one value",
            id="variant-empty",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                variants:
                  size: [S, M, "!!"]
            """,
            "shop.yaml:6: products[0].variants.size[2]: must contain a letter or a digit (and not start with @ or #)",
            id="variant-value-punctuation",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                variants:
                  size: [S, M]
                  fit:
                    - Slim
                    - m
            """,
            "shop.yaml:9: products[0].variants.fit[1]: 'm' is already a value of option 'size'",
            id="variant-value-in-two-options",
        ),
        pytest.param(
            """
            products:
              - code: A
                name: Dress
                price: 1
                variants:
                  size: [S, M, s]
            """,
            "shop.yaml:6: products[0].variants.size[2]: 's' is already a value of this option",
            id="variant-value-twice",
        ),
        pytest.param(
            "products:\n  - code: A\n\tname: B\n",
            "shop.yaml:3: invalid YAML: found character '\\t' that cannot start any token",
            id="tab-in-yaml",
        ),
        pytest.param(
            "products: [\n",
            "shop.yaml:2: invalid YAML: expected the node content, but found '<stream end>'",
            id="unclosed",
        ),
        pytest.param(
            "products: []\n---\nproducts: []\n",
            "shop.yaml:2: invalid YAML: expected a single document in the stream, but found another document",
            id="two-documents",
        ),
    ],
)
def test_catalog_errors_name_file_line_and_field(text: str, message: str) -> None:
    assert _error(text) == message


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CatalogFileError) as caught:
        load_catalog_file(path)
    assert str(caught.value) == f"{path}: no such file"


def test_binary_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_bytes(b"products:\n  - code: \xff\n")
    with pytest.raises(CatalogFileError, match=r"shop\.yaml: is not UTF-8 text"):
        load_catalog_file(path)


def test_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="cannot be read"):
        load_catalog_file(tmp_path)


def test_products_node_inside_a_bigger_file() -> None:
    """Issue 5's shop file nests the same entries; errors keep the path it gives."""
    text = dedent(
        """
        shop:
          name: Demo
          catalog:
            - code: A
              name: Dress
              price: 1
            - code: B
              name: Shirt
              price: free
        """
    ).lstrip("\n")
    root = compose_yaml(text, "shop.yaml")
    assert isinstance(root, yaml.MappingNode)
    shop = root.value[0][1]
    catalog = shop.value[1][1]
    with pytest.raises(CatalogFileError) as caught:
        parse_products_node(catalog, "shop.yaml", "shop.catalog")
    assert str(caught.value) == "shop.yaml:9: shop.catalog[1].price: must be a number >= 0"
    assert caught.value.line == 9
    assert caught.value.where == "shop.catalog[1].price"
