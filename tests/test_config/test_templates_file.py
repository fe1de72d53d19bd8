"""The shop file's `templates:` section: utility templates for order updates after the 24-hour window, and
every mistake one line naming the file, the line and the field."""

from __future__ import annotations

import pytest

from config.catalog_file import CatalogFileError
from config.shop_file import parse_shop_text
from config.templates_file import render_body

# Line 5: shipped (and the section's first line), 6: its fields, 8: its en body, 9: its zh_HK body, 11: the
# first line of order_confirmed.
BASE = """\
shop: {name: Blossom, currency: HKD, page_id: "1000000000001"}
products:
  - {code: A, name: Dress, price: 100}
templates:
  shipped:
    fields: [order_number, carrier, tracking_number]
    languages:
      en: "Order {{1}} is on its way with {{2}}, tracking number {{3}}."
      zh_HK: "訂單 {{1}} 已由 {{2}} 寄出，追蹤編號 {{3}}。"
  order_confirmed:
    fields: [order_number, total]
    languages: {en: "Order {{1}} is confirmed: {{2}}."}
"""


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def test_the_section_parses_into_templates_with_their_fields() -> None:
    shipped, confirmed = parse_shop_text(BASE, "shop.yaml").templates
    assert (shipped.name, shipped.fields, shipped.languages) == (
        "shipped",
        ("order_number", "carrier", "tracking_number"),
        ("en", "zh_HK"),
    )
    assert confirmed.params({"order_number": "PO-7", "total": "HK$300", "carrier": "x"}) == ["PO-7", "HK$300"]
    body = shipped.bodies["zh_HK"]
    assert render_body(body, ["PO-7", "順豐", "SF1"]) == "訂單 PO-7 已由 順豐 寄出，追蹤編號 SF1。"


def test_no_section_means_no_templates() -> None:
    assert parse_shop_text(BASE[: BASE.index("templates:")], "shop.yaml").templates == ()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  shipped:\n", "  delivered_soon:\n", "shop.yaml:5: templates.delivered_soon: unknown template (expected "),
        (
            "[order_number, carrier, tracking_number]",
            "[order_number, courier, tracking_number]",
            "shop.yaml:6: templates.shipped.fields[1]: unknown order field (expected one of ",
        ),
        (
            "tracking number {{3}}.",
            "tracking number.",
            "shop.yaml:8: templates.shipped.languages.en: must use "
            "{{1}}, {{2}}, {{3}} (one per name in fields), not 1, 2",
        ),
        (
            "追蹤編號 {{3}}",
            "追蹤編號 {{order}}",
            "shop.yaml:9: templates.shipped.languages.zh_HK: parameters must be numbered like {{1}}, {{2}}",
        ),
        (
            "      zh_HK:",
            "      Chinese:",
            "shop.yaml:9: templates.shipped.languages.Chinese: must be a language code like en, en_US or zh_HK",
        ),
        (
            '    languages: {en: "Order {{1}} is confirmed: {{2}}."}\n',
            "",
            "shop.yaml:11: templates.order_confirmed.languages: must map each language",
        ),
        ('page_id: "1000000000001"', "timezone: UTC", "shop.yaml:5: templates: templates need shop.page_id"),
    ],
)
def test_each_mistake_names_its_field(old: str, new: str, message: str) -> None:
    with pytest.raises(CatalogFileError) as caught:
        parse_shop_text(edit(old, new), "shop.yaml")
    assert str(caught.value).startswith(message), str(caught.value)
