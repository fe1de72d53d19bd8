"""Tests for bot.store.shop: applying shop files to a real SQLite database, given / when / then."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.clock import utcnow
from bot.store.shop import ChangeCounts, ShopChanges, apply_shop
from carts.catalog import (
    ShopApplyError,
    ShopErrorCode,
    campaign_to_dict,
    fetch_campaign,
    fetch_campaigns,
    fetch_products,
    product_to_dict,
)
from carts.comment_order_repository import attach_live_video
from carts.tables import Campaign, CampaignProduct
from carts.tables import ShopInfo as ShopRow
from config.shop_file import ShopConfig, load_shop_file, parse_shop_text
from tests.conftest import database_sessions, database_url
from tests.test_carts.test_catalog import product, set_counts

SAMPLE = Path(__file__).parents[3] / "config" / "samples" / "demo_shop.yaml"

SHOP = """\
shop: {name: Blossom, currency: HKD, page_id: "1000000000001", timezone: Asia/Hong_Kong}
products:
  - {code: A, name: Floral wrap dress, price: 1280, stock: 12, variants: {size: [S, M, L]}}
  - {code: B, name: Linen shirt, price: 890.5, stock: 5}
  - {code: C, name: Greeting card, price: 25}
campaigns:
  - key: xmas-live
    title: Christmas live sale
    post_id: "1000000000001_2000000000001"
    starts_at: 2026-12-20 19:00
    ends_at: 2030-12-20 23:00
    per_shopper_limit: 5
    products: [{product: A, code: Flower}, {product: B}]
"""


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with database_sessions(database_url(tmp_path)) as factory:
        yield factory


async def parse(text: str) -> ShopConfig:
    # In a thread: the shop's time zone is read from disk (as `PUT /api/shop` does).
    return await asyncio.to_thread(parse_shop_text, text, "shop.yaml")


async def load(sessions: async_sessionmaker[AsyncSession], shop: ShopConfig | str) -> ShopChanges:
    config = await parse(shop) if isinstance(shop, str) else shop
    async with sessions() as session, session.begin():
        return await apply_shop(session, config)


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[object, ...]]:
    """Every row of the shop's tables, as plain tuples."""
    async with sessions() as session:
        rows: list[tuple[object, ...]] = []
        for table in ("shop_info", "product", "campaign", "campaign_product"):
            rows += [tuple(row) for row in (await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))).all()]
        return rows


async def test_first_load_creates_everything(sessions: async_sessionmaker[AsyncSession]) -> None:
    changes = await load(sessions, SHOP)

    assert changes == ShopChanges(
        products=ChangeCounts(created=3), campaigns=ChangeCounts(created=1), shop=ChangeCounts(created=1)
    )
    async with sessions() as session:
        products = await fetch_products(session)
        (campaign,) = await fetch_campaigns(session)
        shop_row = await session.get(ShopRow, 1)
    assert shop_row is not None
    assert (shop_row.name, shop_row.currency) == ("Blossom", "HKD")
    assert product_to_dict(products[0]) | {"created_at": None, "updated_at": None} == {
        "code": "A",
        "name": "Floral wrap dress",
        "price": "1280.00",
        "variants": {"size": ["S", "M", "L"]},
        "stock": 12,
        "held": 0,
        "sold": 0,
        "available": 12,
        "active": True,
        "image_url": None,  # set in the console or the admin API, never by the file
        "nicknames": [],
        "name_keyword": True,
        "created_at": None,
        "updated_at": None,
    }
    assert products[1].price == Decimal("890.50")
    assert products[2].stock is None
    shown = campaign_to_dict(campaign, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert shown["starts_at"] == "2026-12-20T11:00:00+00:00"
    assert shown["status"] == "open"
    assert shown["products"] == [{"code": "Flower", "product": "A"}, {"code": "B", "product": "B"}]
    assert shown["per_shopper_limit"] == 5
    assert shown["hold_minutes"] == 30


async def test_loading_the_same_file_twice_changes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    shop = await asyncio.to_thread(load_shop_file, SAMPLE)
    await load(sessions, shop)
    before = await snapshot(sessions)

    changes = await load(sessions, shop)

    assert changes == ShopChanges(
        products=ChangeCounts(unchanged=8),
        campaigns=ChangeCounts(unchanged=2),
        shop=ChangeCounts(unchanged=1),
        faq=ChangeCounts(unchanged=5),
    )
    assert not changes.changed
    assert await snapshot(sessions) == before  # not even updated_at moved


async def test_stock_change_keeps_held_and_sold(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SHOP)
    await set_counts(sessions, "A", held=3, sold=4)

    changes = await load(sessions, SHOP.replace("stock: 12", "stock: 20").replace("price: 1280", "price: 1180"))

    assert changes.products == ChangeCounts(updated=1, unchanged=2)
    a = await product(sessions, "A")
    assert (a.stock, a.held, a.sold, a.price) == (20, 3, 4, Decimal("1180.00"))
    # Down to exactly what is taken is allowed; unlimited too.
    await load(sessions, SHOP.replace("stock: 12", "stock: 7"))
    assert (await product(sessions, "A")).stock == 7
    await load(sessions, SHOP.replace("stock: 12, ", ""))
    a = await product(sessions, "A")
    assert (a.stock, a.held, a.sold) == (None, 3, 4)


async def test_stock_below_held_and_sold_is_refused_and_nothing_applied(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await load(sessions, SHOP)
    await set_counts(sessions, "B", held=2, sold=2)
    before = await snapshot(sessions)
    # Other changes in the same file, before and after the refused product, must not land either.
    changed = (
        SHOP.replace("name: Blossom,", "name: Blossom Florist,")
        .replace("Floral wrap dress", "Wrap dress")
        .replace("price: 890.5, stock: 5", "price: 890.5, stock: 3")
        .replace("Christmas live sale", "Xmas")
    )

    with pytest.raises(ShopApplyError) as caught:
        await load(sessions, changed)

    assert caught.value.code is ShopErrorCode.STOCK_BELOW_COMMITTED
    assert caught.value.product == "B"
    assert str(caught.value) == (
        "shop.yaml:4: products[1].stock: 3 is below the 4 units of product 'B' already taken "
        "(2 held in carts, 2 sold); stock must be at least 4"
    )
    assert await snapshot(sessions) == before


async def test_product_left_out_becomes_inactive_and_comes_back(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SHOP)
    without_c = SHOP.replace("  - {code: C, name: Greeting card, price: 25}\n", "")

    changes = await load(sessions, without_c)

    assert changes.products == ChangeCounts(unchanged=2, deactivated=1)
    assert (await product(sessions, "C")).active is False
    async with sessions() as session:
        assert [p.code for p in await fetch_products(session, active=True)] == ["A", "B"]
    assert (await load(sessions, without_c)).products == ChangeCounts(unchanged=2)  # already inactive
    assert (await load(sessions, SHOP)).products == ChangeCounts(updated=1, unchanged=2)
    assert (await product(sessions, "C")).active is True


async def test_codes_match_case_insensitively(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SHOP)
    first_id = (await product(sessions, "C")).id

    changes = await load(sessions, SHOP.replace("{code: C,", "{code: c,"))

    assert changes.products == ChangeCounts(updated=1, unchanged=2)
    again = await product(sessions, "c")
    assert (again.id, again.code) == (first_id, "c")


async def test_campaign_order_code_renamed(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SHOP)
    async with sessions() as session:
        before = {link.product_id: link.id for link in (await session.execute(select(CampaignProduct))).scalars()}

    changes = await load(sessions, SHOP.replace("code: Flower", "code: Dress"))

    assert changes.campaigns == ChangeCounts(updated=1)
    async with sessions() as session:
        info = await fetch_campaign(session, "xmas-live")
        links = {link.product_id: link.id for link in (await session.execute(select(CampaignProduct))).scalars()}
    assert info is not None
    assert [(p.code, p.product) for p in info.products] == [("Dress", "A"), ("B", "B")]
    assert links == before  # the same rows, renamed


async def test_campaign_codes_swapped_and_products_replaced(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SHOP)

    # A and B swap their codes (the unique (campaign, code) must not trip), then C replaces B.
    await load(
        sessions,
        SHOP.replace("{product: A, code: Flower}, {product: B}", "{product: A, code: B}, {product: B, code: A}"),
    )
    async with sessions() as session:
        info = await fetch_campaign(session, "xmas-live")
    assert info is not None
    assert sorted((p.code, p.product) for p in info.products) == [("A", "B"), ("B", "A")]

    changes = await load(sessions, SHOP.replace("{product: B}", "{product: C}"))
    assert changes.campaigns == ChangeCounts(updated=1)
    async with sessions() as session:
        info = await fetch_campaign(session, "xmas-live")
    assert info is not None
    assert sorted((p.code, p.product) for p in info.products) == [("C", "C"), ("Flower", "A")]


async def test_campaign_fields_updated_by_key(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SHOP)
    shop = await parse(SHOP)
    (campaign,) = shop.campaigns
    later = replace(campaign, title="Boxing day", hold_minutes=45, closed_reply="Closed, thanks!")

    changes = await load(sessions, replace(shop, campaigns=(later,)))

    assert changes.campaigns == ChangeCounts(updated=1)
    async with sessions() as session:
        rows = (await session.execute(select(Campaign))).scalars().all()
    assert [(r.key, r.title, r.hold_minutes, r.closed_reply) for r in rows] == [
        ("xmas-live", "Boxing day", 45, "Closed, thanks!")
    ]


async def test_campaign_left_out_is_ended_not_deleted(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SHOP)
    shop = await parse(SHOP)
    without = replace(shop, campaigns=())

    changes = await load(sessions, without)

    assert changes.campaigns == ChangeCounts(deactivated=1)
    async with sessions() as session:
        info = await fetch_campaign(session, "xmas-live")
    assert info is not None
    assert campaign_to_dict(info, utcnow())["status"] == "ended"
    assert len(info.products) == 2  # kept: carts and orders may refer to them
    assert (await load(sessions, without)).campaigns == ChangeCounts()  # already ended
    assert (await load(sessions, shop)).campaigns == ChangeCounts(updated=1)  # back with the file's times


async def test_reloading_during_a_live_keeps_the_video_the_next_live_campaign_took(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    live_shop = SHOP.replace('post_id: "1000000000001_2000000000001"', "next_live: true").replace(
        "starts_at: 2026-12-20 19:00", "starts_at: 2020-12-20 19:00"
    )
    await load(sessions, live_shop)
    async with sessions() as session, session.begin():
        taken = await attach_live_video(session, "1000000000001", "7770001", utcnow())
    assert taken is not None and taken.key == "xmas-live"

    changes = await load(sessions, live_shop)  # the merchant reloads the same file mid-live
    edited = await load(sessions, live_shop.replace("Christmas live sale", "Christmas live sale, part 2"))

    assert changes.campaigns == ChangeCounts(unchanged=1)
    assert edited.campaigns == ChangeCounts(updated=1)
    async with sessions() as session:
        info = await fetch_campaign(session, "xmas-live")
    assert info is not None
    assert (info.campaign.live_video_id, info.campaign.next_live) == ("7770001", True)
    # A file that moves the campaign to a post does replace the video.
    await load(sessions, SHOP)
    async with sessions() as session:
        info = await fetch_campaign(session, "xmas-live")
    assert info is not None and info.campaign.live_video_id is None


async def test_shop_name_and_currency_updated(sessions: async_sessionmaker[AsyncSession]) -> None:
    await load(sessions, SHOP)

    changes = await load(sessions, SHOP.replace("name: Blossom, currency: HKD", "name: Blossom 花店, currency: MOP"))

    assert changes == ShopChanges(
        products=ChangeCounts(unchanged=3), campaigns=ChangeCounts(unchanged=1), shop=ChangeCounts(updated=1)
    )
    async with sessions() as session:
        row = await session.get(ShopRow, 1)
    assert row is not None
    assert (row.name, row.currency) == ("Blossom 花店", "MOP")


async def test_a_files_offer_is_made_once_and_a_second_load_keeps_its_vouchers(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from carts.coupon_tables import CouponOffer

    offers = "    offers: [{keywords: [SALE], quantity: 20, kind: amount, value: 50, valid_until: 2030-12-21 23:59}]\n"
    text = SHOP.replace("    per_shopper_limit: 5\n", "    per_shopper_limit: 5\n" + offers)
    await load(sessions, text)
    async with sessions() as session, session.begin():
        [offer] = (await session.execute(select(CouponOffer))).scalars().all()
        offer.given = 3  # vouchers went out during the live
    await load(sessions, text)
    async with sessions() as session:
        [again] = (await session.execute(select(CouponOffer))).scalars().all()
    assert (again.id, again.given, again.quantity) == (offer.id, 3, 20)
