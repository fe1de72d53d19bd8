"""Paying in SQL: the shop's payment methods, the method of each order, its Stripe PaymentIntent, receipts.

The checks are pure (`carts.payment_rules`); marking an order paid is `carts.orders.mark_paid`, so a Stripe
payment and a confirmed receipt record the same `paid` order event as the merchant's own "mark paid".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_rules import OrderError, OrderErrorCode, OrderInfo, OrderStatus
from carts.order_tables import Order
from carts.orders import OrderChange, fetch_order, mark_paid
from carts.payment_rules import PaymentMethod, amount_in_minor_units, parse_payment_methods, payment_methods_to_dict
from carts.payment_tables import OrderPayment, PaymentProof, PaymentSettings


@dataclass(frozen=True, slots=True)
class ShopPayments:
    methods: tuple[PaymentMethod, ...] = ()
    language: str = "en"

    def method(self, kind: str | None) -> PaymentMethod | None:
        return next((m for m in self.methods if m.kind == kind), None)


async def fetch_shop_payments(session: AsyncSession) -> ShopPayments:
    row = await session.get(PaymentSettings, 1)
    if row is None:
        return ShopPayments()
    return ShopPayments(parse_payment_methods(json.loads(row.methods)), row.language)


async def save_shop_payments(
    session: AsyncSession, methods: tuple[PaymentMethod, ...], language: str | None, now: datetime
) -> bool:
    """Store the shop's methods (and language, unless None); False when nothing changed."""
    row = await session.get(PaymentSettings, 1, with_for_update=True)
    text = json.dumps(payment_methods_to_dict(methods), sort_keys=True)
    if row is None:
        session.add(PaymentSettings(id=1, methods=text, language=language or "en", updated_at=now))
        await session.flush()
        return True
    if row.methods == text and (language is None or row.language == language):
        return False
    row.methods, row.updated_at = text, now
    if language is not None:
        row.language = language
    session.add(row)
    await session.flush()
    return True


async def record_order_payment(session: AsyncSession, order_id: int, method: str, now: datetime) -> None:
    session.add(OrderPayment(order_id=order_id, method=method, created_at=now))
    await session.flush()


async def fetch_order_payment(session: AsyncSession, order_id: int) -> OrderPayment | None:
    return await session.get(OrderPayment, order_id)


async def set_stripe_intent(session: AsyncSession, order_id: int, intent_id: str) -> None:
    row = await session.get(OrderPayment, order_id, with_for_update=True)
    if row is None:
        raise OrderError(OrderErrorCode.NOT_FOUND, "the order has no payment method")
    row.stripe_intent_id = intent_id
    session.add(row)
    await session.flush()


async def fetch_shopper_orders(session: AsyncSession, page_id: str, psid: str, limit: int = 20) -> list[OrderInfo]:
    """A shopper's orders on a Page: the unpaid ones first (newest first), then the others, newest first."""
    rows = await session.execute(
        select(Order.number, Order.status)
        .where(Order.page_id == page_id, Order.psid == psid)
        .order_by(Order.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    found = rows.all()
    numbers = [n for n, s in found if s == OrderStatus.PENDING_PAYMENT] + [
        n for n, s in found if s != OrderStatus.PENDING_PAYMENT
    ]
    orders = [await fetch_order(session, number) for number in numbers if number]
    return [order for order in orders if order is not None]


async def mark_paid_by_stripe(
    session: AsyncSession, intent_id: str, amount_minor: int, currency: str, now: datetime
) -> OrderChange:
    """Stripe says the PaymentIntent succeeded: pay the order it was made for, if amount and currency match."""
    row = (
        await session.execute(select(OrderPayment).where(OrderPayment.stripe_intent_id == intent_id))
    ).scalar_one_or_none()
    if row is None:
        raise OrderError(OrderErrorCode.NOT_FOUND, f"no order was made for PaymentIntent {intent_id}")
    order = await session.get(Order, row.order_id)
    assert order is not None and order.number is not None
    if currency.upper() != order.currency:
        raise OrderError(
            OrderErrorCode.CURRENCY_MISMATCH, f"the order is in {order.currency}, the payment in {currency}"
        )
    if amount_minor != amount_in_minor_units(order.total, order.currency):
        raise OrderError(
            OrderErrorCode.AMOUNT_MISMATCH, f"the payment's amount is not the order's total {order.total:.2f}"
        )
    return await mark_paid(session, order.number, reference=f"stripe:{intent_id}", now=now)


# --- proofs of payment --------------------------------------------------------------------------------


async def attach_proof(
    session: AsyncSession, page_id: str, psid: str, mid: str, image_url: str, now: datetime
) -> tuple[PaymentProof, OrderInfo] | None:
    """A receipt image the shopper sent: attached to their own latest unpaid order, or None when they have none.

    The same message again (Meta's retry) returns the proof it made, adding nothing.
    """
    existing = (await session.execute(select(PaymentProof).where(PaymentProof.message_mid == mid))).scalar_one_or_none()
    if existing is not None:
        order = await session.get(Order, existing.order_id)
        info = await fetch_order(session, order.number or "") if order is not None else None
        return (existing, info) if info is not None else None
    unpaid = (
        await session.execute(
            select(Order)
            .where(Order.page_id == page_id, Order.psid == psid, Order.status == OrderStatus.PENDING_PAYMENT)
            .order_by(Order.id.desc())  # type: ignore[union-attr]
            .limit(1)
        )
    ).scalar_one_or_none()
    if unpaid is None:
        return None
    proof = PaymentProof(order_id=unpaid.id or 0, message_mid=mid, image_url=image_url, received_at=now)
    session.add(proof)
    await session.flush()
    info = await fetch_order(session, unpaid.number or "")
    assert info is not None
    return proof, info


async def fetch_proofs(session: AsyncSession, order_ids: list[int]) -> list[PaymentProof]:
    if not order_ids:
        return []
    rows = await session.execute(
        select(PaymentProof).where(PaymentProof.order_id.in_(order_ids)).order_by(PaymentProof.id)  # type: ignore[attr-defined]
    )
    return list(rows.scalars())


@dataclass(frozen=True, slots=True)
class ProofDecision:
    proof: PaymentProof
    order: OrderInfo
    changed: bool


async def decide_proof(
    session: AsyncSession, proof_id: int, confirm: bool, now: datetime, page_ids: frozenset[str] | None = None
) -> ProofDecision:
    """The merchant confirms (the order is paid, reference `proof:<id>`) or rejects a receipt.

    `page_ids` limits it to the merchant's own Pages (None: any). Deciding it again the same way changes
    nothing; the other way round is refused, and so is any decision once the order no longer waits for payment.
    """
    proof = await session.get(PaymentProof, proof_id, with_for_update=True)
    order = await session.get(Order, proof.order_id) if proof is not None else None
    if proof is None or order is None or (page_ids is not None and order.page_id not in page_ids):
        raise OrderError(OrderErrorCode.NOT_FOUND, f"no receipt {proof_id}")
    wanted = "confirmed" if confirm else "rejected"
    if proof.status == wanted:
        info = await fetch_order(session, order.number or "")
        assert info is not None
        return ProofDecision(proof, info, changed=False)
    if proof.status != "pending":
        raise OrderError(OrderErrorCode.WRONG_STATUS, f"the receipt was already {proof.status}")
    if order.status != OrderStatus.PENDING_PAYMENT:
        # Paid some other way, expired or cancelled meanwhile: a decision now would tell the shopper nonsense.
        raise OrderError(
            OrderErrorCode.WRONG_STATUS,
            f"order {order.number} is {order.status.replace('_', ' ')}, no longer waiting for payment",
        )
    if confirm:
        info = (await mark_paid(session, order.number or "", reference=f"proof:{proof.id}", now=now)).order
    else:
        found = await fetch_order(session, order.number or "")
        assert found is not None
        info = found
    proof.status, proof.decided_at = wanted, now
    session.add(proof)
    await session.flush()
    return ProofDecision(proof, info, changed=True)
