"""The shop file's payments: section and shop.language: read, and refused naming the line and field."""

from __future__ import annotations

import pytest

from carts.payment_rules import PaymentKind, PaymentMethod, check_payment_choice
from config.catalog_file import CatalogFileError
from config.shop_file import parse_shop_text

HEAD = """shop: {name: Blossom, currency: HKD, language: zh_Hant}
products:
  - {code: A, name: Dress, price: 100, stock: 1}
"""


def test_payment_methods_and_language_are_read_in_the_order_shoppers_see_them() -> None:
    shop = parse_shop_text(
        HEAD
        + """payments:
  stripe: {enabled: true}
  cash_on_pickup: true
  bank_transfer: {bank: HSBC, account: "123-456789-001", name: Blossom Ltd}
  payme: {link: "https://payme.hsbc/blossom", name: Blossom}
  fps: {id: "1234567", name: Blossom}
""",
        "shop.yaml",
    )
    assert shop.shop.language == "zh_Hant"
    assert shop.payments == (
        PaymentMethod(PaymentKind.FPS, fps_id="1234567", name="Blossom"),
        PaymentMethod(PaymentKind.PAYME, payme_link="https://payme.hsbc/blossom", name="Blossom"),
        PaymentMethod(PaymentKind.BANK_TRANSFER, bank="HSBC", account="123-456789-001", name="Blossom Ltd"),
        PaymentMethod(PaymentKind.CASH_ON_PICKUP),
        PaymentMethod(PaymentKind.STRIPE),
    )


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ('  fps: {id: "12ab", name: B}\n', "shop.yaml:5: payments.fps.id: must be the shop's FPS id: 7 to 9 digits"),
        ("  fps: {id: '1234567'}\n", "shop.yaml:5: payments.fps.name: missing"),
        ("  payme: {name: B}\n", "shop.yaml:5: payments.payme: give either link (your PayMe payment link) or phone"),
        (
            '  payme: {link: "https://evil.example/x", name: B}\n',
            "shop.yaml:5: payments.payme.link: must be a PayMe link, like https://payme.hsbc/yourshop",
        ),
        ("  bitcoin: {}\n", "shop.yaml:5: payments.bitcoin: unknown payment method"),
        ("  cash_on_pickup: yes please\n", "shop.yaml:5: payments.cash_on_pickup: must be true or false"),
    ],
)
def test_bad_payment_methods_name_the_field(section: str, error: str) -> None:
    with pytest.raises(CatalogFileError) as caught:
        parse_shop_text(HEAD + "payments:\n" + section, "shop.yaml")
    assert str(caught.value).startswith(error)


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(CatalogFileError, match=r"shop.yaml:1: shop.language: must be one of en, zh_Hant"):
        parse_shop_text(HEAD.replace("zh_Hant", "klingon"), "shop.yaml")


def test_a_shoppers_choice_must_be_the_shops_and_cash_only_at_pickup() -> None:
    methods = (PaymentMethod(PaymentKind.FPS, fps_id="1234567", name="B"), PaymentMethod(PaymentKind.CASH_ON_PICKUP))
    assert check_payment_choice(methods, "fps", "delivery") is None
    assert check_payment_choice(methods, "stripe", "delivery") == "Please choose how you will pay."
    assert check_payment_choice(methods, "cash_on_pickup", "delivery") is not None
    assert check_payment_choice(methods, "cash_on_pickup", "pickup") is None
    assert check_payment_choice((), "", "delivery") is None
