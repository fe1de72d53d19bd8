"""Stock holds decided: the statuses of a claim and the pure rules of first come, first served.

Pure: no I/O. `carts.stock` reads the counts and the claims under the locks of `carts.stock_locks`, asks
these functions what to do, and writes the answer. The statuses are the strings stored in
`stock_claim.status` and `stock_claim.source` (members compare equal to them), so the database does not
change with them.

Why the claims are decided in arrival order below the stream's watermark: see `carts.stock`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

END_OF_STREAM = "~"  # sorts after every arrival key: no entry is pending


class ClaimStatus(StrEnum):
    """Where a stock claim stands (`stock_claim.status`)."""

    PENDING = "pending"  # recorded with its comment; the allocator has not decided it yet
    HELD = "held"  # units kept for the shopper's cart until `expires_at`
    WAITLISTED = "waitlisted"  # sold out when decided: waits in line for units freed later
    SOLD = "sold"  # an order owns the units
    EXPIRED = "expired"  # the hold ran out and its units went back
    RELEASED = "released"  # held units given back (comment removed or edited, merchant edit)
    CANCELLED = "cancelled"  # pending or waitlisted units given back before they were held


# A claim in these statuses still asks for its units (an edit compares what it asks now with them).
LIVE_STATUSES = (ClaimStatus.PENDING, ClaimStatus.HELD, ClaimStatus.WAITLISTED, ClaimStatus.SOLD)
# Units a shopper has and that count against a per-shopper limit.
COUNTED_STATUSES = (ClaimStatus.PENDING, ClaimStatus.HELD, ClaimStatus.SOLD)


class ClaimSource(StrEnum):
    """Who made a claim (`stock_claim.source`)."""

    COMMENT = "comment"  # an order comment
    MESSENGER = "messenger"  # a size or colour picked in the chat, for an item of a comment
    AGENT = "agent"  # the merchant, from the inbox


class ClaimChange(StrEnum):
    """What happened to a claim, as a `ClaimDecision` tells it (and as the shopper's news is keyed)."""

    HELD = "held"
    WAITLISTED = "waitlisted"
    PROMOTED = "promoted"  # held from the waitlist
    EXPIRED = "expired"
    RELEASED = "released"
    REMINDER = "reminder"  # nothing changed: the hold runs out soon


@dataclass(frozen=True)
class ClaimDecision:
    claim_id: int
    key: str
    comment_id: str
    page_id: str
    psid: str
    product_id: int
    source: str  # a ClaimSource
    status: ClaimChange
    qty: int


def arrival_key(stream_id: str, position: int) -> str:
    """A string that sorts like (stream time, stream sequence, position in the delivery)."""
    ms, _, seq = stream_id.partition("-")
    return f"{int(ms):015d}-{int(seq or 0):010d}-{position:06d}"


def units_free(stock: int | None, held: int, sold: int) -> int | None:
    """Units of a product nobody holds or bought (None: unlimited stock)."""
    return None if stock is None else max(stock - held - sold, 0)


def hold_expires(now: datetime, hold_minutes: int) -> datetime:
    return now + timedelta(minutes=hold_minutes)


def claim_decision(claim: Any, status: ClaimChange) -> ClaimDecision:
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


def waitlisted_rest(claim: Any, qty: int, now: datetime) -> dict[str, Any]:
    """The row of the part of a claim that must keep waiting, in the claim's own place in line (from a claim
    object or a Core row)."""
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
        "status": ClaimStatus.WAITLISTED,
        "source": claim.source,
        "hold_minutes": claim.hold_minutes,
        "decided_at": now,
        "created_at": now,
    }


@dataclass
class Allocation:
    """What deciding pending claims comes to, ready to write in a constant number of statements."""

    decisions: list[ClaimDecision] = field(default_factory=list)
    # Rows of the claims' UPDATE (one executemany): `_id`, status, qty, expires_at.
    changes: list[dict[str, Any]] = field(default_factory=list)
    # Split-off waitlisted rests to insert, with the index in `decisions` of the decision that needs their id.
    rests: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    taken: dict[int, int] = field(default_factory=dict)  # product id -> units newly held


def allocate_claims(free: dict[int, int | None], claims: Iterable[Any], now: datetime) -> Allocation:
    """Decide pending claims in arrival order against the units `free` per product (updated in place).

    `claims`: rows with the claim's columns, sorted by product, arrival and id. Each claim is held whole while
    units last; one the stock cannot fully cover is split: the units left are held, the rest waitlisted,
    so a later small order cannot slip past an earlier big one.
    """
    result = Allocation()
    for claim in claims:
        available = free[claim.product_id]
        granted = claim.qty if available is None else min(claim.qty, available)
        if granted == 0:
            result.changes.append(
                {"_id": claim.id, "status": ClaimStatus.WAITLISTED, "qty": claim.qty, "expires_at": None}
            )
            result.decisions.append(claim_decision(claim, ClaimChange.WAITLISTED))
            continue
        if granted < claim.qty:
            # Hold what is left; the rest waits in line, keeping the claim's place (rare: once per product).
            rest = waitlisted_rest(claim, claim.qty - granted, now)
            result.rests.append((len(result.decisions), rest))
            result.decisions.append(claim_decision(SimpleNamespace(id=None, **rest), ClaimChange.WAITLISTED))
        if available is not None:
            free[claim.product_id] = available - granted
        result.taken[claim.product_id] = result.taken.get(claim.product_id, 0) + granted
        expires = hold_expires(now, claim.hold_minutes)
        result.changes.append({"_id": claim.id, "status": ClaimStatus.HELD, "qty": granted, "expires_at": expires})
        result.decisions.append(replace(claim_decision(claim, ClaimChange.HELD), qty=granted))
    return result


def waitlist_grants(free: int | None, waiting: Sequence[int]) -> list[int]:
    """Units each waitlisted claim (their quantities, in line order) gets of `free` units; the line stops at
    the first that gets none: the first in line is not skipped for a smaller order behind it."""
    grants: list[int] = []
    for qty in waiting:
        available = qty if free is None else free
        if available <= 0:
            break
        granted = min(available, qty)
        grants.append(granted)
        if free is not None:
            free -= granted
    return grants


# Released first: waitlisted units, then pending, then held.
_RELEASE_ORDER = {ClaimStatus.WAITLISTED: 0, ClaimStatus.PENDING: 1, ClaimStatus.HELD: 2}


def release_order(claims: Iterable[Any]) -> list[Any]:
    """The claims that can give units back, in the order they give them: waitlisted, pending, held; the
    latest first within each. Sold units are never released (an order owns them)."""
    live = sorted((c for c in claims if c.status in _RELEASE_ORDER), key=lambda c: c.arrival, reverse=True)
    live.sort(key=lambda c: _RELEASE_ORDER[c.status])  # stable: the latest first stays within a status
    return live


def status_after_release(status: str) -> ClaimStatus:
    """A claim given back whole: held units are released, units never held are cancelled."""
    return ClaimStatus.RELEASED if status == ClaimStatus.HELD else ClaimStatus.CANCELLED
