"""Fair stock holds: first come, first served with any number of workers, never oversold.

Two steps, because workers finish comments out of order:

1. Whichever worker handles a comment records a `StockClaim` (pending) in the comment's transaction.
   Its `arrival` is the comment's place in the ingest stream (`arrival_key`): the order the server
   received them (docs/architecture.md, invariant 4).
2. `allocate` decides pending claims of a product oldest first, but only those that arrived before the
   stream's low watermark, the oldest entry not yet acknowledged (`bot.inbound.ingest.IngestStream.watermark`).
   Every comment before the watermark has its claims committed (an entry is acknowledged only after its
   transaction), so no earlier claim can still appear: a later comment can never take stock an earlier
   one is owed. The product row is locked for the decision (`FOR UPDATE` on PostgreSQL; SQLite has one
   writer), and the stock check is a conditional on the counts in that row: held + sold <= stock.

A claim the stock cannot fully cover is split: the units left are held, the rest waitlisted, so a later
small order cannot slip past an earlier big one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from bot.runtime.clock import utcnow
from carts.tables import Product, StockClaim

END_OF_STREAM = "~"  # sorts after every arrival key: no entry is pending


def arrival_key(stream_id: str, position: int) -> str:
    """A string that sorts like (stream time, stream sequence, position in the delivery)."""
    ms, _, seq = stream_id.partition("-")
    return f"{int(ms):015d}-{int(seq or 0):010d}-{position:06d}"


@dataclass(frozen=True)
class ClaimDecision:
    claim_id: int
    key: str
    comment_id: str
    page_id: str
    psid: str
    product_id: int
    source: str  # comment | messenger
    status: str  # held | waitlisted
    qty: int


async def allocate(
    session: AsyncSession, product_id: int, watermark: str, now: datetime | None = None
) -> list[ClaimDecision]:
    """Decide the product's pending claims that arrived before `watermark`, oldest first (one transaction)."""
    return await allocate_products(session, [product_id], watermark, now)


async def allocate_pending(session: AsyncSession, watermark: str, now: datetime | None = None) -> list[ClaimDecision]:
    """Decide every pending claim that arrived before `watermark`, whatever its product."""
    return await allocate_products(session, await products_with_pending_claims(session, watermark), watermark, now)


async def allocate_products(
    session: AsyncSession, product_ids: list[int], watermark: str, now: datetime | None = None
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
    now = now or utcnow()
    locked = await session.execute(
        select(Product.id, Product.stock, Product.held, Product.sold)
        .where(Product.id.in_(sorted(set(product_ids))))
        .order_by(Product.id)
        # NO KEY UPDATE: serialises allocators but not the KEY SHARE lock a new claim's foreign key
        # takes on its product, which would deadlock two workers that each recorded a claim first.
        .with_for_update(key_share=True)
    )
    # product id -> units still free (None: unlimited)
    free: dict[int, int | None] = {
        pid: None if stock is None else max(stock - held - sold, 0) for pid, stock, held, sold in locked.all()
    }
    if not free:
        return []
    table = StockClaim.__table__
    claims = (
        await session.execute(
            select(table)
            .where(table.c.product_id.in_(list(free)), table.c.status == "pending", table.c.arrival < watermark)
            .order_by(table.c.product_id, table.c.arrival, table.c.id)
        )
    ).all()
    decisions: list[ClaimDecision] = []
    changes: list[dict[str, Any]] = []
    taken: dict[int, int] = {}
    for claim in claims:
        available = free[claim.product_id]
        granted = claim.qty if available is None else min(claim.qty, available)
        if granted == 0:
            changes.append({"_id": claim.id, "status": "waitlisted", "qty": claim.qty, "expires_at": None})
            decisions.append(claim_decision(claim, "waitlisted"))
            continue
        if granted < claim.qty:
            # Hold what is left; the rest waits in line, keeping the claim's place (rare: once per product).
            rest = waitlisted_rest(claim, claim.qty - granted, now)
            rest["id"] = (await session.execute(insert(table).returning(table.c.id), rest)).scalar_one()
            decisions.append(claim_decision(SimpleNamespace(**rest), "waitlisted"))
        if available is not None:
            free[claim.product_id] = available - granted
        taken[claim.product_id] = taken.get(claim.product_id, 0) + granted
        expires = now + timedelta(minutes=claim.hold_minutes)
        changes.append({"_id": claim.id, "status": "held", "qty": granted, "expires_at": expires})
        decisions.append(replace(claim_decision(claim, "held"), qty=granted))
    if changes:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                status=bindparam("status"), qty=bindparam("qty"), expires_at=bindparam("expires_at"), decided_at=now
            ),
            changes,
        )
    if taken:
        products = Product.__table__
        await session.execute(
            update(products).where(products.c.id == bindparam("_id")).values(held=products.c.held + bindparam("add")),
            [{"_id": pid, "add": qty} for pid, qty in sorted(taken.items())],
        )
    _refresh_cached(session, changes, taken, now)
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
        select(StockClaim.product_id).where(StockClaim.status == "pending", StockClaim.arrival < watermark).distinct()
    )
    return sorted(rows.scalars().all())


async def expire_holds(session: AsyncSession, now: datetime | None = None) -> list[ClaimDecision]:
    """Release holds whose time ran out, then give the freed units to the waitlist, oldest first."""
    now = now or utcnow()
    expired = (
        (
            await session.execute(
                select(StockClaim)
                .where(StockClaim.status == "held", StockClaim.expires_at < now)
                .order_by(StockClaim.product_id, StockClaim.arrival)
            )
        )
        .scalars()
        .all()
    )
    decisions: list[ClaimDecision] = []
    freed: set[int] = set()
    for claim in expired:
        product = (
            await session.execute(select(Product).where(Product.id == claim.product_id).with_for_update())
        ).scalar_one()
        # Read the claim again under the product's lock: a checkout may have sold it since it was listed.
        await session.refresh(claim)
        if claim.status != "held" or claim.expires_at is None or claim.expires_at >= now:
            continue
        product.held -= claim.qty
        claim.status, claim.decided_at = "expired", now
        session.add_all([product, claim])
        freed.add(claim.product_id)
        decisions.append(claim_decision(claim, "expired"))
    for product_id in sorted(freed):
        decisions += await promote_waitlist(session, product_id, now)
    await session.flush()
    return decisions


async def promote_waitlist(session: AsyncSession, product_id: int, now: datetime | None = None) -> list[ClaimDecision]:
    """Units free again go to waitlisted claims in arrival order (each whole, or split as at first)."""
    now = now or utcnow()
    product = (await session.execute(select(Product).where(Product.id == product_id).with_for_update())).scalar_one()
    waiting = (
        (
            await session.execute(
                select(StockClaim)
                .where(StockClaim.product_id == product_id, StockClaim.status == "waitlisted")
                .order_by(StockClaim.arrival, StockClaim.id)
            )
        )
        .scalars()
        .all()
    )
    decisions: list[ClaimDecision] = []
    for claim in waiting:
        available = claim.qty if product.stock is None else max(product.stock - product.held - product.sold, 0)
        if available <= 0:
            break  # the first in line is not skipped for a smaller order behind it
        granted = min(available, claim.qty)
        if granted < claim.qty:
            session.add(split_waitlisted(claim, claim.qty - granted, now))
            claim.qty = granted
        claim.status, claim.decided_at = "held", now
        claim.expires_at = now + timedelta(minutes=claim.hold_minutes)
        product.held += granted
        session.add(claim)
        decisions.append(claim_decision(claim, "promoted"))
    session.add(product)
    await session.flush()
    return decisions


def split_waitlisted(claim: StockClaim, qty: int, now: datetime) -> StockClaim:
    """The part of a claim that must keep waiting, in the claim's own place in line."""
    return StockClaim(**waitlisted_rest(claim, qty, now))


def waitlisted_rest(claim: Any, qty: int, now: datetime) -> dict[str, Any]:
    """The row of `split_waitlisted` (from a claim object or a Core row)."""
    return {
        "key": f"{claim.key}:w{uuid.uuid4().hex[:8]}",
        "campaign_id": claim.campaign_id,
        "product_id": claim.product_id,
        "page_id": claim.page_id,
        "psid": claim.psid,
        "comment_id": claim.comment_id,
        "variant": claim.variant,
        "qty": qty,
        "arrival": claim.arrival,
        "status": "waitlisted",
        "source": claim.source,
        "hold_minutes": claim.hold_minutes,
        "decided_at": now,
        "created_at": now,
    }


def claim_decision(claim: Any, status: str) -> ClaimDecision:
    """The decision about a claim (an object or a Core row)."""
    return ClaimDecision(
        claim.id or -1,
        claim.key,
        claim.comment_id,
        claim.page_id,
        claim.psid,
        claim.product_id,
        claim.source,
        status,
        claim.qty,
    )


async def holds_to_remind(session: AsyncSession, before: timedelta, now: datetime | None = None) -> list[StockClaim]:
    """Holds that run out within `before` and whose shopper was not reminded yet."""
    now = now or utcnow()
    rows = await session.execute(
        select(StockClaim).where(
            StockClaim.status == "held", StockClaim.reminded_at.is_(None), StockClaim.expires_at < now + before
        )
    )
    return list(rows.scalars())


async def release_claims(
    session: AsyncSession, claims: list[StockClaim], now: datetime | None = None, *, qty: int | None = None
) -> list[ClaimDecision]:
    """Give back up to `qty` units (all when None) of these claims, latest first; held units go to the waitlist.

    Sold units are never released here (an order owns them: returns restock through the order).
    """
    now = now or utcnow()
    order = {"waitlisted": 0, "pending": 1, "held": 2}
    # Waitlisted units go first, then pending, then held; within each, the latest first (two stable sorts).
    live = sorted((c for c in claims if c.status in order), key=lambda c: c.arrival, reverse=True)
    live.sort(key=lambda c: order[c.status])
    remaining = qty if qty is not None else sum(c.qty for c in live)
    decisions: list[ClaimDecision] = []
    freed: set[int] = set()
    for claim in live:
        if remaining <= 0:
            break
        take = min(remaining, claim.qty)
        remaining -= take
        if claim.status == "held":
            product = (
                await session.execute(select(Product).where(Product.id == claim.product_id).with_for_update())
            ).scalar_one()
            product.held -= take
            session.add(product)
            freed.add(claim.product_id)
        if take < claim.qty:
            claim.qty -= take  # the rest stays as it was
        else:
            claim.status, claim.decided_at = ("released" if claim.status == "held" else "cancelled"), now
        session.add(claim)
        decisions.append(claim_decision(claim, "released"))
    await session.flush()
    for product_id in sorted(freed):
        decisions += await promote_waitlist(session, product_id, now)
    return decisions
