"""The shop file's `membership:` section (config/membership_file.py): the sample, and each mistake named."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from config.catalog_file import CatalogFileError
from config.shop_file import load_shop_file, parse_shop_text
from crm_bridge.rules import Reward

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "samples" / "demo_shop.yaml"
HEAD = """shop: {name: Test, currency: HKD}
products:
  - {code: A, name: Dress, price: 100}
membership:
"""


def test_the_sample_shop_has_a_membership_programme() -> None:
    program = load_shop_file(SAMPLE).membership
    assert program is not None
    assert [t.key for t in program.tiers] == ["member", "silver", "gold"]
    silver = program.tiers[1]
    assert (silver.threshold, silver.earn_points, silver.earn_per, silver.express_upgrade, silver.bonus) == (
        Decimal(3000),
        3,
        Decimal(40),
        Decimal(2000),
        200,
    )
    assert (program.expiry_months, program.return_window_days, program.redeem_cap_percent) == (24, 7, Decimal(50))
    assert program.referral.levels[0].later_purchase == Reward(percent=Decimal(5))
    assert program.page_username == "blossomflorist"


def test_a_minimal_section_takes_the_defaults() -> None:
    shop = parse_shop_text(HEAD + "  points_expire_months: never\n  tiers: [{key: member, name: Member, spend: 0}]\n")
    assert shop.membership is not None
    assert (shop.membership.expiry_months, shop.membership.tiers[0].earn_per, shop.membership.referral.levels) == (
        None,
        Decimal(20),
        (),
    )


def test_no_section_no_programme() -> None:
    assert parse_shop_text(HEAD.replace("membership:\n", "")).membership is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  period_months: 12\n", "shop.yaml:5: membership.tiers: missing"),
        ("  tiers: [{key: m, name: M, spend: 5}]\n", "shop.yaml:5: membership.tiers[0].spend: the first tier"),
        (
            "  tiers:\n    - {key: m, name: M, spend: 0}\n    - {key: g, name: G, spend: 0}\n",
            "shop.yaml:7: membership.tiers[1].spend: must be more than",
        ),
        (
            "  tiers:\n    - {key: m, name: M, spend: 0}\n    - {key: m, name: G, spend: 9}\n",
            "shop.yaml:7: membership.tiers[1].key: duplicate key 'm'",
        ),
        (
            "  tiers: [{key: m, name: M, spend: 0, earn: {per: 0}}]\n",
            "membership.tiers[0].earn.per: must be a number above 0",
        ),
        ("  tiers: [{key: m, name: M, spend: 0, colour: red}]\n", "membership.tiers[0].colour: unknown field"),
        ("  points_expire_months: soon\n  tiers: [{key: m, name: M, spend: 0}]\n", "points_expire_months: must be"),
        ("  carry_over: yes please\n  tiers: [{key: m, name: M, spend: 0}]\n", "carry_over: must be true or false"),
        (
            "  tiers: [{key: m, name: M, spend: 0}]\n  referral: {levels: [{}, {}, {}, {}]}\n",
            "membership.referral.levels: must be a list of at most 3 levels",
        ),
        (
            "  tiers: [{key: m, name: M, spend: 0}]\n  referral: {levels: [{later_purchase: 120%}]}\n",
            "membership.referral.levels[0].later_purchase: a percentage must be",
        ),
        (
            "  tiers: [{key: m, name: M, spend: 0}]\n  referral: {levels: [{signup: -5}]}\n",
            "membership.referral.levels[0].signup: must be a whole number from 0",
        ),
        ("  tiers: [{key: m, name: M, spend: 0}]\n  page_username: my page\n", "membership.page_username: must be"),
        # Express upgrades that could never work as shortcuts: on the base tier, above the tier's own spend,
        # a higher tier's at or below a lower one's.
        (
            "  tiers: [{key: m, name: M, spend: 0, express_upgrade: 100}]\n",
            "shop.yaml:5: membership.tiers[0].express_upgrade: the first tier needs no express upgrade",
        ),
        (
            "  tiers:\n    - {key: m, name: M, spend: 0}\n"
            "    - {key: s, name: S, spend: 3000, express_upgrade: 3500}\n",
            "shop.yaml:7: membership.tiers[1].express_upgrade: must be at most the tier's spend (3000)",
        ),
        (
            "  tiers:\n    - {key: m, name: M, spend: 0}\n    - {key: s, name: S, spend: 3000, express_upgrade: 2000}\n"
            "    - {key: b, name: B, spend: 5000}\n    - {key: g, name: G, spend: 10000, express_upgrade: 1500}\n",
            "shop.yaml:9: membership.tiers[3].express_upgrade: must be more than membership.tiers[1]'s"
            " express_upgrade (2000)",
        ),
    ],
)
def test_mistakes_name_the_file_line_and_field(body: str, message: str) -> None:
    with pytest.raises(CatalogFileError) as caught:
        parse_shop_text(HEAD + body, "shop.yaml")
    assert message in str(caught.value)
