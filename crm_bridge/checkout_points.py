"""The checkout page's membership part: paying part of an order with points, and giving an email.

`parse_checkout_extras` is pure; the rest runs in the checkout's own transaction, so the points an
order uses are taken exactly when the order is placed (a replayed form takes nothing twice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_rules import OrderInfo
from carts.order_tables import Order
from crm_bridge.contact_claims import give_contact
from crm_bridge.ledger import apply_redeem, fetch_redeem_limit, plan_redeem
from crm_bridge.members import IdentityKind, fetch_or_create_member, parse_email
from crm_bridge.rules import RedeemPlan

POINTS_MAX_DIGITS = 9


@dataclass(frozen=True, slots=True)
class PointsOffer:
    available: int
    most: int
    value: Decimal  # what `most` points take off


def parse_checkout_extras(data: Mapping[str, str]) -> tuple[int, str | None, dict[str, str]]:
    """(points to use, email or None, {field: problem}) from the checkout form's optional fields."""
    errors: dict[str, str] = {}
    text = (data.get("points") or "").strip()
    points = 0
    if text:
        if not (text.isascii() and text.isdigit()) or len(text) > POINTS_MAX_DIGITS:  # not "³": int() refuses it
            errors["points"] = "Please enter a whole number of points, or leave it empty."
        else:
            points = int(text)
    email_text = (data.get("email") or "").strip()
    email = None
    if email_text:
        email = parse_email(email_text)
        if email is None:
            errors["email"] = "Please enter an email address like name@example.com, or leave it empty."
    return points, email, errors


async def fetch_points_offer(
    session: AsyncSession, page_id: str, psid: str, total: Decimal, now: datetime
) -> PointsOffer | None:
    found = await fetch_redeem_limit(session, page_id, psid, total, now)
    if found is None or found[1].points <= 0:
        return None
    available, plan = found
    return PointsOffer(available, plan.points, plan.value)


async def plan_checkout_points(
    session: AsyncSession, page_id: str, psid: str, nonce: str, total: Decimal, points: int, now: datetime
) -> RedeemPlan | None:
    """None when no points are used; raises `crm_bridge.rules.RuleError` when these cannot be.

    A form posted again finds its order already placed (and its points already taken): nothing to plan.
    """
    if points == 0:
        return None
    placed = (await session.execute(select(Order.id).where(Order.checkout_nonce == nonce))).first()
    return None if placed is not None else await plan_redeem(session, page_id, psid, total, points, now)


async def apply_checkout_member(
    session: AsyncSession, order: OrderInfo, plan: RedeemPlan | None, email: str | None, now: datetime
) -> None:
    """Take the points the order used and link the email given (a claim when another member has it: never
    a merge), in the order's transaction."""
    if plan is not None:
        await apply_redeem(session, order, plan, now)
    if email is not None:
        member, _ = await fetch_or_create_member(session, order.page_id, order.psid, name=order.customer_name, now=now)
        await give_contact(session, member, IdentityKind.EMAIL, email, now)
