"""Reads of carts and claims for messages and pages (a thin SQL layer around `carts.core`)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, and_, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from carts.core import CartInfo, CartLineInfo, merge_lines, variant_pairs
from carts.stock_rules import ClaimStatus
from carts.tables import CampaignProduct, Product, ShopInfo, StockClaim


async def fetch_currency(session: AsyncSession) -> str:
    shop = await session.get(ShopInfo, 1)
    return shop.currency if shop is not None else "HKD"


async def fetch_hold_expiry(session: AsyncSession, page_id: str, psid: str) -> datetime | None:
    """When the first of the shopper's held units goes back to stock (what "23 min left" counts down to)."""
    result = await session.execute(
        select(func.min(StockClaim.expires_at)).where(
            StockClaim.page_id == page_id, StockClaim.psid == psid, StockClaim.status == ClaimStatus.HELD.value
        )
    )
    return result.scalar_one_or_none()


async def fetch_cart(session: AsyncSession, page_id: str, psid: str) -> CartInfo:
    """The shopper's cart on a Page: every unit held for them, merged by product and variant."""
    return (await fetch_carts(session, {(page_id, psid)}))[(page_id, psid)]


async def fetch_carts(session: AsyncSession, shoppers: set[tuple[str, str]]) -> dict[tuple[str, str], CartInfo]:
    """Carts of many (page id, psid) shoppers with one query."""
    currency = await fetch_currency(session)
    lines: dict[tuple[str, str], list[CartLineInfo]] = {shopper: [] for shopper in shoppers}
    if shoppers:
        # Columns, not StockClaim objects: every private reply reads carts, and ORM objects cost several times more.
        rows = await session.execute(
            select(
                StockClaim.page_id,
                StockClaim.psid,
                StockClaim.product_id,
                StockClaim.variant,
                StockClaim.qty,
                Product.code,
                Product.name,
                Product.price,
                CampaignProduct.order_code,
            )
            .join(Product, Product.id == StockClaim.product_id)
            .outerjoin(
                CampaignProduct,
                and_(
                    CampaignProduct.campaign_id == StockClaim.campaign_id,
                    CampaignProduct.product_id == StockClaim.product_id,
                ),
            )
            .where(tuple_(StockClaim.page_id, StockClaim.psid).in_(shoppers), StockClaim.status == ClaimStatus.HELD)
            .order_by(StockClaim.arrival)
        )
        for page_id, psid, product_id, variant_json, qty, code, name, price, order_code in rows.all():
            variant = variant_pairs(json.loads(variant_json) if variant_json else None)
            lines[(page_id, psid)].append(
                CartLineInfo(product_id, order_code or code, name, variant, qty, Decimal(price))
            )
    return {shopper: CartInfo(merge_lines(found), currency) for shopper, found in lines.items()}


async def fetch_claim_rows_of_comments(session: AsyncSession, comment_ids: set[str]) -> dict[str, list[Row[Any]]]:
    """What the comments claimed, to report (rows with the claims' product_id, variant, qty and status)."""
    found: dict[str, list[Row[Any]]] = {c: [] for c in comment_ids}
    if comment_ids:
        rows = await session.execute(
            select(StockClaim.comment_id, StockClaim.product_id, StockClaim.variant, StockClaim.qty, StockClaim.status)
            .where(StockClaim.comment_id.in_(comment_ids))
            .order_by(StockClaim.arrival, StockClaim.id)
        )
        for claim in rows.all():
            found[claim.comment_id].append(claim)
    return found


async def fetch_claims_of_comment(session: AsyncSession, comment_id: str) -> list[StockClaim]:
    """The comment's claims as objects, to change them (an edited or removed comment)."""
    rows = await session.execute(
        select(StockClaim).where(StockClaim.comment_id == comment_id).order_by(StockClaim.arrival, StockClaim.id)
    )
    return list(rows.scalars())
