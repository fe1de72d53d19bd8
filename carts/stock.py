"""Fair stock holds written: first come, first served with any number of workers, never oversold.

Two steps, because workers finish comments out of order:

1. Whichever worker handles a comment records a `StockClaim` (pending) in the comment's transaction.
   Its `arrival` is the comment's place in the ingest stream (`carts.stock_rules.arrival_key`): the order
   the server received them (docs/architecture.md, invariant 4).
2. `allocate` decides pending claims of a product oldest first, but only those that arrived before the
   stream's low watermark, the oldest entry not yet acknowledged (`bot.inbound.ingest.IngestStream.watermark`).
   Every comment before the watermark has its claims committed (an entry is acknowledged only after its
   transaction), so no earlier claim can still appear: a later comment can never take stock an earlier
   one is owed. The product row is locked for the decision (`carts.stock_locks`), and the stock check is
   a conditional on the counts in that row: held + sold <= stock.

Each function here locks (`carts.stock_locks`), reads, asks the pure rules what to do
(`carts.stock_rules`) and writes the answer. `now` is always the caller's: the domain reads no clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from carts.stock_locks import lock_product, lock_products_for_allocation
from carts.stock_rules import (
    ClaimChange,
    ClaimDecision,
    ClaimStatus,
    allocate_claims,
    claim_decision,
    hold_expires,
    release_order,
    status_after_release,
    units_free,
    waitlist_grants,
    waitlisted_rest,
)
from carts.tables import Product, StockClaim


async def allocate(session: AsyncSession, product_id: int, watermark: str, now: datetime) -> list[ClaimDecision]:
    """Decide the product's pending claims that arrived before `watermark`, oldest first (one transaction)."""
    return await allocate_products(session, [product_id], watermark, now)


async def allocate_pending(session: AsyncSession, watermark: str, now: datetime) -> list[ClaimDecision]:
    """Decide every pending claim that arrived before `watermark`, whatever its product."""
    return await allocate_products(session, await products_with_pending_claims(session, watermark), watermark, now)


async def allocate_products(
    session: AsyncSession, product_ids: list[int], watermark: str, now: datetime
) -> list[ClaimDecision]:
    """Decide the pending claims of these products that arrived before `watermark`, oldest first.

    A constant number of statements whatever the number of claims or products: lock the products (in id
    order, so two workers cannot deadlock), read their pending claims after the lock (so none is decided
    twice), decide in arrival order, and write the changed rows with one executemany per table. It runs on
    every worker batch, so it reads and writes rows with Core rather than ORM objects (several times
    cheaper per claim); instances the session already holds are brought up to date.
    """
    if not product_ids:
        return []
    free = {
        pid: units_free(stock, held, sold)
        for pid, stock, held, sold in await lock_products_for_allocation(session, product_ids)
    }
    if not free:
        return []
    table = StockClaim.__table__
    claims = (
        await session.execute(
            select(table)
            .where(
                table.c.product_id.in_(list(free)),
                table.c.status == ClaimStatus.PENDING,
                table.c.arrival < watermark,
            )
            .order_by(table.c.product_id, table.c.arrival, table.c.id)
        )
    ).all()
    allocation = allocate_claims(free, claims, now)
    decisions = allocation.decisions
    for index, rest in allocation.rests:  # rare: once per product that runs out
        rest_id = (await session.execute(insert(table).returning(table.c.id), rest)).scalar_one()
        decisions[index] = replace(decisions[index], claim_id=rest_id)
    if allocation.changes:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                status=bindparam("status"), qty=bindparam("qty"), expires_at=bindparam("expires_at"), decided_at=now
            ),
            allocation.changes,
        )
    if allocation.taken:
        products = Product.__table__
        await session.execute(
            update(products).where(products.c.id == bindparam("_id")).values(held=products.c.held + bindparam("add")),
            [{"_id": pid, "add": qty} for pid, qty in sorted(allocation.taken.items())],
        )
    _refresh_cached(session, allocation.changes, allocation.taken, now)
    return decisions


def _refresh_cached(session: AsyncSession, changes: list[dict[str, Any]], taken: dict[int, int], now: datetime) -> None:
    """Bring claims and products this session already holds as objects in line with what Core just wrote,
    without marking them changed (a caller's earlier objects must not read stale counts or flush them back)."""
    identities = session.sync_session.identity_map
    if not identities:
        return
    for change in changes:
        claim = identities.get(identity_key(StockClaim, change["_id"]))
        if claim is not None:
            for name in ("status", "qty", "expires_at"):
                set_committed_value(claim, name, change[name])
            set_committed_value(claim, "decided_at", now)
    for product_id, qty in taken.items():
        product = identities.get(identity_key(Product, product_id))
        if product is not None:
            set_committed_value(product, "held", product.held + qty)


async def products_with_pending_claims(session: AsyncSession, watermark: str) -> list[int]:
    rows = await session.execute(
        select(StockClaim.product_id)
        .where(StockClaim.status == ClaimStatus.PENDING, StockClaim.arrival < watermark)
        .distinct()
    )
    return sorted(rows.scalars().all())


async def expire_holds(session: AsyncSession, now: datetime) -> list[ClaimDecision]:
    """Release holds whose time ran out, then give the freed units to the waitlist, oldest first."""
    expired = (
        (
            await session.execute(
                select(StockClaim)
                .where(StockClaim.status == ClaimStatus.HELD, StockClaim.expires_at < now)
                .order_by(StockClaim.product_id, StockClaim.arrival)
            )
        )
        .scalars()
        .all()
    )
    decisions: list[ClaimDecision] = []
    freed: set[int] = set()
    for claim in expired:
        product = await lock_product(session, claim.product_id)
        # Read the claim again under the product's lock: a checkout may have sold it since it was listed.
        await session.refresh(claim)
        if claim.status != ClaimStatus.HELD or claim.expires_at is None or claim.expires_at >= now:
            continue
        product.held -= claim.qty
        claim.status, claim.decided_at = ClaimStatus.EXPIRED, now
        session.add_all([product, claim])
        freed.add(claim.product_id)
        decisions.append(claim_decision(claim, ClaimChange.EXPIRED))
    for product_id in sorted(freed):
        decisions += await promote_waitlist(session, product_id, now)
    await session.flush()
    return decisions


async def promote_waitlist(session: AsyncSession, product_id: int, now: datetime) -> list[ClaimDecision]:
    """Units free again go to waitlisted claims in arrival order (each whole, or split as at first)."""
    product = await lock_product(session, product_id)
    waiting = (
        (
            await session.execute(
                select(StockClaim)
                .where(StockClaim.product_id == product_id, StockClaim.status == ClaimStatus.WAITLISTED)
                .order_by(StockClaim.arrival, StockClaim.id)
            )
        )
        .scalars()
        .all()
    )
    grants = waitlist_grants(units_free(product.stock, product.held, product.sold), [c.qty for c in waiting])
    decisions: list[ClaimDecision] = []
    for claim, granted in zip(waiting, grants, strict=False):
        if granted < claim.qty:
            session.add(split_waitlisted(claim, claim.qty - granted, now))
            claim.qty = granted
        claim.status, claim.decided_at, claim.promoted_at = ClaimStatus.HELD, now, now
        claim.expires_at = hold_expires(now, claim.hold_minutes)
        product.held += granted
        session.add(claim)
        decisions.append(claim_decision(claim, ClaimChange.PROMOTED))
    session.add(product)
    await session.flush()
    return decisions


def split_waitlisted(claim: StockClaim, qty: int, now: datetime) -> StockClaim:
    """The part of a claim that must keep waiting, in the claim's own place in line."""
    return StockClaim(**waitlisted_rest(claim, qty, now))


async def holds_to_remind(session: AsyncSession, before: timedelta, now: datetime) -> list[StockClaim]:
    """Holds that run out within `before` and whose shopper was not reminded yet."""
    rows = await session.execute(
        select(StockClaim).where(
            StockClaim.status == ClaimStatus.HELD,
            StockClaim.reminded_at.is_(None),
            StockClaim.expires_at < now + before,
        )
    )
    return list(rows.scalars())


async def release_claims(
    session: AsyncSession, claims: list[StockClaim], now: datetime, *, qty: int | None = None
) -> list[ClaimDecision]:
    """Give back up to `qty` units (all when None) of these claims, latest first; held units go to the waitlist.

    Sold units are never released here (an order owns them: returns restock through the order).
    """
    live = release_order(claims)
    remaining = qty if qty is not None else sum(c.qty for c in live)
    decisions: list[ClaimDecision] = []
    freed: set[int] = set()
    for claim in live:
        if remaining <= 0:
            break
        take = min(remaining, claim.qty)
        remaining -= take
        if claim.status == ClaimStatus.HELD:
            product = await lock_product(session, claim.product_id)
            product.held -= take
            session.add(product)
            freed.add(claim.product_id)
        if take < claim.qty:
            claim.qty -= take  # the rest stays as it was
        else:
            claim.status, claim.decided_at = status_after_release(claim.status), now
        session.add(claim)
        decisions.append(claim_decision(claim, ClaimChange.RELEASED))
    await session.flush()
    for product_id in sorted(freed):
        decisions += await promote_waitlist(session, product_id, now)
    return decisions


class StockShort(ValueError):
    """Fewer units are free than asked for; nothing was changed."""

    def __init__(self, free: int) -> None:
        super().__init__(f"only {free} more free")
        self.free = free


async def extend_hold(session: AsyncSession, claims: list[StockClaim], qty: int, now: datetime) -> StockClaim | None:
    """`qty` more units on a cart line that has held stock (`claims`: the line's held claims), as ONE hold:
    the units join the line's latest hold, and every hold of the line now expires `hold_minutes` from `now`
    (reminded again before it does), so the line is neither listed twice nor expires in parts.

    Raises `StockShort` when fewer units are free (nothing changed). Returns None, changing nothing, while
    other claims of the product wait for the allocator: they arrived first and are owed the stock first
    (invariant 4), so the caller records a claim that waits behind them instead.
    """
    held = [c for c in claims if c.status == ClaimStatus.HELD]
    if not held or qty <= 0:
        raise ValueError("extend_hold needs a held claim and a positive quantity")
    product = await lock_product(session, held[0].product_id)
    waiting = (
        await session.execute(
            select(StockClaim.id)
            .where(StockClaim.product_id == product.id, StockClaim.status == ClaimStatus.PENDING)
            .limit(1)
        )
    ).first()
    if waiting is not None:
        return None
    free = units_free(product.stock, product.held, product.sold)
    if free is not None and free < qty:
        raise StockShort(free)
    target = max(held, key=lambda c: (c.expires_at or now, c.id or 0))
    target.qty += qty
    expires = hold_expires(now, target.hold_minutes)
    for claim in held:
        claim.expires_at, claim.reminded_at, claim.decided_at = expires, None, now
        session.add(claim)
    product.held += qty
    session.add(product)
    await session.flush()
    return target
