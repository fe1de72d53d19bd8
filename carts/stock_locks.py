"""The locks stock decisions take on product rows, so that held + sold never exceeds stock across workers.

On PostgreSQL each decision locks the rows of the products it changes; SQLite has one writer at a time and
renders no lock clause. Products are always locked in id order, so two workers cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.tables import Product


async def lock_products_for_allocation(session: AsyncSession, product_ids: Iterable[int]) -> list[Row[Any]]:
    """Lock these products for deciding their pending claims; their (id, stock, held, sold), in id order."""
    locked = await session.execute(
        select(Product.id, Product.stock, Product.held, Product.sold)
        .where(Product.id.in_(sorted(set(product_ids))))
        .order_by(Product.id)
        # NO KEY UPDATE: serialises allocators but not the KEY SHARE lock a new claim's foreign key
        # takes on its product, which would deadlock two workers that each recorded a claim first.
        .with_for_update(key_share=True)
    )
    return list(locked.all())


async def lock_product(session: AsyncSession, product_id: int) -> Product:
    """The product, locked for changing its counts (FOR UPDATE on PostgreSQL)."""
    return (await session.execute(select(Product).where(Product.id == product_id).with_for_update())).scalar_one()
