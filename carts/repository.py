"""Reads of carts and claims for messages and pages (a thin SQL layer around `carts.core`)."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.core import CartInfo, CartLineInfo, merge_lines, variant_pairs
from carts.tables import CampaignProduct, Product, ShopInfo, StockClaim


async def fetch_currency(session: AsyncSession) -> str:
    shop = await session.get(ShopInfo, 1)
    return shop.currency if shop is not None else "HKD"


async def fetch_cart(session: AsyncSession, page_id: str, psid: str) -> CartInfo:
    """The shopper's cart on a Page: every unit held for them, merged by product and variant."""
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
        .where(StockClaim.page_id == page_id, StockClaim.psid == psid, StockClaim.status == "held")
        .order_by(StockClaim.arrival)
    )
    lines = [
        CartLineInfo(
            claim.product_id,
            order_code or code,
            name,
            variant_pairs(json.loads(claim.variant) if claim.variant else None),
            claim.qty,
            Decimal(price),
        )
        for claim, code, name, price, order_code in rows.all()
    ]
    return CartInfo(merge_lines(lines), await fetch_currency(session))


async def fetch_claims_of_comment(session: AsyncSession, comment_id: str) -> list[StockClaim]:
    rows = await session.execute(
        select(StockClaim).where(StockClaim.comment_id == comment_id).order_by(StockClaim.arrival, StockClaim.id)
    )
    return list(rows.scalars())
