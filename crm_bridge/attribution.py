"""Which journey message an order is credited to, and each journey's figures (sends, runs, attributed orders).

An order paid within a journey's `attribution_days` (its run's version's definition) of a message SENT to its
member is credited to the latest such message: last touch, as shops read "the win-back brought it back".
One row per order (`order_id` unique), written when the order's `paid` event is applied
(crm_bridge.order_events), so a replayed event credits once. The figures count only orders that are still
sales: a returned, cancelled or expired order drops out of them (its row stays, for the record).
`now` and the moments are always the caller's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_tables import Order
from carts.sql import dialect_insert
from crm_bridge.journey_outcome_tables import JourneyAttribution
from crm_bridge.journey_tables import JourneyMessage, JourneyRun, JourneyVersion
from crm_bridge.members import as_utc
from crm_bridge.segments import COUNTED_STATUSES

MAX_ATTRIBUTION_DAYS = 60  # the contract's upper bound: no message older than this can take an order
DEFAULT_ATTRIBUTION_DAYS = 7


def _attribution_days(definition: str) -> int:
    try:
        days = json.loads(definition).get("attribution_days", DEFAULT_ATTRIBUTION_DAYS)
    except (ValueError, AttributeError):
        return DEFAULT_ATTRIBUTION_DAYS
    return days if isinstance(days, int) and 1 <= days <= MAX_ATTRIBUTION_DAYS else DEFAULT_ATTRIBUTION_DAYS


async def attribute_order(
    session: AsyncSession, order: Order, member_ids: Iterable[int], paid_at: datetime
) -> JourneyAttribution | None:
    """Credit `order` (paid at `paid_at`) to the latest message sent to its member (any of `member_ids`: a
    merged member's too) within that journey's attribution days; None when no message qualifies or the order
    was credited already."""
    ids = list(member_ids)
    candidates = (
        await session.execute(
            select(JourneyMessage, JourneyVersion.definition)
            .join(JourneyRun, JourneyRun.id == JourneyMessage.run_id)  # type: ignore[arg-type]
            .join(JourneyVersion, JourneyVersion.id == JourneyRun.version_id)  # type: ignore[arg-type]
            .where(
                JourneyMessage.member_id.in_(ids),  # type: ignore[attr-defined]
                JourneyMessage.status == "sent",
                JourneyMessage.sent_at <= paid_at,  # type: ignore[operator]
                JourneyMessage.sent_at > paid_at - timedelta(days=MAX_ATTRIBUTION_DAYS),  # type: ignore[operator]
            )
            .order_by(JourneyMessage.sent_at.desc(), JourneyMessage.id.desc())  # type: ignore[union-attr,attr-defined]
        )
    ).all()
    for message, definition in candidates:
        if as_utc(message.sent_at) + timedelta(days=_attribution_days(definition)) < paid_at:
            continue  # outside its own journey's window; an older message of a longer-window journey may fit
        inserted = await session.execute(
            dialect_insert(session)(JourneyAttribution)
            .values(
                order_id=order.id,
                message_id=message.id,
                journey_id=message.journey_id,
                member_id=message.member_id,
                amount=Decimal(order.total),
                paid_at=paid_at,
            )
            .on_conflict_do_nothing(index_elements=["order_id"])
            .returning(JourneyAttribution.id)  # type: ignore[arg-type]
        )
        row_id = inserted.scalar_one_or_none()
        return await session.get(JourneyAttribution, row_id) if row_id is not None else None
    return None


@dataclass
class JourneyFigures:
    waiting: int = 0
    done: int = 0  # ended: done or stopped
    sends: int = 0
    refused: int = 0
    orders: int = 0  # attributed orders still counted as sales
    amount: Decimal = field(default_factory=lambda: Decimal(0))


async def journey_figures(session: AsyncSession, journey_ids: Iterable[int] | None = None) -> dict[int, JourneyFigures]:
    """Per journey: runs waiting and ended, messages sent and refused, attributed orders and their money."""
    ids = None if journey_ids is None else list(journey_ids)
    figures: dict[int, JourneyFigures] = {}

    def of(journey_id: int) -> JourneyFigures:
        return figures.setdefault(journey_id, JourneyFigures())

    def within(column: object, stmt: object) -> object:
        return stmt if ids is None else stmt.where(column.in_(ids))  # type: ignore[attr-defined]

    runs = within(
        JourneyRun.journey_id,
        select(JourneyRun.journey_id, JourneyRun.status, func.count()).group_by(
            JourneyRun.journey_id, JourneyRun.status
        ),
    )
    for journey_id, status, count in (await session.execute(runs)).all():  # type: ignore[call-overload]
        if status == "waiting":
            of(journey_id).waiting += count
        else:
            of(journey_id).done += count
    sends = within(
        JourneyMessage.journey_id,
        select(JourneyMessage.journey_id, JourneyMessage.status, func.count()).group_by(
            JourneyMessage.journey_id, JourneyMessage.status
        ),
    )
    for journey_id, status, count in (await session.execute(sends)).all():  # type: ignore[call-overload]
        if status == "sent":
            of(journey_id).sends += count
        elif status in ("refused", "failed"):
            of(journey_id).refused += count
    orders = within(
        JourneyAttribution.journey_id,
        select(JourneyAttribution.journey_id, func.count(), func.coalesce(func.sum(JourneyAttribution.amount), 0))
        .join(Order, Order.id == JourneyAttribution.order_id)  # type: ignore[arg-type]
        .where(Order.status.in_(COUNTED_STATUSES))  # type: ignore[attr-defined]
        .group_by(JourneyAttribution.journey_id),
    )
    for journey_id, count, amount in (await session.execute(orders)).all():  # type: ignore[call-overload]
        of(journey_id).orders, of(journey_id).amount = int(count), Decimal(amount)
    return figures


async def fetch_attributions(
    session: AsyncSession, journey_id: int, limit: int = 50
) -> list[tuple[JourneyAttribution, Order]]:
    """A journey's credited orders, latest first, with their orders (status, number) for the journey's page."""
    return [
        (row, order)
        for row, order in (
            await session.execute(
                select(JourneyAttribution, Order)
                .join(Order, Order.id == JourneyAttribution.order_id)  # type: ignore[arg-type]
                .where(JourneyAttribution.journey_id == journey_id)
                .order_by(JourneyAttribution.paid_at.desc())  # type: ignore[attr-defined]
                .limit(limit)
            )
        ).all()
    ]
