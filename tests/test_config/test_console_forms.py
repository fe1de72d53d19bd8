"""The console's forms read by the shop file's parsers (config/console_forms.py): the same values and
refusals as the YAML, each refusal naming the form's input."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from carts.order_rules import OrderRules
from config.console_forms import FormError, parse_membership_form, parse_settings_form
from config.shop_file import parse_shop_text

SHOP = {"shop.name": "Blossom 花語", "shop.currency": "HKD", "shop.timezone": "Asia/Hong_Kong", "shop.language": "en"}
YAML = """
shop: {name: Blossom 花語, currency: HKD, timezone: Asia/Hong_Kong}
products: [{code: A, name: Rose, price: 380}]
membership:
  carry_over: true
  tiers:
    - {key: member, name: Member, spend: 0}
    - {key: gold, name: Gold, spend: 5000, earn: {points: 2, per: 20}, express_upgrade: 3000, bonus: 500}
  referral:
    levels:
      - {signup: 100, first_purchase: 5%, later_purchase: 10}
"""


def test_the_membership_form_reads_as_the_file_does() -> None:
    form = {
        "carry_over": "true",
        "tiers[0].key": "member",
        "tiers[0].name": "Member",
        "tiers[0].spend": "0",
        # a blank row between two tiers is no tier
        "tiers[2].key": "gold",
        "tiers[2].name": "Gold",
        "tiers[2].spend": "5000",
        "tiers[2].earn.points": "2",
        "tiers[2].earn.per": "20",
        "tiers[2].express_upgrade": "3000",
        "tiers[2].bonus": "500",
        "referral.levels[0].signup": "100",
        "referral.levels[0].first_purchase": "5%",
        "referral.levels[0].later_purchase": "10",
    }
    assert parse_membership_form(form) == parse_shop_text(YAML).membership


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        # the refusal names the form's row (2), not the tier's place in the list (1)
        ({"tiers[2].spend": "lots"}, "tiers[2].spend", "must be a number >= 0"),
        ({"tiers[2].earn.points": "-1"}, "tiers[2].earn.points", "must be a whole number from 0 to 10000000"),
        ({"tiers[2].express_upgrade": "[1, 2]"}, "tiers[2].express_upgrade", "must be a number above 0"),
        (
            {"referral.levels[2].signup": "{a: 1}"},
            "referral.levels[2].signup",
            "must be a whole number from 0 to 10000000",
        ),
        ({"tiers[0].key": ""}, "tiers[0].key", "missing"),
        ({"carry_over": "maybe"}, "carry_over", "must be true or false"),
    ],
)
def test_a_bad_membership_value_names_its_input(change: dict[str, str], field: str, problem: str) -> None:
    form = {
        "tiers[0].key": "member",
        "tiers[0].name": "Member",
        "tiers[0].spend": "0",
        "tiers[2].key": "gold",
        "tiers[2].name": "Gold",
        "tiers[2].spend": "5000",
        **change,
    }
    with pytest.raises(FormError) as refused:
        parse_membership_form(form)
    assert (refused.value.field, refused.value.problem) == (field, problem)


def test_settings_keep_the_time_to_pay_per_method_the_form_does_not_show() -> None:
    current = OrderRules(timedelta(hours=48), {"cash_on_pickup": timedelta(days=7)}, timedelta(hours=6))
    info, orders = parse_settings_form({**SHOP, "orders.pay_within": "1d12h", "orders.remind_before": "never"}, current)
    assert (info.name, info.timezone) == ("Blossom 花語", "Asia/Hong_Kong")
    assert orders == OrderRules(timedelta(hours=36), {"cash_on_pickup": timedelta(days=7)}, None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"shop.timezone": "Hong Kong"}, "shop.timezone"),
        ({"shop.currency": "HK$"}, "shop.currency"),
        ({"shop.language": "zh"}, "shop.language"),
        ({"shop.name": ""}, "shop.name"),
        ({"orders.pay_within": "0m"}, "orders.pay_within"),
    ],
)
def test_bad_settings_name_their_input(change: dict[str, str], field: str) -> None:
    with pytest.raises(FormError) as refused:
        parse_settings_form({**SHOP, **change}, OrderRules())
    assert refused.value.field == field


def test_a_typed_number_is_read_as_yaml_reads_it_and_words_stay_words() -> None:
    form = {"tiers[0].key": "1", "tiers[0].name": "007", "tiers[0].spend": "0", "redeem_cap_percent": "12.5"}
    program = parse_membership_form(form)
    assert (program.tiers[0].key, program.tiers[0].name) == ("1", "007")
    assert program.redeem_cap_percent == Decimal("12.5")
