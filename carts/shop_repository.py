"""Shop configuration in SQL: apply a parsed shop file, read and change products and campaigns (issue 5).

Repository module (talks SQL, in the caller's transaction; the caller commits or rolls back):

- `apply_shop(session, shop)` makes the tables match a `config.shop_file.ShopConfig`: the shop's name and
  currency in the one `shop_info` row (its time zone and default Page only shape the campaigns), products
  upserted by code (matched case-insensitively, like shoppers' codes), products missing from the file set
  inactive (never deleted: orders refer to them), campaigns upserted by key, campaign products made to
  match. Campaigns missing from the file are ended (their `ends_at` moved to now): they may have carts and
  orders, so they stay. Loading the same file twice changes nothing.
- Stock: `held` and `sold` belong to the stock code and are never written here. A new `stock` is written
  by a conditional UPDATE (`WHERE held + sold <= :stock`), so even a hold that lands between our read and
  our write cannot end up above stock (docs/architecture.md, invariant 3); a stock below `held + sold` is refused with
  `ShopApplyError` before anything is written.
- Read helpers and the JSON shapes the admin API answers with: prices as strings ("1280.00"), times ISO 8601.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.runtime.clock import utcnow
from bot.store.faq_rules import apply_faq
from carts.tables import Campaign, CampaignProduct, Product
from carts.tables import ShopInfo as ShopRow  # not config.shop_file.ShopInfo, the file's `shop:` section
from config.shop_file import CAMPAIGN_FIELDS, CampaignConfig, ShopConfig
from crm_bridge.repository import apply_program
from parsers.order_comment import code_key

__all__ = [
    "CAMPAIGN_PATCH_FIELDS",
    "PRODUCT_PATCH_FIELDS",
    "CampaignInfo",
    "CampaignProductInfo",
    "ChangeCounts",
    "ShopApplyError",
    "ShopChanges",
    "ShopErrorCode",
    "apply_campaign_fields",
    "apply_product_fields",
    "apply_shop",
    "campaign_to_dict",
    "fetch_campaign",
    "fetch_campaigns",
    "fetch_product",
    "fetch_products",
    "product_to_dict",
    "render_price",
]

PRODUCT_PATCH_FIELDS = ("name", "price", "stock", "active")
CAMPAIGN_PATCH_FIELDS = (
    "title",
    "starts_at",
    "ends_at",
    "per_shopper_limit",
    "hold_minutes",
    "pinned_text",
    "closed_reply",
)
# The campaign columns the file sets: every campaign field but the key it is found by and its products.
_CAMPAIGN_FILE_FIELDS = tuple(f for f in CAMPAIGN_FIELDS if f not in ("key", "products"))
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
class ChangeCounts:
    """What a load did to one kind of row."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0  # products: set inactive; campaigns: ended

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ShopChanges:
    """What `apply_shop` did, per kind. A second load of the same file is all `unchanged`."""

    products: ChangeCounts
    campaigns: ChangeCounts
    shop: ChangeCounts = ChangeCounts()  # the shop_info row: created, updated or unchanged
    faq: ChangeCounts | None = None  # FAQ rules (deactivated: deleted); None when the file has no faq: section

    @property
    def changed(self) -> bool:
        kinds = (self.shop, self.products, self.campaigns, self.faq or ChangeCounts())
        return any(c.created or c.updated or c.deactivated for c in kinds)

    def to_dict(self) -> dict[str, dict[str, int]]:
        counts = {
            "shop": self.shop.to_dict(),
            "products": self.products.to_dict(),
            "campaigns": self.campaigns.to_dict(),
        }
        return counts if self.faq is None else {**counts, "faq": self.faq.to_dict()}

    def summary_lines(self) -> list[str]:
        """One line per kind, for the command line."""
        s, p, c, f = self.shop, self.products, self.campaigns, self.faq
        lines = [
            f"shop: {s.created} created, {s.updated} updated, {s.unchanged} unchanged",
            f"products: {p.created} created, {p.updated} updated, {p.unchanged} unchanged, {p.deactivated} deactivated",
            f"campaigns: {c.created} created, {c.updated} updated, {c.unchanged} unchanged, {c.deactivated} ended",
        ]
        if f is not None:
            lines.append(
                f"faq rules: {f.created} created, {f.updated} updated, {f.unchanged} unchanged, {f.deactivated} deleted"
            )
        return lines


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


# --- applying a shop file ---


async def apply_shop(session: AsyncSession, shop: ShopConfig) -> ShopChanges:
    """Make products, campaigns and campaign products match `shop`, in the caller's transaction.

    Raises `ShopApplyError` (before writing anything) when a product's new stock is below what is
    already held or sold; the caller rolls back.
    """
    now = utcnow()
    # Locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) so that two loads, or a
    # load and an admin PATCH, cannot interleave their reads and writes of the same rows.
    rows = (await session.execute(select(Product).order_by(Product.id).with_for_update())).scalars().all()
    by_key = {code_key(row.code): row for row in rows}
    _refuse_stock_below_committed(shop, by_key)
    shop_counts = await _apply_shop_row(session, shop, now)

    created = updated = unchanged = deactivated = 0
    product_ids: dict[str, int] = {}
    new_products: list[Product] = []
    for index, product in enumerate(shop.products):
        values: dict[str, Any] = {
            "code": product.code,
            "name": product.name,
            "price": product.price,
            "variants": _variants_json(product.variants),
            "stock": product.stock,
            "active": True,
        }
        row = by_key.get(code_key(product.code))
        if row is None:
            new = Product(**values, held=0, sold=0, created_at=now, updated_at=now)
            session.add(new)
            new_products.append(new)
            created += 1
            continue
        assert row.id is not None
        product_ids[product.code] = row.id
        changed = {name: value for name, value in values.items() if getattr(row, name) != value}
        if not changed:
            unchanged += 1
            continue
        if not await _update_product(session, row.id, changed, now):
            # A hold landed after the check above (possible on PostgreSQL only).
            raise await _stock_error(session, row.id, product.stock, f"{shop.source}:{product.line}: products[{index}]")
        updated += 1
    in_file = {code_key(product.code) for product in shop.products}
    for row in rows:
        if row.active and code_key(row.code) not in in_file:
            assert row.id is not None
            await _update_product(session, row.id, {"active": False}, now)
            deactivated += 1
    await session.flush()
    product_ids.update({new.code: new.id for new in new_products if new.id is not None})
    product_counts = ChangeCounts(created, updated, unchanged, deactivated)
    campaign_counts = await _apply_campaigns(session, shop.campaigns, product_ids, now)
    if shop.membership is not None:
        await apply_program(session, shop.membership, now)  # crm_bridge: tiers, points and referral rules
    faq_counts = None
    if shop.faq:
        faq = await apply_faq(session, shop.faq)
        faq_counts = ChangeCounts(faq.created, faq.updated, faq.unchanged, faq.deleted)
    return ShopChanges(products=product_counts, campaigns=campaign_counts, shop=shop_counts, faq=faq_counts)


async def _apply_shop_row(session: AsyncSession, shop: ShopConfig, now: datetime) -> ChangeCounts:
    row = await session.get(ShopRow, 1, with_for_update=True)
    if row is None:
        session.add(ShopRow(id=1, name=shop.shop.name, currency=shop.shop.currency, updated_at=now))
        return ChangeCounts(created=1)
    if (row.name, row.currency) == (shop.shop.name, shop.shop.currency):
        return ChangeCounts(unchanged=1)
    row.name, row.currency, row.updated_at = shop.shop.name, shop.shop.currency, now
    return ChangeCounts(updated=1)


def _refuse_stock_below_committed(shop: ShopConfig, by_key: Mapping[str, Product]) -> None:
    for index, product in enumerate(shop.products):
        row = by_key.get(code_key(product.code))
        if row is not None and product.stock is not None and product.stock < row.held + row.sold:
            where = f"{shop.source}:{product.line}: products[{index}]"
            raise ShopApplyError(
                ShopErrorCode.STOCK_BELOW_COMMITTED,
                _stock_message(where, row.code, product.stock, row.held, row.sold),
                product=row.code,
            )


def _stock_message(where: str, code: str, stock: int | None, held: int, sold: int) -> str:
    field = f"{where}.stock" if where else "stock"
    return (
        f"{field}: {stock} is below the {held + sold} units of product {code!r} already taken "
        f"({held} held in carts, {sold} sold); stock must be at least {held + sold}"
    )


async def _stock_error(session: AsyncSession, product_id: int, stock: int | None, where: str) -> ShopApplyError:
    held, sold, code = (
        await session.execute(select(Product.held, Product.sold, Product.code).where(Product.id == product_id))
    ).one()
    return ShopApplyError(
        ShopErrorCode.STOCK_BELOW_COMMITTED, _stock_message(where, code, stock, held, sold), product=code
    )


async def _update_product(session: AsyncSession, product_id: int, values: Mapping[str, Any], now: datetime) -> bool:
    """UPDATE one product's configured fields; a new stock only if it still covers held + sold.

    Never names `held` or `sold`. False when the stock condition refused the row.
    """
    stmt = update(Product).where(Product.id == product_id).values(**values, updated_at=now)
    if values.get("stock") is not None:
        stmt = stmt.where(Product.held + Product.sold <= values["stock"])
    result = await session.execute(stmt.execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _variants_json(variants: Mapping[str, Sequence[str]]) -> str:
    # Compact and in file order, so the same file always gives the same text (and "unchanged").
    return json.dumps({option: list(values) for option, values in variants.items()}, ensure_ascii=False)


async def _apply_campaigns(
    session: AsyncSession, campaigns: Sequence[CampaignConfig], product_ids: Mapping[str, int], now: datetime
) -> ChangeCounts:
    rows = (await session.execute(select(Campaign).order_by(Campaign.id).with_for_update())).scalars().all()
    by_key = {row.key: row for row in rows}
    links: dict[int, list[CampaignProduct]] = {}
    for link in (await session.execute(select(CampaignProduct).order_by(CampaignProduct.id))).scalars():
        links.setdefault(link.campaign_id, []).append(link)

    created = updated = unchanged = deactivated = 0
    for config in campaigns:
        wanted = {product_ids[entry.product]: entry.code for entry in config.products}
        row = by_key.get(config.key)
        if row is None:
            row = Campaign(
                key=config.key,
                **{name: getattr(config, name) for name in _CAMPAIGN_FILE_FIELDS},
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            await session.flush()
            assert row.id is not None
            session.add_all(
                CampaignProduct(campaign_id=row.id, product_id=product_id, order_code=code)
                for product_id, code in wanted.items()
            )
            created += 1
            continue
        assert row.id is not None
        fields_changed = False
        for name in _CAMPAIGN_FILE_FIELDS:
            value = getattr(config, name)
            if getattr(row, name) != value:
                setattr(row, name, value)
                fields_changed = True
        links_changed = await _replace_links(session, row.id, links.get(row.id, []), wanted)
        if fields_changed or links_changed:
            row.updated_at = now
            updated += 1
        else:
            unchanged += 1
    in_file = {config.key for config in campaigns}
    for row in rows:
        if row.key not in in_file and row.ends_at > now:
            # Ended rather than deleted: carts and orders may refer to it, and putting it back in the file
            # (with its times) reopens it.
            row.ends_at = now
            row.starts_at = min(row.starts_at, now)
            row.updated_at = now
            deactivated += 1
    await session.flush()
    return ChangeCounts(created, updated, unchanged, deactivated)


async def _replace_links(
    session: AsyncSession, campaign_id: int, current: Iterable[CampaignProduct], wanted: Mapping[int, str]
) -> bool:
    """Make the campaign's products exactly `wanted` (product id -> order code); rows of kept products stay."""
    by_product = {link.product_id: link for link in current}
    removed = [link.id for product_id, link in by_product.items() if product_id not in wanted]
    renamed = [
        (link, wanted[product_id])
        for product_id, link in by_product.items()
        if product_id in wanted and link.order_code != wanted[product_id]
    ]
    added = [(product_id, code) for product_id, code in wanted.items() if product_id not in by_product]
    if removed:
        await session.execute(delete(CampaignProduct).where(CampaignProduct.id.in_(removed)))  # type: ignore[union-attr]
    if renamed:
        # (campaign, order code) is unique and checked per statement, so swapping two codes (A <-> B)
        # needs each row to step aside first. "#" can never start a real code.
        for link, _ in renamed:
            link.order_code = f"#{link.id}"
        await session.flush()
        for link, code in renamed:
            link.order_code = code
        await session.flush()
    session.add_all(
        CampaignProduct(campaign_id=campaign_id, product_id=product_id, order_code=code) for product_id, code in added
    )
    return bool(removed or renamed or added)


# --- the admin API's changes ---


async def apply_product_fields(session: AsyncSession, product: Product, values: Mapping[str, Any]) -> Product:
    """Change some of PRODUCT_PATCH_FIELDS (already validated); returns the product as stored.

    Raises `ShopApplyError` when a new stock is below held + sold (nothing written).
    """
    assert product.id is not None
    unknown = set(values) - set(PRODUCT_PATCH_FIELDS)
    if unknown:
        raise ValueError(f"not product fields: {', '.join(sorted(unknown))}")
    if values and not await _update_product(session, product.id, values, utcnow()):
        raise await _stock_error(session, product.id, values.get("stock"), "")
    return await _reload(session, Product, product.id)


async def apply_campaign_fields(session: AsyncSession, campaign: Campaign, values: Mapping[str, Any]) -> Campaign:
    """Change some of CAMPAIGN_PATCH_FIELDS (already validated, ends after starts); returns it as stored."""
    unknown = set(values) - set(CAMPAIGN_PATCH_FIELDS)
    if unknown:
        raise ValueError(f"not campaign fields: {', '.join(sorted(unknown))}")
    for name, value in values.items():
        setattr(campaign, name, value)
    if values:
        campaign.updated_at = utcnow()
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
        "created_at": product.created_at.isoformat(),
        "updated_at": product.updated_at.isoformat(),
    }


def campaign_to_dict(info: CampaignInfo, now: datetime | None = None) -> dict[str, Any]:
    campaign = info.campaign
    now = now or utcnow()
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
        "products": [{"code": p.code, "product": p.product} for p in info.products],
        "created_at": campaign.created_at.isoformat(),
        "updated_at": campaign.updated_at.isoformat(),
    }
