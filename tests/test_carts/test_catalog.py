"""Tests for carts.catalog: changing a product's fields on a real SQLite database, given / when / then."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from carts.catalog import ShopApplyError, apply_product_fields, fetch_product
from carts.tables import Product
from tests.conftest import database_sessions, database_url

NOW = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a database holding product A: 12 units, sizes S, M and L (as the shop file loads it)."""
    async with database_sessions(database_url(tmp_path)) as factory:
        async with factory() as session, session.begin():
            session.add(
                Product(
                    code="A",
                    name="Floral wrap dress",
                    price=Decimal("1280"),
                    variants=json.dumps({"size": ["S", "M", "L"]}),
                    stock=12,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        yield factory


async def set_counts(sessions: async_sessionmaker[AsyncSession], code: str, held: int, sold: int) -> None:
    """What the stock code does when shoppers hold and buy (simulated by a direct UPDATE)."""
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE product SET held = :held, sold = :sold WHERE code = :code"),
            {"held": held, "sold": sold, "code": code},
        )


async def product(sessions: async_sessionmaker[AsyncSession], code: str) -> Product:
    async with sessions() as session:
        found = await fetch_product(session, code)
    assert found is not None
    return found


async def test_patch_stock_is_conditional_on_held_and_sold(sessions: async_sessionmaker[AsyncSession]) -> None:
    await set_counts(sessions, "A", held=5, sold=1)

    with pytest.raises(ShopApplyError, match=r"^stock: 5 is below the 6 units of product 'A'"):
        async with sessions() as session, session.begin():
            found = await fetch_product(session, "a", lock=True)
            assert found is not None
            await apply_product_fields(session, found, {"stock": 5, "name": "Dress"}, NOW)
    unchanged = await product(sessions, "A")
    assert (unchanged.stock, unchanged.name) == (12, "Floral wrap dress")

    async with sessions() as session, session.begin():
        found = await fetch_product(session, "A", lock=True)
        assert found is not None
        updated = await apply_product_fields(session, found, {"stock": 6, "price": Decimal("99.9")}, NOW)
    assert (updated.stock, updated.held, updated.sold, updated.price) == (6, 5, 1, Decimal("99.90"))
    assert json.loads(updated.variants) == {"size": ["S", "M", "L"]}
