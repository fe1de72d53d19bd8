"""Tests for the shop admin API (bot/web/shop_api.py) on a real SQLite database: every endpoint, the admin
token, the 4xx answers (each a JSON reason, nothing changed) and a whole shop file put and read back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from bot.app import database_ctx
from bot.services import SESSIONS, SETTINGS
from bot.web import shop_api
from bot.web.admin_auth import require_admin
from config.settings import Settings
from tests.conftest import ADMIN_TOKEN, database_url

SAMPLE = Path(__file__).resolve().parents[3] / "config" / "samples" / "demo_shop.yaml"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
YAML = {**ADMIN, "Content-Type": "application/yaml"}

Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> Client:
    """Only what the routes need: the admin token's middleware, settings with an admin token and the
    database, as `create_app` sets them up."""
    app = web.Application(middlewares=[require_admin])
    app[SETTINGS] = Settings(
        admin_token=SecretStr(ADMIN_TOKEN), data_dir=tmp_path / "data", database_url=database_url(tmp_path)
    )
    app.cleanup_ctx.append(database_ctx)
    app.add_routes(shop_api.routes)
    return await aiohttp_client(app)


@pytest.fixture
async def sample_text() -> str:
    return await asyncio.to_thread(SAMPLE.read_text, encoding="utf-8")


@pytest.fixture
async def loaded(client: Client, sample_text: str) -> Client:
    resp = await client.put("/api/shop", data=sample_text.encode(), headers=YAML)
    assert resp.status == 200, await resp.text()
    return client


async def call(client: Client, method: str, path: str, status: int, **kwargs: Any) -> Any:
    kwargs.setdefault("headers", ADMIN)
    resp = await client.request(method, path, **kwargs)
    body = await resp.json()
    assert resp.status == status, body
    assert resp.content_type == "application/json"
    return body


async def set_counts(client: Client, code: str, held: int, sold: int) -> None:
    """What the stock code does when shoppers hold and buy (simulated by a direct UPDATE)."""
    async with client.app[SESSIONS]() as session, session.begin():
        await session.execute(
            text("UPDATE product SET held = :held, sold = :sold WHERE code = :code"),
            {"held": held, "sold": sold, "code": code},
        )


# --- authentication ---


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/products"),
        ("GET", "/api/products/A"),
        ("PATCH", "/api/products/A"),
        ("GET", "/api/campaigns"),
        ("GET", "/api/campaigns/demo-post"),
        ("PATCH", "/api/campaigns/demo-post"),
        ("PUT", "/api/shop"),
    ],
)
async def test_every_route_needs_the_admin_token(client: Client, method: str, path: str) -> None:
    missing = await call(client, method, path, 401, headers={})
    wrong = await call(client, method, path, 401, headers={"Authorization": "Bearer nope"})
    assert missing == {"error": "admin API: send Authorization: Bearer <admin token>"}
    assert wrong == {"error": "admin API: wrong admin token"}


# --- PUT /api/shop ---


async def test_put_shop_round_trip(client: Client, sample_text: str) -> None:
    first = await call(client, "PUT", "/api/shop", 200, data=sample_text.encode(), headers=YAML)
    again = await call(client, "PUT", "/api/shop", 200, data=sample_text.encode(), headers=YAML)

    assert first == {
        "shop": {
            "name": "Blossom Florist & Boutique 花漾小店",
            "currency": "HKD",
            "page_id": "1000000000001",
            "timezone": "Asia/Hong_Kong",
        },
        # The sample's `orders:` and `shipping:` sections, as the API gives them back.
        "orders": {"pay_within": "2d", "pay_within_by_method": {"cash_on_pickup": "7d"}, "remind_before": "6h"},
        "shipping": {
            "options": [
                {
                    "key": "courier",
                    "name": "SF Express courier",
                    "kind": "delivery",
                    "fee": "30.00",
                    "free_above": "500.00",
                    "regions": {},
                    "address": None,
                    "hours": None,
                },
                {
                    "key": "van",
                    "name": "Van delivery",
                    "kind": "delivery",
                    "fee": "0.00",
                    "free_above": None,
                    "regions": {"Hong Kong Island": "40.00", "Kowloon": "30.00", "New Territories": "50.00"},
                    "address": None,
                    "hours": None,
                },
                {
                    "key": "mong-kok",
                    "name": "Mong Kok shop",
                    "kind": "pickup",
                    "fee": "0.00",
                    "free_above": None,
                    "regions": {},
                    "address": "1 Nathan Road, Mong Kok",
                    "hours": "Mon–Sat 12:00–20:00",
                },
            ]
        },
        "changes": {
            "shop": {"created": 1, "updated": 0, "unchanged": 0, "deactivated": 0},
            "products": {"created": 8, "updated": 0, "unchanged": 0, "deactivated": 0},
            "campaigns": {"created": 2, "updated": 0, "unchanged": 0, "deactivated": 0},
            "faq": {"created": 5, "updated": 0, "unchanged": 0, "deactivated": 0},
        },
    }
    assert again["changes"] == {
        "shop": {"created": 0, "updated": 0, "unchanged": 1, "deactivated": 0},
        "products": {"created": 0, "updated": 0, "unchanged": 8, "deactivated": 0},
        "campaigns": {"created": 0, "updated": 0, "unchanged": 2, "deactivated": 0},
        "faq": {"created": 0, "updated": 0, "unchanged": 5, "deactivated": 0},
    }
    products = (await call(client, "GET", "/api/products", 200))["products"]
    assert [p["code"] for p in products] == ["A", "A1", "B", "C", "Flower", "玫瑰", "Tulip", "Card"]
    campaigns = (await call(client, "GET", "/api/campaigns", 200))["campaigns"]
    assert [(c["key"], c["post_id"], c["next_live"]) for c in campaigns] == [
        ("demo-post", "1000000000001_2000000000001", False),
        ("next-live", None, True),
    ]


async def test_put_shop_as_json(client: Client) -> None:
    shop = {
        "shop": {"name": "Blossom", "currency": "HKD", "page_id": "1000000000001"},
        "products": [{"code": "A", "name": "Dress", "price": 12.3, "stock": 2}],
        "campaigns": [
            {
                "key": "live",
                "title": "Live",
                "next_live": True,
                "starts_at": "2026-12-20T19:00:00+08:00",
                "ends_at": "2026-12-20T23:00:00+08:00",
                "products": [{"product": "A", "code": "Dress"}],
            }
        ],
    }
    body = await call(client, "PUT", "/api/shop", 200, json=shop, headers=ADMIN)
    assert body["changes"]["products"]["created"] == 1
    product = await call(client, "GET", "/api/products/a", 200)
    assert (product["code"], product["price"], product["stock"], product["available"]) == ("A", "12.30", 2, 2)
    campaign = await call(client, "GET", "/api/campaigns/live", 200)
    assert campaign["starts_at"] == "2026-12-20T11:00:00+00:00"
    assert campaign["products"] == [{"code": "Dress", "product": "A"}]


async def test_put_shop_invalid_file_changes_nothing(loaded: Client, sample_text: str) -> None:
    before = await call(loaded, "GET", "/api/products", 200)
    broken = sample_text.replace("price: 1280", "price: 1").replace("hold_minutes: 30", "hold_minutes: 0")

    body = await call(loaded, "PUT", "/api/shop", 400, data=broken.encode(), headers=YAML)

    assert body == {
        "error": "body:70: campaigns[0].hold_minutes: must be a whole number of minutes from 1 to 10080 (a week)",
        "line": 70,
        "field": "campaigns[0].hold_minutes",
    }
    assert await call(loaded, "GET", "/api/products", 200) == before


async def test_put_shop_with_an_express_upgrade_above_its_tier_is_400(loaded: Client, sample_text: str) -> None:
    # Silver needs a spend of 3000: an express amount of 3500 would be reached by the spend first.
    broken = sample_text.replace("express_upgrade: 2000", "express_upgrade: 3500")
    assert broken != sample_text

    body = await call(loaded, "PUT", "/api/shop", 400, data=broken.encode(), headers=YAML)

    assert body["field"] == "membership.tiers[1].express_upgrade"
    assert body["error"].endswith("membership.tiers[1].express_upgrade: must be at most the tier's spend (3000)")


async def test_put_shop_stock_below_held_and_sold_is_409(loaded: Client, sample_text: str) -> None:
    await set_counts(loaded, "Flower", held=3, sold=1)
    before = await call(loaded, "GET", "/api/products", 200)
    lower = sample_text.replace("price: 1280", "price: 1").replace("stock: 5", "stock: 2")

    body = await call(loaded, "PUT", "/api/shop", 409, data=lower.encode(), headers=YAML)

    assert body == {
        "error": "body:41: products[4].stock: 2 is below the 4 units of product 'Flower' already taken "
        "(3 held in carts, 1 sold); stock must be at least 4",
        "code": "stock_below_committed",
        "product": "Flower",
    }
    assert await call(loaded, "GET", "/api/products", 200) == before


@pytest.mark.parametrize(
    ("headers", "data", "status", "error"),
    [
        (
            {"Content-Type": "text/plain"},
            b"shop: {}",
            415,
            "send the shop file as application/yaml, application/x-yaml, text/yaml, text/x-yaml, application/json "
            "(not text/plain)",
        ),
        ({"Content-Type": "text/yaml"}, b"shop: \xff", 400, "the body is not UTF-8 text (byte 6)"),
        ({"Content-Type": "text/yaml"}, b"", 400, "body:1: shop: missing (the file is empty)"),
        ({"Content-Type": "application/json"}, b'{"shop": ', 400,
         "body:1: invalid YAML: expected the node content, but found '<stream end>'"),
        ({"Content-Type": "application/yaml"}, b"[" * 100_000, 400, "body: invalid YAML: nested too deeply"),
    ],
)  # fmt: skip
async def test_put_shop_bad_bodies(
    client: Client, headers: dict[str, str], data: bytes, status: int, error: str
) -> None:
    body = await call(client, "PUT", "/api/shop", status, data=data, headers={**ADMIN, **headers})
    assert body["error"] == error


# --- products ---


async def test_get_products(loaded: Client) -> None:
    roses = await call(loaded, "GET", f"/api/products/{quote('玫瑰')}", 200)
    assert roses["variants"] == {"顏色": ["紅色", "白色", "粉紅色"]}
    assert (roses["price"], roses["stock"], roses["held"], roses["sold"]) == ("520.00", 15, 0, 0)
    assert (await call(loaded, "GET", "/api/products/flower", 200))["code"] == "Flower"
    card = await call(loaded, "GET", "/api/products/Card", 200)
    assert (card["price"], card["stock"], card["available"]) == ("25.50", None, None)
    assert await call(loaded, "GET", "/api/products/Z9", 404) == {"error": "no product with code 'Z9'"}
    await call(loaded, "PATCH", "/api/products/Card", 200, json={"active": False})
    active = (await call(loaded, "GET", "/api/products?active=true", 200))["products"]
    inactive = (await call(loaded, "GET", "/api/products?active=false", 200))["products"]
    assert (len(active), [p["code"] for p in inactive]) == (7, ["Card"])
    assert await call(loaded, "GET", "/api/products?active=maybe", 400) == {"error": "active must be true or false"}


async def test_patch_product(loaded: Client) -> None:
    await set_counts(loaded, "A", held=2, sold=3)

    body = await call(
        loaded, "PATCH", "/api/products/a", 200, json={"name": " Wrap dress ", "price": "1180.5", "stock": 5}
    )

    assert (body["code"], body["name"], body["price"], body["stock"]) == ("A", "Wrap dress", "1180.50", 5)
    assert (body["held"], body["sold"], body["available"]) == (2, 3, 0)  # kept
    assert body["variants"] == {"size": ["S", "M", "L", "XL"], "colour": ["Red", "Black", "紅色", "Light Blue"]}
    body = await call(loaded, "PATCH", "/api/products/A", 200, data=b'{"price": 99.90, "stock": null}')
    assert (body["price"], body["stock"], body["available"]) == ("99.90", None, None)


async def test_patch_product_stock_below_held_and_sold_is_409(loaded: Client) -> None:
    await set_counts(loaded, "B", held=4, sold=0)
    before = await call(loaded, "GET", "/api/products/B", 200)

    body = await call(loaded, "PATCH", "/api/products/B", 409, json={"stock": 3, "name": "Shirt"})

    assert body == {
        "error": "stock: 3 is below the 4 units of product 'B' already taken (4 held in carts, 0 sold); "
        "stock must be at least 4",
        "code": "stock_below_committed",
        "product": "B",
    }
    assert await call(loaded, "GET", "/api/products/B", 200) == before


FIELDS = "name, price, stock, active, variants, image_url, nicknames, name_keyword"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "the body must be a JSON object: Expecting value: line 1 column 1 (char 0)"),
        (b"[1]", "the body must be a JSON object with any of " + FIELDS),
        (b"{}", "nothing to change: give any of " + FIELDS),
        (b'{"code": "Z"}', "code: unknown field (expected " + FIELDS + ")"),
        (b'{"name": ""}', "name: must not be empty"),
        (b'{"name": 5}', "name: must be text"),
        (b'{"price": -1}', "price: must be a number >= 0"),
        (b'{"price": 1.234}', "price: must have at most 2 decimal places"),
        (b'{"price": "12,5"}', 'price: must be a number >= 0, like 1280 or "1280.00"'),
        (b'{"price": true}', 'price: must be a number >= 0, like 1280 or "1280.00"'),
        (b'{"price": NaN}', "the body must be a JSON object: NaN is not a number JSON allows"),
        (b'{"price": "Infinity"}', "price: must be a number >= 0"),
        (b'{"price": 1e20}', "price: must be below 10000000000"),
        (b'{"stock": -1}', "stock: must be a whole number from 0 to 2147483647"),
        (b'{"stock": 2.5}', "stock: must be a whole number from 0 to 2147483647"),
        (b'{"stock": "5"}', "stock: must be a whole number from 0 to 2147483647"),
        (b'{"stock": 99999999999999999999}', "stock: must be a whole number from 0 to 2147483647"),
        (b'{"active": "yes"}', "active: must be true or false"),
        (b'{"variants": ["S"]}', "variants: must map each option to its values, like `size: [S, M, L]`"),
        (b'{"variants": {"size": ["S", "s"]}}', "variants: size[1]: 's' is already a value of this option"),
        (b'{"variants": {"size": []}}', "variants: size: must list at least one value"),
        (b'{"variants": {"size": ["S\\u0000"]}}', "variants: size: must not contain NUL characters"),
        (
            b'{"image_url": "javascript:alert(1)"}',
            "image_url: must be an http:// or https:// address, like https://example.com/rose.jpg",
        ),
        (b'{"image_url": 5}', "image_url: must be an http:// or https:// address, or null for none"),
        (b"\xff", "the body is not UTF-8 text (byte 0)"),
        (b"[" * 100_000, "the body must be a JSON object: too deeply nested"),
    ],
)
async def test_patch_product_bad_input_is_400(loaded: Client, data: bytes, error: str) -> None:
    before = await call(loaded, "GET", "/api/products/A", 200)
    assert await call(loaded, "PATCH", "/api/products/A", 400, data=data) == {"error": error}
    assert await call(loaded, "GET", "/api/products/A", 200) == before


async def test_patch_product_options_and_picture_as_the_console_does(loaded: Client) -> None:
    body = {"variants": {"colour": ["red", "blue"]}, "image_url": "https://cdn.example.com/a.jpg"}
    changed = await call(loaded, "PATCH", "/api/products/A", 200, json=body)
    assert (changed["variants"], changed["image_url"]) == (body["variants"], body["image_url"])
    cleared = await call(loaded, "PATCH", "/api/products/A", 200, json={"variants": {}, "image_url": None})
    assert (cleared["variants"], cleared["image_url"]) == ({}, None)


async def test_patch_unknown_product_is_404(loaded: Client) -> None:
    assert await call(loaded, "PATCH", "/api/products/Z9", 404, json={"stock": 1}) == {
        "error": "no product with code 'Z9'"
    }


# --- campaigns ---


async def test_get_campaigns(loaded: Client) -> None:
    post = await call(loaded, "GET", "/api/campaigns/demo-post", 200)
    assert {k: post[k] for k in ("title", "page_id", "post_id", "live_video_id", "next_live", "status")} == {
        "title": "Spring collection 春日新品",
        "page_id": "1000000000001",
        "post_id": "1000000000001_2000000000001",
        "live_video_id": None,
        "next_live": False,
        "status": "open",
    }
    assert (post["starts_at"], post["ends_at"]) == ("2025-12-31T16:00:00+00:00", "2030-12-31T15:59:00+00:00")
    assert (post["per_shopper_limit"], post["hold_minutes"]) == (5, 30)
    assert post["closed_reply"] == "This sale has ended, thank you! 今次活動已經結束，多謝支持！"
    assert post["pinned_text"].startswith("Comment the code and quantity to order")
    live = await call(loaded, "GET", "/api/campaigns/next-live", 200)
    assert live["products"] == [
        {"code": "A", "product": "A"},
        {"code": "C", "product": "C"},
        {"code": "乾花", "product": "Flower"},
        {"code": "T", "product": "Tulip"},
        {"code": "玫瑰", "product": "玫瑰"},
    ]
    assert await call(loaded, "GET", "/api/campaigns/nope", 404) == {"error": "no campaign with key 'nope'"}


async def test_patch_campaign(loaded: Client) -> None:
    body = await call(
        loaded,
        "PATCH",
        "/api/campaigns/demo-post",
        200,
        json={
            "title": "Summer sale",
            "starts_at": "2031-06-01T10:00:00+08:00",
            "ends_at": "2031-06-30T22:00:00Z",
            "per_shopper_limit": None,
            "hold_minutes": 60,
            "pinned_text": "A+1 to order",
            "closed_reply": None,
        },
    )

    assert body["title"] == "Summer sale"
    assert (body["starts_at"], body["ends_at"], body["status"]) == (
        "2031-06-01T02:00:00+00:00",
        "2031-06-30T22:00:00+00:00",
        "scheduled",
    )
    assert (body["per_shopper_limit"], body["hold_minutes"], body["pinned_text"], body["closed_reply"]) == (
        None,
        60,
        "A+1 to order",
        None,
    )
    assert len(body["products"]) == 6  # untouched
    assert await call(loaded, "GET", "/api/campaigns/demo-post", 200) == body


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ({"ends_at": "2025-12-31T00:00:00Z"}, "ends_at: must be after starts_at (2025-12-31T16:00:00+00:00)"),
        ({"starts_at": "2031-01-01T00:00:00Z"}, "ends_at: must be after starts_at (2031-01-01T00:00:00+00:00)"),
        ({"starts_at": "2026-06-01 10:00"}, "starts_at: must include a UTC offset, like 2026-12-20T19:00:00+08:00"),
        ({"starts_at": "soon"}, "starts_at: must be a date and a time, like 2026-12-20 19:00 or "
                                "2026-12-20T19:00+08:00"),
        ({"ends_at": 1766242800}, "ends_at: must be an ISO 8601 time with an offset, like 2026-12-20T19:00:00+08:00"),
        ({"hold_minutes": 0}, "hold_minutes: must be a whole number of minutes from 1 to 10080 (a week)"),
        ({"hold_minutes": None}, "hold_minutes: must be a whole number of minutes from 1 to 10080 (a week)"),
        ({"per_shopper_limit": 0}, "per_shopper_limit: must be a whole number from 1 to 2147483647"),
        ({"per_shopper_limit": True}, "per_shopper_limit: must be a whole number from 1 to 2147483647"),
        ({"title": " "}, "title: must not be empty"),
        ({"title": "a\u0000b"}, "title: must not contain NUL characters"),
        ({"ends_at": "9999-12-31T23:59:00-05:00"}, "ends_at: must be between the years 1 and 9999 in UTC"),
        ({"pinned_text": ""}, "pinned_text: must not be empty (send null for none)"),
        ({"closed_reply": "x" * 2000}, "closed_reply: must be at most 1999 characters"),
        ({"key": "other"}, "key: unknown field (expected title, starts_at, ends_at, per_shopper_limit, hold_minutes, "
                           "pinned_text, closed_reply)"),
    ],
)  # fmt: skip
async def test_patch_campaign_bad_input_is_400(loaded: Client, patch: dict[str, Any], error: str) -> None:
    before = await call(loaded, "GET", "/api/campaigns/demo-post", 200)
    assert await call(loaded, "PATCH", "/api/campaigns/demo-post", 400, json=patch) == {"error": error}
    assert await call(loaded, "GET", "/api/campaigns/demo-post", 200) == before


async def test_patch_unknown_campaign_is_404(loaded: Client) -> None:
    body = await call(loaded, "PATCH", "/api/campaigns/nope", 404, data=json.dumps({"title": "x"}))
    assert body == {"error": "no campaign with key 'nope'"}


# --- nicknames (issue 20) ---


async def test_patch_nicknames_is_read_by_the_shop_files_rules(loaded: Client) -> None:
    answer = await call(loaded, "PATCH", "/api/products/B", 200, json={"nicknames": ["麻恤", " linen  shirt "]})
    assert answer["nicknames"] == ["麻恤", "linen shirt"] and answer["name_keyword"] is True
    answer = await call(loaded, "PATCH", "/api/products/B", 200, json={"name_keyword": False})
    assert answer["name_keyword"] is False and answer["nicknames"] == ["麻恤", "linen shirt"]
    before = await call(loaded, "GET", "/api/products/B", 200)
    for body, error in [
        ({"nicknames": "麻恤"}, "nicknames: must be a list of words, like [紅裙, red dress]"),
        ({"nicknames": ["麻恤", "x"]}, "nicknames: [1]: must be at least 2 letters (or a Chinese word)"),
        ({"nicknames": ["麻恤", "麻恤"]}, "nicknames: [1]: '麻恤' is listed twice"),
        ({"nicknames": ["a1"]}, "nicknames[0]: 'a1' is the code of product 'A1': a code always means its own product"),
        ({"name_keyword": "yes"}, "name_keyword: must be true or false"),
    ]:
        assert await call(loaded, "PATCH", "/api/products/B", 400, json=body) == {"error": error}
    assert await call(loaded, "GET", "/api/products/B", 200) == before


async def test_a_shop_files_nicknames_are_loaded_and_a_second_load_changes_nothing(
    client: Client, sample_text: str
) -> None:
    text = sample_text.replace(
        "    name: Linen shirt\n", "    name: Linen shirt\n    nicknames: [麻恤, 恤衫]\n    name_keyword: false\n", 1
    )
    assert text != sample_text
    first = await call(client, "PUT", "/api/shop", 200, data=text.encode(), headers=YAML)
    product = await call(client, "GET", "/api/products/B", 200)
    assert (product["nicknames"], product["name_keyword"]) == (["麻恤", "恤衫"], False)
    again = await call(client, "PUT", "/api/shop", 200, data=text.encode(), headers=YAML)
    assert first["changes"]["products"]["created"] > 0 and again["changes"]["products"]["updated"] == 0
