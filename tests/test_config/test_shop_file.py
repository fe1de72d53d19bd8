"""Tests for config.shop_file: the sample shop loads, and every mistake is one line naming the file, the line
and the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from config.catalog_file import CatalogFileError, catalog_entries
from config.shop_file import (
    CampaignProductConfig,
    ShopFileError,
    ShopInfo,
    load_shop_file,
    parse_shop_text,
    parse_time,
)
from parsers.order_comment import CatalogEntry, OrderParser

SAMPLE = Path(__file__).parents[2] / "config" / "samples" / "demo_shop.yaml"

# Line numbers matter below: 1 shop, 6 products, 9 campaigns, 10 key, 12 post_id, 14 ends_at, 16-18 products.
# Written out, not imported: the test is of the message.
ROOTS = (
    "shop, products, campaigns, faq, membership, orders, shipping, payments, templates, instagram, messenger_profile,"
    " segments"
)

BASE = """\
shop:
  name: Blossom Florist
  currency: HKD
  page_id: "1000000000001"
  timezone: Asia/Hong_Kong
products:
  - {code: A, name: Floral wrap dress, price: 1280, stock: 12, variants: {size: [S, M, L]}}
  - {code: B, name: Linen shirt, price: 890}
campaigns:
  - key: xmas-live
    title: Christmas live sale
    post_id: "1000000000001_2000000000001"
    starts_at: 2026-12-20 19:00
    ends_at: 2026-12-20 23:00
    products:
      - product: A
        code: Flower
      - product: B
"""

SECOND_CAMPAIGN = """\
  - key: boxing-day
    title: Boxing day
    post_id: "1000000000001_2000000000001"
    starts_at: 2026-12-20 22:00
    ends_at: 2026-12-26 23:00
    products: [{product: A}]
"""


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, old
    return BASE.replace(old, new)


def add_field(line: str) -> str:
    """BASE with one more campaign field, at line 15 (before `products:`)."""
    return edit("    products:\n", f"    {line}\n    products:\n")


def test_base_file_parses() -> None:
    shop = parse_shop_text(BASE, "shop.yaml")
    assert shop.shop == ShopInfo("Blossom Florist", "HKD", "1000000000001", "Asia/Hong_Kong")
    assert [p.code for p in shop.products] == ["A", "B"]
    (campaign,) = shop.campaigns
    assert campaign.key == "xmas-live"
    assert campaign.page_id == "1000000000001"
    # Naive times are Hong Kong time (UTC+8), stored as aware UTC.
    assert campaign.starts_at == datetime(2026, 12, 20, 11, 0, tzinfo=UTC)
    assert campaign.ends_at == datetime(2026, 12, 20, 15, 0, tzinfo=UTC)
    assert campaign.products == (CampaignProductConfig("A", "Flower"), CampaignProductConfig("B", "B"))
    assert campaign.hold_minutes == 30
    assert campaign.per_shopper_limit is None
    assert (campaign.pinned_text, campaign.closed_reply, campaign.live_video_id, campaign.next_live) == (
        None,
        None,
        None,
        False,
    )


INVALID = [
    ("ends before starts", edit("ends_at: 2026-12-20 23:00", "ends_at: 2026-12-20 18:00"),
     "shop.yaml:14: campaigns[0].ends_at: must be after starts_at"),
    ("ends at starts", edit("ends_at: 2026-12-20 23:00", "ends_at: 2026-12-20T11:00Z"),
     "shop.yaml:14: campaigns[0].ends_at: must be after starts_at"),
    ("empty file", "", "shop.yaml:1: shop: missing (the file is empty)"),
    ("not a mapping", "- shop\n", "shop.yaml:1: shop file: must be a mapping with shop:, products: and campaigns:"),
    ("invalid YAML", edit("  currency: HKD", "  currency: [HKD"),
     "shop.yaml:4: invalid YAML: expected ',' or ']', but got ':'"),
    ("nested too deeply", "[" * 100_000, "shop.yaml: invalid YAML: nested too deeply"),
    ("unknown top field", BASE + "tiers: []\n",
     "shop.yaml:19: tiers: unknown field (expected " + ROOTS + ")"),
    ("no shop", BASE[BASE.index("products:"):], "shop.yaml:1: shop: missing"),
    ("no products", edit("products:\n  - {code: A", "goods:\n  - {code: A"),
     "shop.yaml:6: goods: unknown field (expected " + ROOTS + ")"),
    ("shop not a mapping", "shop: Blossom\n" + BASE[BASE.index("products:"):],
     "shop.yaml:1: shop: must be a mapping with name, currency, page_id, timezone, language"),
    ("unknown shop field", edit("  timezone: Asia/Hong_Kong\n", "  timezone: Asia/Hong_Kong\n  colour: pink\n"),
     "shop.yaml:6: shop.colour: unknown field (expected name, currency, page_id, timezone, language)"),
    ("shop field twice", edit("  currency: HKD\n", "  currency: HKD\n  currency: USD\n"),
     "shop.yaml:4: shop.currency: given twice"),
    ("no shop name", edit("  name: Blossom Florist\n", ""), "shop.yaml:2: shop.name: missing"),
    ("blank shop name", edit("name: Blossom Florist", 'name: "  "'), "shop.yaml:2: shop.name: must not be empty"),
    ("currency lower case", edit("currency: HKD", "currency: hkd"),
     "shop.yaml:3: shop.currency: must be 3 upper-case letters, like HKD"),
    ("no currency", edit("  currency: HKD\n", ""), "shop.yaml:2: shop.currency: missing"),
    ("page id not digits", edit('page_id: "1000000000001"', "page_id: my-shop"),
     'shop.yaml:4: shop.page_id: must be the Page\'s numeric id, like "1000000000001"'),
    ("unknown time zone", edit("timezone: Asia/Hong_Kong", "timezone: Mars/Olympus"),
     "shop.yaml:5: shop.timezone: unknown time zone 'Mars/Olympus' (use an IANA name like Asia/Hong_Kong)"),
    ("time zone path", edit("timezone: Asia/Hong_Kong", "timezone: ../../etc/passwd"),
     "shop.yaml:5: shop.timezone: unknown time zone '../../etc/passwd' (use an IANA name like Asia/Hong_Kong)"),
    # The products are the catalog file's entries, checked by config.catalog_file.
    ("unknown product field", edit("stock: 12,", "stok: 12,"),
     "shop.yaml:7: products[0].stok: unknown field (expected code, name, price, stock, variants, nicknames, "
     "name_keyword)"),
    ("duplicate product code", edit("{code: B,", "{code: a,"),
     "shop.yaml:8: products[1].code: duplicate code 'a' (products[0] at line 7 is 'A')"),
    ("empty product list", edit(
        "  - {code: A, name: Floral wrap dress, price: 1280, stock: 12, variants: {size: [S, M, L]}}\n"
        "  - {code: B, name: Linen shirt, price: 890}\n", "  []\n"),
     "shop.yaml:7: products: must list at least one product"),
    # ...and what the product table cannot keep.
    ("price past cents", edit("price: 890}", "price: 890.125}"),
     "shop.yaml:8: products[1].price: must have at most 2 decimal places"),
    ("price too big", edit("price: 890}", "price: 10_000_000_000}"),
     "shop.yaml:8: products[1].price: must be below 10000000000"),
    ("stock too big", edit("stock: 12,", "stock: 3000000000,"),
     "shop.yaml:7: products[0].stock: must be a whole number from 0 to 2147483647"),
    ("NUL in a name", edit("name: Linen shirt", 'name: "Linen\\0shirt"'),
     "shop.yaml:8: products[1].name: must not contain NUL characters"),
    ("product name too long", edit("name: Linen shirt", "name: " + "x" * 201),
     "shop.yaml:8: products[1].name: must be at most 200 characters"),
    # Campaigns.
    ("campaigns not a list", edit("campaigns:\n", "campaigns: xmas\nx:\n"),
     "shop.yaml:10: x: unknown field (expected " + ROOTS + ")"),
    ("campaigns a mapping", BASE[: BASE.index("campaigns:")] + "campaigns: {key: x}\n",
     "shop.yaml:9: campaigns: must be a list of campaigns"),
    ("unknown campaign field", add_field("colour: red"),
     "shop.yaml:15: campaigns[0].colour: unknown field (expected key, title, page_id, post_id, "
     "instagram_media_id, live_video_id, next_live, starts_at, ends_at, per_shopper_limit, hold_minutes, "
     "pinned_text, closed_reply, products, offers)"),
    ("no key", edit("  - key: xmas-live\n    title", "  - title"), "shop.yaml:10: campaigns[0].key: missing"),
    ("bad key", edit("key: xmas-live", "key: Xmas Live"),
     "shop.yaml:10: campaigns[0].key: must be lower-case letters, digits and hyphens (like xmas-live), "
     "at most 80 characters"),
    ("no title", edit("    title: Christmas live sale\n", ""), "shop.yaml:10: campaigns[0].title: missing"),
    ("no page at all", edit('  page_id: "1000000000001"\n', ""),
     "shop.yaml:9: campaigns[0].page_id: missing (and shop.page_id gives no default)"),
    ("no target", edit('    post_id: "1000000000001_2000000000001"\n', ""),
     "shop.yaml:10: campaigns[0]: give one of post_id, instagram_media_id, live_video_id or next_live: true"),
    ("next_live false is no target", edit('post_id: "1000000000001_2000000000001"', "next_live: false"),
     "shop.yaml:10: campaigns[0]: give one of post_id, instagram_media_id, live_video_id or next_live: true"),
    ("two targets", edit("    starts_at:", "    next_live: true\n    starts_at:"),
     "shop.yaml:13: campaigns[0].next_live: give only one of post_id, instagram_media_id, live_video_id and "
     "next_live: true (also post_id)"),
    ("next_live as text", edit('post_id: "1000000000001_2000000000001"', 'next_live: "yes"'),
     "shop.yaml:12: campaigns[0].next_live: must be true or false"),
    ("post of another Page", edit('"1000000000001_2000000000001"', '"1000000000002_2000000000001"'),
     "shop.yaml:12: campaigns[0].post_id: is a post of Page 1000000000002, not of the campaign's Page 1000000000001"),
    ("post id not an id", edit('"1000000000001_2000000000001"', "https://facebook.com/x"),
     'shop.yaml:12: campaigns[0].post_id: must be the post\'s id, like "1000000000001_2000000000001"'),
    ("live video id not digits", edit('post_id: "1000000000001_2000000000001"', "live_video_id: live1"),
     "shop.yaml:12: campaigns[0].live_video_id: must be the live video's numeric id"),
    ("no starts_at", edit("    starts_at: 2026-12-20 19:00\n", ""), "shop.yaml:10: campaigns[0].starts_at: missing"),
    ("date without time", edit("starts_at: 2026-12-20 19:00", "starts_at: 2026-12-20"),
     "shop.yaml:13: campaigns[0].starts_at: must be a date and a time, like 2026-12-20 19:00 or "
     "2026-12-20T19:00+08:00"),
    ("time not a time", edit("ends_at: 2026-12-20 23:00", "ends_at: tonight at 11:00"),
     "shop.yaml:14: campaigns[0].ends_at: must be a date and a time, like 2026-12-20 19:00 or "
     "2026-12-20T19:00+08:00"),
    ("time past the year 9999", edit("ends_at: 2026-12-20 23:00", "ends_at: 9999-12-31T23:00-05:00"),
     "shop.yaml:14: campaigns[0].ends_at: must be between the years 1 and 9999 in UTC"),
    ("time as a number", edit("ends_at: 2026-12-20 23:00", "ends_at: 1766242800"),
     "shop.yaml:14: campaigns[0].ends_at: must be a date and a time, like 2026-12-20 19:00 or "
     "2026-12-20T19:00+08:00"),
    ("limit zero", add_field("per_shopper_limit: 0"),
     "shop.yaml:15: campaigns[0].per_shopper_limit: must be a whole number from 1 to 2147483647"),
    ("limit as words", add_field("per_shopper_limit: five"),
     "shop.yaml:15: campaigns[0].per_shopper_limit: must be a whole number from 1 to 2147483647"),
    ("hold zero", add_field("hold_minutes: 0"),
     "shop.yaml:15: campaigns[0].hold_minutes: must be a whole number of minutes from 1 to 10080 (a week)"),
    ("hold over a week", add_field("hold_minutes: 10081"),
     "shop.yaml:15: campaigns[0].hold_minutes: must be a whole number of minutes from 1 to 10080 (a week)"),
    ("hold with decimals", add_field("hold_minutes: 30.5"),
     "shop.yaml:15: campaigns[0].hold_minutes: must be a whole number of minutes from 1 to 10080 (a week)"),
    ("empty pinned text", add_field('pinned_text: ""'),
     "shop.yaml:15: campaigns[0].pinned_text: must not be empty (leave it out for none)"),
    ("closed reply too long", add_field(f"closed_reply: {'x' * 2000}"),
     "shop.yaml:15: campaigns[0].closed_reply: must be at most 1999 characters"),
    ("no campaign products", edit("    products:\n      - product: A\n        code: Flower\n      - product: B\n", ""),
     "shop.yaml:10: campaigns[0].products: missing"),
    ("empty campaign products", edit("    products:\n      - product: A\n        code: Flower\n      - product: B\n",
                                     "    products: []\n"),
     "shop.yaml:15: campaigns[0].products: must list at least one product"),
    ("campaign products not a list", edit("    products:\n      - product: A\n        code: Flower\n"
                                          "      - product: B\n", "    products: A, B\n"),
     "shop.yaml:15: campaigns[0].products: must be a list like [{product: A}, {product: B, code: Flower}]"),
    ("unknown campaign product field", edit("        code: Flower", "        price: 100"),
     "shop.yaml:17: campaigns[0].products[0].price: unknown field (expected product, code)"),
    ("unknown product", edit("      - product: B", "      - product: Z"),
     "shop.yaml:18: campaigns[0].products[1].product: unknown product 'Z' (not in products:)"),
    ("product listed twice", edit("      - product: B", "      - product: a"),
     "shop.yaml:18: campaigns[0].products[1].product: product 'A' is already listed (campaigns[0].products[0])"),
    ("bad order code", edit("code: Flower", "code: 1A"),
     "shop.yaml:17: campaigns[0].products[0].code: must be letters and digits only, starting with a letter "
     "(like A, A1, Flower, 玫瑰)"),
    ("order code taken case-insensitively", edit("code: Flower", "code: b"),
     "shop.yaml:18: campaigns[0].products[1].code: duplicate code 'B' (campaigns[0].products[0] is 'b')"),
    ("duplicate campaign key", BASE + SECOND_CAMPAIGN.replace("boxing-day", "xmas-live"),
     "shop.yaml:19: campaigns[1].key: duplicate key 'xmas-live' (campaigns[0] at line 10)"),
    ("two campaigns on one post at once", BASE + SECOND_CAMPAIGN,
     "shop.yaml:21: campaigns[1].post_id: post 1000000000001_2000000000001 is also sold in campaigns[0] (xmas-live) "
     "at overlapping times"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_file_gives_one_line(text: str, message: str) -> None:
    with pytest.raises(CatalogFileError) as caught:
        parse_shop_text(text, "shop.yaml")
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_shop_errors_are_catalog_errors_with_their_parts() -> None:
    with pytest.raises(ShopFileError) as caught:
        parse_shop_text(edit("ends_at: 2026-12-20 23:00", "ends_at: 2026-12-20 18:00"), "shop.yaml")
    assert (caught.value.source, caught.value.line, caught.value.where, caught.value.problem) == (
        "shop.yaml",
        14,
        "campaigns[0].ends_at",
        "must be after starts_at",
    )


def test_one_post_may_hold_campaigns_one_after_another() -> None:
    later = SECOND_CAMPAIGN.replace("2026-12-20 22:00", "2026-12-20 23:00")
    shop = parse_shop_text(BASE + later, "shop.yaml")
    assert [c.key for c in shop.campaigns] == ["xmas-live", "boxing-day"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-12-20 19:00", datetime(2026, 12, 20, 11, 0, tzinfo=UTC)),  # shop time zone
        ("2026-12-20T19:00:30", datetime(2026, 12, 20, 11, 0, 30, tzinfo=UTC)),
        ("2026-12-20T19:00Z", datetime(2026, 12, 20, 19, 0, tzinfo=UTC)),
        ('"2026-12-20T19:00+09:00"', datetime(2026, 12, 20, 10, 0, tzinfo=UTC)),
        ("2026-12-20 19:00:00 +8", datetime(2026, 12, 20, 11, 0, tzinfo=UTC)),  # a YAML-only spelling
    ],
)
def test_times_become_aware_utc(written: str, expected: datetime) -> None:
    text = edit("starts_at: 2026-12-20 19:00", f"starts_at: {written}").replace("2026-12-20 23:00", "2026-12-21 23:00")
    assert parse_shop_text(text).campaigns[0].starts_at == expected


def test_defaults_utc_bare_post_id_page_override_and_next_live() -> None:
    text = (
        edit("  timezone: Asia/Hong_Kong\n", "")
        .replace('post_id: "1000000000001_2000000000001"', "post_id: 2000000000009\n    page_id: 1000000000042")
        .replace("    ends_at: 2026-12-20 23:00\n", "    ends_at: 2026-12-20 23:00\n    hold_minutes: 10080\n")
    )
    text += (
        "  - {key: live, title: Live, next_live: true, starts_at: 2026-12-01 00:00, ends_at: 2027-01-01 00:00,"
        " per_shopper_limit: 2, pinned_text: '  A+1 to order  ', products: [{product: B, code: 襯衫}]}\n"
    )
    post, live = parse_shop_text(text).campaigns
    assert post.page_id == "1000000000042"
    assert post.post_id == "1000000000042_2000000000009"  # as Meta's webhooks name it
    assert post.starts_at == datetime(2026, 12, 20, 19, 0, tzinfo=UTC)
    assert post.hold_minutes == 10080
    assert (live.next_live, live.post_id, live.page_id) == (True, None, "1000000000001")
    assert live.per_shopper_limit == 2
    assert live.pinned_text == "A+1 to order"
    assert live.products == (CampaignProductConfig("B", "襯衫"),)


def test_json_shop_file(tmp_path: Path) -> None:
    data = {
        "shop": {"name": "Blossom", "currency": "HKD", "page_id": 1000000000001},
        "products": [{"code": "A", "name": "Dress", "price": 12.3, "stock": 2}],
        "campaigns": [
            {
                "key": "live-1",
                "title": "Live",
                "live_video_id": "3000000000001",
                "starts_at": "2026-12-20T19:00:00+08:00",
                "ends_at": "2026-12-20T23:00:00+08:00",
                "products": [{"product": "a", "code": "Dress"}],
            }
        ],
    }
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(data, indent="\t"), encoding="utf-8")
    shop = load_shop_file(path)
    assert shop.shop.page_id == "1000000000001"
    assert shop.products[0].price == Decimal("12.3")
    (campaign,) = shop.campaigns
    assert campaign.live_video_id == "3000000000001"
    assert campaign.products == (CampaignProductConfig("A", "Dress"),)  # the product's code as configured
    assert shop.source == str(path)


def test_missing_file_and_bad_bytes(tmp_path: Path) -> None:
    with pytest.raises(ShopFileError, match=r"^.*nope\.yaml: no such file$"):
        load_shop_file(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_bytes(b"shop: \xff\n")
    with pytest.raises(ShopFileError, match=r"bad\.yaml: is not UTF-8 text \(byte 6\)$"):
        load_shop_file(tmp_path / "bad.yaml")


def test_parse_time_without_a_zone_needs_an_offset() -> None:
    assert parse_time("2026-12-20T19:00:00+08:00", None) == datetime(2026, 12, 20, 11, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="must include a UTC offset"):
        parse_time("2026-12-20T19:00:00", None)


def test_sample_shop_loads() -> None:
    shop = load_shop_file(SAMPLE)
    assert shop.shop == ShopInfo("Blossom Florist & Boutique 花漾小店", "HKD", "1000000000001", "Asia/Hong_Kong")
    assert [p.code for p in shop.products] == ["A", "A1", "B", "C", "Flower", "玫瑰", "Tulip", "Card"]
    post, live = shop.campaigns
    assert (post.key, post.post_id, post.per_shopper_limit, post.hold_minutes) == (
        "demo-post",
        "1000000000001_2000000000001",
        5,
        30,
    )
    assert post.starts_at == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Hong Kong
    assert post.ends_at == datetime(2030, 12, 31, 15, 59, tzinfo=UTC)
    assert (live.key, live.next_live) == ("next-live", True)
    assert [(p.product, p.code) for p in live.products] == [
        ("A", "A"),
        ("C", "C"),
        ("Flower", "乾花"),
        ("Tulip", "T"),
        ("玫瑰", "玫瑰"),
    ]


def test_each_sample_campaign_builds_an_order_parser() -> None:
    shop = load_shop_file(SAMPLE)
    products = {p.code: p for p in shop.products}
    for campaign in shop.campaigns:
        catalog = catalog_entries(products[entry.product] for entry in campaign.products)
        entries = [
            CatalogEntry(code=entry.code, name=product.name, variants=product.variants)
            for entry, product in zip(campaign.products, catalog, strict=True)
        ]
        parser = OrderParser(entries)
        assert set(parser.codes) == {entry.code for entry in campaign.products}
    result = parser.parse("乾花+1, 玫瑰+2 白色, c+1 淺灰 L")
    assert [(i.code, i.qty, i.variant) for i in result.items] == [
        ("乾花", 1, None),
        ("玫瑰", 2, {"顏色": "白色"}),
        ("C", 1, {"顏色": "淺灰", "size": "L"}),
    ]


INSTAGRAM = """\
instagram:
  - account_id: "17841400000000001"
    username: "@blossomflorist"
"""


def test_instagram_accounts_and_a_campaign_on_an_instagram_post() -> None:
    text = edit('post_id: "1000000000001_2000000000001"', 'instagram_media_id: "17918195224117851"') + INSTAGRAM
    shop = parse_shop_text(text, "shop.yaml")
    assert shop.instagram is not None
    [account] = shop.instagram
    # page_id defaults to the shop's; the username is kept without its @.
    assert (account.account_id, account.page_id, account.username) == (
        "17841400000000001",
        "1000000000001",
        "blossomflorist",
    )
    # Instagram names a media by its own id: kept bare, where a Facebook post id gets its Page's prefix.
    assert shop.campaigns[0].post_id == "17918195224117851"
    # No section: nothing to say about Instagram (the links made before stay).
    assert parse_shop_text(BASE, "shop.yaml").instagram is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            'instagram:\n  - account_id: "@blossom"\n',
            "shop.yaml:20: instagram[0].account_id: must be the Instagram professional account's numeric id, "
            'like "17841400000000001"',
        ),
        ('instagram:\n  - page_id: "1000000000001"\n', "shop.yaml:20: instagram[0].account_id: missing"),
        (
            'instagram: {account_id: "17841400000000001"}\n',
            "shop.yaml:19: instagram: must be a list of {account_id, page_id}",
        ),
        (
            'instagram:\n  - account_id: "17841400000000001"\n  - account_id: "17841400000000002"\n',
            "shop.yaml:21: instagram[1].page_id: Page 1000000000001 already has an Instagram account",
        ),
    ],
)
def test_instagram_section_mistakes_name_the_field(section: str, message: str) -> None:
    with pytest.raises(ShopFileError) as caught:
        parse_shop_text(BASE + section, "shop.yaml")
    assert str(caught.value) == message


OFFER = "offers: [{keywords: [SALE, 優惠], quantity: 20, kind: percent, value: 10, valid_until: 2026-12-21 23:59}]"


def test_a_campaigns_first_n_offers_are_read_with_the_consoles_checks() -> None:
    [campaign] = parse_shop_text(add_field(OFFER), "shop.yaml").campaigns
    [offer] = campaign.offers
    assert (offer.keywords, offer.quantity, offer.discount.value, offer.min_spend) == (
        ("SALE", "優惠"),
        20,
        Decimal(10),
        None,
    )
    assert offer.valid_until == datetime(2026, 12, 21, 15, 59, tzinfo=UTC)  # the shop's time zone, +08:00


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("quantity: 20", "shop.yaml:15: campaigns[0].offers[0].quantity: There must be at least one voucher to give."),
        ("value: 10", "shop.yaml:15: campaigns[0].offers[0].value: A percentage can be at most 100."),
        ("kind: percent", "shop.yaml:15: campaigns[0].offers[0].kind: Choose a percentage or an amount off."),
    ],
)
def test_a_bad_offer_in_the_file_names_its_field(change: str, message: str) -> None:
    bad = {"quantity: 20": "quantity: 0", "value: 10": "value: 150", "kind: percent": "kind: half"}[change]
    with pytest.raises(CatalogFileError) as caught:
        parse_shop_text(add_field(OFFER.replace(change, bad)), "shop.yaml")
    assert str(caught.value) == message
