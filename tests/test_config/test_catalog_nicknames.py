"""The catalog file's `nicknames` and `name_keyword` (issue 20): read by the order parser's rules, errors
naming the file, line and field, and the parser's keywords built from them."""

from __future__ import annotations

import pytest

from config.catalog_file import CatalogFileError, catalog_entries, parse_catalog_text
from parsers.order_comment import OrderParser

GOOD = """\
products:
  - code: A
    name: 碎花裙
    price: 380
    nicknames: [花裙, floral  dress]
  - code: B
    name: 靚
    price: 99
    name_keyword: false
  - code: C
    name: 玫瑰花束 (rose bouquet)
    price: 520
"""


def test_nicknames_and_names_become_the_parsers_keywords() -> None:
    products = parse_catalog_text(GOOD, "shop.yaml")
    assert products[0].nicknames == ("花裙", "floral dress") and products[0].name_keyword
    assert products[1].nicknames == () and not products[1].name_keyword
    entries = catalog_entries(products)
    # The name is a keyword unless turned off, or unless it cannot be one (brackets).
    assert [e.keywords for e in entries] == [("碎花裙", "花裙", "floral dress"), (), ()]
    parser = OrderParser(entries)
    assert [(i.code, i.qty) for i in parser.parse("我要兩件花裙").items] == [("A", 2)]
    assert [(i.code, i.qty) for i in parser.parse("floral dress x2").items] == [("A", 2)]
    assert parser.parse("好靚呀 要").items == ()  # a name turned off never orders


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("nicknames: 花裙", "shop.yaml:5: products[0].nicknames: must be a list of words, like [紅裙, red dress]"),
        ("nicknames: [花裙, x]",
         "shop.yaml:5: products[0].nicknames[1]: must be at least 2 letters (or a Chinese word)"),
        ("nicknames: [花裙, 花裙]", "shop.yaml:5: products[0].nicknames[1]: '花裙' is listed twice"),
        ("nicknames: [red-dress]", "shop.yaml:5: products[0].nicknames[0]: must be words of letters and digits, "
         "starting with a letter (like 紅色裙, rose bouquet)"),
        ("nicknames: [b]", "shop.yaml:5: products[0].nicknames[0]: must be at least 2 letters (or a Chinese word)"),
        ("nicknames: [Bb]", "shop.yaml:2: products[0].nicknames[0]: 'Bb' is the code of products[1]: a code always "
         "means its own product"),
        ("name_keyword: yes please", "shop.yaml:5: products[0].name_keyword: must be true or false"),
    ],
)  # fmt: skip
def test_bad_nicknames_name_the_file_line_and_field(field: str, message: str) -> None:
    first = f"products:\n  - code: A\n    name: 碎花裙\n    price: 380\n    {field}\n"
    text = first + "  - code: BB\n    name: x\n    price: 1\n"
    with pytest.raises(CatalogFileError) as caught:
        parse_catalog_text(text, "shop.yaml")
    assert str(caught.value) == message
