"""The catalog in SQL: products and campaigns, read and changed field by field, and their JSON shapes.

Repository module (talks SQL, in the caller's transaction; the caller commits or rolls back). Loading a
whole shop file into these tables is the app's (`bot.store.shop.apply_shop`), which uses the stock-safe
product update and the errors defined here.

- Stock: `held` and `sold` belong to the stock code and are never written here. A new `stock` is written
  by a conditional UPDATE (`WHERE held + sold <= :stock`), so even a hold that lands between our read and
  our write cannot end up above stock (docs/architecture.md, invariant 3); a stock below `held + sold` is refused with
  `ShopApplyError` before anything is written.
- Read helpers and the JSON shapes the admin API answers with: prices as strings ("1280.00"), times ISO 8601.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carts.tables import Campaign, CampaignProduct, Product
from parsers.order_comment import code_key

__all__ = [
    "CAMPAIGN_PATCH_FIELDS",
    "PRODUCT_PATCH_FIELDS",
    "CampaignInfo",
    "CampaignProductInfo",
    "NicknameClash",
    "ShopApplyError",
    "ShopErrorCode",
    "apply_campaign_fields",
    "apply_product_fields",
    "campaign_to_dict",
    "check_nickname_clash",
    "create_product",
    "fetch_campaign",
    "fetch_campaigns",
    "fetch_product",
    "fetch_products",
    "nicknames_json",
    "product_nicknames",
    "product_to_dict",
    "render_price",
    "set_campaign_target",
    "stock_below_committed",
    "stock_error",
    "update_product",
]

PRODUCT_PATCH_FIELDS = ("name", "price", "stock", "active", "variants", "image_url", "nicknames", "name_keyword")
CAMPAIGN_PATCH_FIELDS = (
    "title",
    "starts_at",
    "ends_at",
    "per_shopper_limit",
    "hold_minutes",
    "pinned_text",
    "closed_reply",
)
_CENT = Decimal("0.01")


class ShopErrorCode(enum.StrEnum):
    STOCK_BELOW_COMMITTED = "stock_below_committed"


class ShopApplyError(Exception):
    """A change the current data refuses (nothing of it was written). `str()` is one line."""

    def __init__(self, code: ShopErrorCode, message: str, *, product: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.product = product


@dataclass(frozen=True, slots=True)
class CampaignProductInfo:
    """A product of a campaign: `code` is what shoppers type in the campaign, `product` the catalog code."""

    code: str
    product: str
    product_id: int


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    """A campaign and its products, loaded."""

    campaign: Campaign
    products: tuple[CampaignProductInfo, ...]


# --- stock-safe product writes ---


def stock_below_committed(where: str, code: str, stock: int | None, held: int, sold: int) -> ShopApplyError:
    """The refusal of a stock below what shoppers already hold or bought; `where` locates it in a file ("" if none)."""
    field = f"{where}.stock" if where else "stock"
    message = (
        f"{field}: {stock} is below the {held + sold} units of product {code!r} already taken "
        f"({held} held in carts, {sold} sold); stock must be at least {held + sold}"
    )
    return ShopApplyError(ShopErrorCode.STOCK_BELOW_COMMITTED, message, product=code)


async def stock_error(session: AsyncSession, product_id: int, stock: int | None, where: str) -> ShopApplyError:
    """`stock_below_committed` for a product whose conditional update was refused, with its current counts."""
    held, sold, code = (
        await session.execute(select(Product.held, Product.sold, Product.code).where(Product.id == product_id))
    ).one()
    return stock_below_committed(where, code, stock, held, sold)


async def update_product(session: AsyncSession, product_id: int, values: Mapping[str, Any], now: datetime) -> bool:
    """UPDATE one product's configured fields; a new stock only if it still covers held + sold.

    Never names `held` or `sold`. False when the stock condition refused the row.
    """
    stmt = update(Product).where(Product.id == product_id).values(**values, updated_at=now)
    if values.get("stock") is not None:
        stmt = stmt.where(Product.held + Product.sold <= values["stock"])
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


# --- the admin API's changes ---


async def apply_product_fields(
    session: AsyncSession, product: Product, values: Mapping[str, Any], now: datetime
) -> Product:
    """Change some of PRODUCT_PATCH_FIELDS (already validated); returns the product as stored.

    Raises `ShopApplyError` when a new stock is below held + sold, `NicknameClash` when a nickname is
    another product's code (nothing written).
    """
    assert product.id is not None
    unknown = set(values) - set(PRODUCT_PATCH_FIELDS)
    if unknown:
        raise ValueError(f"not product fields: {', '.join(sorted(unknown))}")
    if "variants" in values:  # stored as the shop file's loader stores it: JSON, option -> [values]
        values = {**values, "variants": variants_json(values["variants"])}
    if "nicknames" in values:
        await check_nickname_clash(session, product.code, values["nicknames"])
        values = {**values, "nicknames": nicknames_json(values["nicknames"])}
    if values and not await update_product(session, product.id, values, now):
        raise await stock_error(session, product.id, values.get("stock"), "")
    return await _reload(session, Product, product.id)


class NicknameClash(ValueError):
    """A nickname that is another product's code (a code always means its own product); nothing written."""

    def __init__(self, index: int, nickname: str, other: str) -> None:
        self.index = index
        self.nickname = nickname
        self.other = other
        super().__init__(f"nicknames[{index}]: {nickname!r} is the code of product {other!r}")


async def check_nickname_clash(session: AsyncSession, code: str, nicknames: Sequence[str]) -> None:
    """Raise `NicknameClash` when a nickname of product `code` is another product's code (as the shop file does)."""
    if not nicknames:
        return
    codes = {code_key(c): c for c in (await session.execute(select(Product.code))).scalars()}
    for index, nickname in enumerate(nicknames):
        other = codes.get(code_key(nickname))
        if other is not None and code_key(other) != code_key(code):
            raise NicknameClash(index, nickname, other)


def nicknames_json(nicknames: Sequence[str]) -> str:
    """A product's nicknames as its column holds them: a JSON list, in the merchant's order."""
    return json.dumps(list(nicknames), ensure_ascii=False)


def product_nicknames(product: Product) -> tuple[str, ...]:
    """The nicknames a product row holds."""
    return tuple(json.loads(product.nicknames or "[]"))


def variants_json(variants: Mapping[str, Any]) -> str:
    """A product's options as its column holds them (the shop file's loader writes the same)."""
    return json.dumps({option: list(values) for option, values in variants.items()}, ensure_ascii=False)


async def create_product(session: AsyncSession, code: str, values: Mapping[str, Any], now: datetime) -> Product:
    """A new product (fields already validated: name and price at least); `ValueError` if the code is taken.

    Codes are matched case-insensitively, like shoppers type them: "a1" is taken when "A1" exists.
    """
    if await fetch_product(session, code) is not None:
        raise ValueError(f"code {code!r} is already a product's")
    fields = dict(values)
    if "variants" in fields:
        fields["variants"] = variants_json(fields["variants"])
    if "nicknames" in fields:
        await check_nickname_clash(session, code, fields["nicknames"])
        fields["nicknames"] = nicknames_json(fields["nicknames"])
    product = Product(code=code, **fields, held=0, sold=0, created_at=now, updated_at=now)
    session.add(product)
    await session.flush()
    return product


async def set_campaign_target(
    session: AsyncSession,
    campaign: Campaign,
    target: tuple[str | None, str | None, bool],
    now: datetime,
) -> None:
    """Sell under another post or live video: (post_id, live_video_id, next_live), checked by the caller.

    A pinned comment posted on the old post stays there; forgetting its id lets the new post get its own.
    """
    post_id, live_video_id, next_live = target
    if (campaign.post_id, campaign.live_video_id, campaign.next_live) == target:
        return
    if (campaign.post_id, campaign.live_video_id) != (post_id, live_video_id):
        campaign.pinned_comment_id = None
    campaign.post_id, campaign.live_video_id, campaign.next_live = post_id, live_video_id, next_live
    campaign.updated_at = now
    session.add(campaign)
    await session.flush()


async def apply_campaign_fields(
    session: AsyncSession, campaign: Campaign, values: Mapping[str, Any], now: datetime
) -> Campaign:
    """Change some of CAMPAIGN_PATCH_FIELDS (already validated, ends after starts); returns it as stored."""
    unknown = set(values) - set(CAMPAIGN_PATCH_FIELDS)
    if unknown:
        raise ValueError(f"not campaign fields: {', '.join(sorted(unknown))}")
    for name, value in values.items():
        setattr(campaign, name, value)
    if values:
        campaign.updated_at = now
    await session.flush()
    return campaign


async def _reload(session: AsyncSession, table: type[Product], row_id: int) -> Product:
    stmt = select(table).where(table.id == row_id).execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


# --- reads ---


async def fetch_products(session: AsyncSession, *, active: bool | None = None) -> list[Product]:
    """All products in the order they were first loaded; `active` filters on the flag."""
    stmt = select(Product).order_by(Product.id)
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))  # type: ignore[attr-defined]
    return list((await session.execute(stmt)).scalars())


async def fetch_product(session: AsyncSession, code: str, *, lock: bool = False) -> Product | None:
    """The product with this code, matched case-insensitively like shoppers' codes (an exact match first)."""
    stmt = select(Product).where(Product.code == code)
    if lock:
        stmt = stmt.with_for_update()
    product = (await session.execute(stmt)).scalar_one_or_none()
    if product is not None:
        return product
    key = code_key(code)
    for candidate in await fetch_products(session):
        if code_key(candidate.code) == key:
            return await fetch_product(session, candidate.code, lock=lock) if lock else candidate
    return None


async def fetch_campaigns(session: AsyncSession) -> list[CampaignInfo]:
    """All campaigns with their products, in the order they were first loaded."""
    campaigns = list((await session.execute(select(Campaign).order_by(Campaign.id))).scalars())
    return await _with_products(session, campaigns)


async def fetch_campaign(session: AsyncSession, key: str, *, lock: bool = False) -> CampaignInfo | None:
    stmt = select(Campaign).where(Campaign.key == key)
    if lock:
        stmt = stmt.with_for_update()
    campaign = (await session.execute(stmt)).scalar_one_or_none()
    if campaign is None:
        return None
    (info,) = await _with_products(session, [campaign])
    return info


async def _with_products(session: AsyncSession, campaigns: list[Campaign]) -> list[CampaignInfo]:
    ids = [c.id for c in campaigns]
    stmt = (
        select(CampaignProduct.campaign_id, CampaignProduct.order_code, Product.code, Product.id)
        .join(Product, Product.id == CampaignProduct.product_id)  # type: ignore[arg-type]
        .where(CampaignProduct.campaign_id.in_(ids))  # type: ignore[attr-defined]
        .order_by(CampaignProduct.id)
    )
    products: dict[int, list[CampaignProductInfo]] = {}
    for campaign_id, order_code, product_code, product_id in (await session.execute(stmt)).all():
        products.setdefault(campaign_id, []).append(CampaignProductInfo(order_code, product_code, product_id))
    return [CampaignInfo(c, tuple(products.get(c.id, ()))) for c in campaigns if c.id is not None]


# --- JSON shapes ---


def render_price(price: Decimal) -> str:
    """Two decimals, as text (JSON numbers would lose the cents to floats): "1280.00"."""
    value = Decimal(price).quantize(_CENT)
    return str(value.copy_abs() if value.is_zero() else value)  # never "-0.00"


def product_to_dict(product: Product) -> dict[str, Any]:
    available = None if product.stock is None else max(product.stock - product.held - product.sold, 0)
    return {
        "code": product.code,
        "name": product.name,
        "price": render_price(product.price),
        "variants": json.loads(product.variants or "{}"),
        "stock": product.stock,
        "held": product.held,
        "sold": product.sold,
        "available": available,
        "active": product.active,
        "image_url": product.image_url,
        "nicknames": list(product_nicknames(product)),
        "name_keyword": product.name_keyword,
        "created_at": product.created_at.isoformat(),
        "updated_at": product.updated_at.isoformat(),
    }


def campaign_to_dict(info: CampaignInfo, now: datetime) -> dict[str, Any]:
    """The admin API's shape of a campaign; its `status` (scheduled, open, ended) is as of `now`."""
    campaign = info.campaign
    if now < campaign.starts_at:
        status = "scheduled"
    elif now < campaign.ends_at:
        status = "open"
    else:
        status = "ended"
    return {
        "key": campaign.key,
        "title": campaign.title,
        "page_id": campaign.page_id,
        "post_id": campaign.post_id,
        "live_video_id": campaign.live_video_id,
        "next_live": campaign.next_live,
        "starts_at": campaign.starts_at.isoformat(),
        "ends_at": campaign.ends_at.isoformat(),
        "status": status,
        "per_shopper_limit": campaign.per_shopper_limit,
        "hold_minutes": campaign.hold_minutes,
        "pinned_text": campaign.pinned_text,
        "closed_reply": campaign.closed_reply,
        "pinned_comment_id": campaign.pinned_comment_id,
        "products": [{"code": p.code, "product": p.product} for p in info.products],
        "created_at": campaign.created_at.isoformat(),
        "updated_at": campaign.updated_at.isoformat(),
    }
