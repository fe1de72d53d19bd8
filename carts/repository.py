"""Reads of carts and claims for messages and pages (a thin SQL layer around `carts.core`)."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from carts.core import CartInfo, CartLineInfo, merge_lines, variant_pairs
from carts.tables import CampaignProduct, Product, ShopInfo, StockClaim


async def fetch_currency(session: AsyncSession) -> str:
    shop = await session.get(ShopInfo, 1)
    return shop.currency if shop is not None else "HKD"


async def fetch_cart(session: AsyncSession, page_id: str, psid: str) -> CartInfo:
    """The shopper's cart on a Page: every unit held for them, merged by product and variant."""
    return (await fetch_carts(session, {(page_id, psid)}))[(page_id, psid)]


async def fetch_carts(session: AsyncSession, shoppers: set[tuple[str, str]]) -> dict[tuple[str, str], CartInfo]:
    """Carts of many (page id, psid) shoppers with one query."""
    currency = await fetch_currency(session)
    lines: dict[tuple[str, str], list[CartLineInfo]] = {shopper: [] for shopper in shoppers}
    if shoppers:
        rows = await session.execute(
            select(StockClaim, Product.code, Product.name, Product.price, CampaignProduct.order_code)
            .join(Product, Product.id == StockClaim.product_id)
            .outerjoin(
                CampaignProduct,
                and_(
                    CampaignProduct.campaign_id == StockClaim.campaign_id,
                    CampaignProduct.product_id == StockClaim.product_id,
                ),
            )
            .where(tuple_(StockClaim.page_id, StockClaim.psid).in_(shoppers), StockClaim.status == "held")
            .order_by(StockClaim.arrival)
        )
        for claim, code, name, price, order_code in rows.all():
            variant = variant_pairs(json.loads(claim.variant) if claim.variant else None)
            lines[(claim.page_id, claim.psid)].append(
                CartLineInfo(claim.product_id, order_code or code, name, variant, claim.qty, Decimal(price))
            )
    return {shopper: CartInfo(merge_lines(found), currency) for shopper, found in lines.items()}


async def fetch_claims_of_comments(session: AsyncSession, comment_ids: set[str]) -> dict[str, list[StockClaim]]:
    found: dict[str, list[StockClaim]] = {c: [] for c in comment_ids}
    if comment_ids:
        rows = await session.execute(
            select(StockClaim).where(StockClaim.comment_id.in_(comment_ids)).order_by(StockClaim.arrival, StockClaim.id)
        )
        for claim in rows.scalars():
            found[claim.comment_id].append(claim)
    return found


async def fetch_claims_of_comment(session: AsyncSession, comment_id: str) -> list[StockClaim]:
    return (await fetch_claims_of_comments(session, {comment_id}))[comment_id]
