"""Checkout and orders in SQL: checkout tokens, placing an order from held stock, payment, cancellation, returns,
expiry of unpaid orders (and the reminder before), merging a shopper's unpaid orders into one.

The pure rules (the checkout form, totals, return matching) are in `carts.order_rules`. Every change
follows the same shape (Saleor's checkout): lock the rows it changes (products in id order, so two
changes never wait on each other in a circle), work out the change, apply it and record an `OrderEvent`
in the caller's one transaction. Messages to the shopper are the caller's (`bot.web.checkout`,
`bot.web.orders_api`): this module knows nothing of Messenger.

Stock moves between the product row's counters and keeps `held + sold <= stock`:
placing an order moves each held claim's units from `held` to `sold`; a cancellation, an expiry or a return
takes them off `sold` and offers them to the waitlist (`carts.stock.promote_waitlist`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import and_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from carts.core import CartInfo, CartLineInfo, merge_lines, variant_pairs
from carts.coupon_rules import CouponLine, UseStatus
from carts.coupons import apply_coupon, move_uses, reserve_use, set_uses_of_order
from carts.order_rules import (
    PAID_STATUSES,
    RETURNABLE_STATUSES,
    CheckoutForm,
    DeliveryChoice,
    OrderError,
    OrderErrorCode,
    OrderInfo,
    OrderLineInfo,
    OrderRules,
    OrderStatus,
    ReturnItem,
    ShippingRules,
    calculate_cart_version,
    calculate_return_status,
    calculate_totals,
    format_order_number,
    match_return_lines,
)
from carts.order_tables import CheckoutToken, Order, OrderEvent, OrderLine
from carts.repository import fetch_currency
from carts.sql import dialect_insert
from carts.stock import promote_waitlist
from carts.stock_rules import ClaimDecision, ClaimStatus
from carts.tables import CampaignProduct, Product, ShopInfo, StockClaim

# --- checkout -----------------------------------------------------------------------------------------


async def fetch_shop_name(session: AsyncSession) -> str:
    shop = await session.get(ShopInfo, 1)
    return shop.name if shop is not None else "Shop"


async def fetch_sale_rules(session: AsyncSession) -> tuple[OrderRules, ShippingRules]:
    """The shop's time to pay and its delivery options (the shop file's `orders:` and `shipping:`)."""
    shop = await session.get(ShopInfo, 1)
    orders = OrderRules.from_dict(json.loads(shop.order_rules)) if shop and shop.order_rules else OrderRules()
    shipping = ShippingRules.from_dict(json.loads(shop.shipping)) if shop and shop.shipping else ShippingRules()
    return orders, shipping


async def fetch_or_create_checkout_token(session: AsyncSession, page_id: str, psid: str, now: datetime) -> str:
    """The shopper's checkout token on a Page, made on first use (concurrent callers get the same one)."""
    return (await fetch_or_create_checkout_tokens(session, {(page_id, psid)}, now))[(page_id, psid)]


async def fetch_or_create_checkout_tokens(
    session: AsyncSession, shoppers: set[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], str]:
    """Checkout tokens of many shoppers at once, made where missing: three statements whatever their number."""
    if not shoppers:
        return {}

    async def existing() -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        wanted = sorted(shoppers)
        for start in range(0, len(wanted), 400):  # stay well under the database's bound-parameter limit
            rows = await session.execute(
                select(CheckoutToken.page_id, CheckoutToken.psid, CheckoutToken.token).where(
                    tuple_(CheckoutToken.page_id, CheckoutToken.psid).in_(wanted[start : start + 400])
                )
            )
            found.update({(page, psid): token for page, psid, token in rows.all()})
        return found

    tokens = await existing()
    missing = sorted(shoppers - set(tokens))
    if not missing:
        return tokens
    insert = dialect_insert(session)
    for start in range(0, len(missing), 200):
        rows = [
            {
                "token": secrets.token_urlsafe(24),
                "page_id": page,
                "psid": psid,
                "nonce": secrets.token_urlsafe(16),
                "created_at": now,
            }
            for page, psid in missing[start : start + 200]
        ]
        table = CheckoutToken.__table__
        await session.execute(insert(table).on_conflict_do_nothing(index_elements=["page_id", "psid"]), rows)
    return await existing()  # concurrent callers may have made some: read back what won


@dataclass(frozen=True, slots=True)
class CheckoutInfo:
    """What the checkout page shows: the shopper's unexpired held stock, and the form's nonce."""

    token: str
    page_id: str
    psid: str
    nonce: str
    cart: CartInfo
    version: str
    expires_at: datetime | None  # the first hold to run out


async def fetch_checkout(session: AsyncSession, token: str, now: datetime) -> CheckoutInfo | None:
    """The checkout behind `token` with the shopper's held stock whose time has not run out at `now`."""
    row = (await session.execute(select(CheckoutToken).where(CheckoutToken.token == token))).scalar_one_or_none()
    if row is None:
        return None
    claims, cart = await _held(session, row.page_id, row.psid, now)
    return CheckoutInfo(
        row.token,
        row.page_id,
        row.psid,
        row.nonce,
        cart,
        calculate_cart_version((c.id or 0, c.qty) for c in claims),
        min((c.expires_at for c in claims if c.expires_at is not None), default=None),
    )


async def _held(
    session: AsyncSession, page_id: str, psid: str, now: datetime, lock: bool = False
) -> tuple[list[StockClaim], CartInfo]:
    """The held claims whose time has not run out (a hold past its time is not sold, even before it expires)."""
    stmt = (
        select(StockClaim, Product.code, Product.name, Product.price, CampaignProduct.order_code)
        .join(Product, Product.id == StockClaim.product_id)
        .outerjoin(
            CampaignProduct,
            and_(
                CampaignProduct.campaign_id == StockClaim.campaign_id,
                CampaignProduct.product_id == StockClaim.product_id,
            ),
        )
        .where(
            StockClaim.page_id == page_id,
            StockClaim.psid == psid,
            StockClaim.status == ClaimStatus.HELD,
            StockClaim.expires_at > now,
        )
        .order_by(StockClaim.arrival, StockClaim.id)
    )
    if lock:
        stmt = stmt.with_for_update(of=StockClaim)
    rows = (await session.execute(stmt)).all()
    lines = [
        CartLineInfo(
            claim.product_id,
            order_code or code,
            name,
            variant_pairs(json.loads(claim.variant) if claim.variant else None),
            claim.qty,
            Decimal(price),
        )
        for claim, code, name, price, order_code in rows
    ]
    return [row[0] for row in rows], CartInfo(merge_lines(lines), await fetch_currency(session))


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    order: OrderInfo
    replayed: bool  # the same form posted again: the order it placed, nothing new


async def place_order(
    session: AsyncSession,
    token: str,
    nonce: str,
    form: CheckoutForm,
    now: datetime,
    cart_version: str | None = None,
    discount: Decimal = Decimal(0),
    *,
    payment_method: str | None = None,
    delivery: DeliveryChoice | None = None,
    rules: OrderRules | None = None,
    coupon: str | None = None,
) -> PlacedOrder:
    """Turn the shopper's held stock into an order, pending payment (in the caller's transaction).

    `discount` is money off the subtotal (points paid at checkout, `crm_bridge`); never below zero.
    `delivery`: the shop's option chosen, whose fee is added to the total. `rules` with `payment_method`
    set when the unpaid order expires (and when it is reminded); None: the defaults.
    `coupon`: a code typed (or applied for the shopper) at checkout: checked under the coupon's lock, its
    discount off the subtotal too, its use reserved with the order (`carts.coupons`).
    The same `nonce` again returns the order it placed. Raises `OrderError` (not_found, nonce_mismatch,
    empty_cart, cart_changed; `carts.coupons.CouponRefused` with the reason) having changed nothing.
    """
    # The token row is locked first: two posts of one form queue here, and the second finds the order.
    row = (
        await session.execute(select(CheckoutToken).where(CheckoutToken.token == token).with_for_update())
    ).scalar_one_or_none()
    if row is None:
        raise OrderError(OrderErrorCode.NOT_FOUND, "no such checkout")
    placed = (
        await session.execute(
            select(Order).where(Order.checkout_nonce == nonce, Order.page_id == row.page_id, Order.psid == row.psid)
        )
    ).scalar_one_or_none()
    if placed is not None:
        return PlacedOrder(await _order_info(session, placed), replayed=True)
    if not secrets.compare_digest(nonce.encode(), row.nonce.encode()):
        raise OrderError(OrderErrorCode.NONCE_MISMATCH, "this form is out of date; please open the checkout again")
    claims, _ = await _held(session, row.page_id, row.psid, now)
    # Products are locked in id order before their claims are read again under the lock: the allocator and
    # the expiry lock the product before changing a claim, so what is read now stays true until commit.
    products = await _lock_products(session, {c.product_id for c in claims})
    claims, cart = await _held(session, row.page_id, row.psid, now, lock=True)
    products.update(await _lock_products(session, {c.product_id for c in claims} - set(products)))
    if cart.is_empty:
        raise OrderError(OrderErrorCode.EMPTY_CART, "the cart is empty")
    if cart_version is not None and cart_version != calculate_cart_version((c.id or 0, c.qty) for c in claims):
        raise OrderError(OrderErrorCode.CART_CHANGED, "the cart changed since the page was opened")
    coupon_off, found = Decimal(0), None
    if coupon:
        # Checked before anything changes: a refused code leaves the held stock as it was.
        lines = [CouponLine(c.product_id, c.campaign_id, Decimal(products[c.product_id].price) * c.qty) for c in claims]
        coupon_off, found = await apply_coupon(session, coupon, row.page_id, row.psid, lines, cart.currency, now)
    for claim in claims:
        product = products[claim.product_id]
        product.held -= claim.qty
        product.sold += claim.qty
        claim.status, claim.decided_at = ClaimStatus.SOLD, now
        session.add_all([product, claim])
    fee = delivery.fee(cart.subtotal) if delivery is not None else Decimal(0)
    subtotal, total = calculate_totals(cart.lines, fee, discount + coupon_off)
    expires_at, remind_at = (rules or OrderRules()).expiry(now, payment_method)
    order = Order(
        page_id=row.page_id,
        psid=row.psid,
        checkout_nonce=nonce,
        currency=cart.currency,
        subtotal=subtotal,
        total=total,
        customer_name=form.name,
        phone=form.phone,
        delivery_method=form.delivery_method,
        address=form.address,
        placed_at=now,
        updated_at=now,
        payment_method=payment_method,
        expires_at=expires_at,
        remind_at=remind_at,
        delivery_option=delivery.value if delivery is not None else None,
        shipping_fee=fee,
        coupon_code=found.terms.code if found is not None else None,
        coupon_discount=coupon_off,
    )
    session.add(order)
    await session.flush()
    assert order.id is not None
    order.number = format_order_number(order.id)
    if found is not None:
        await reserve_use(session, found, order.id, row.page_id, row.psid, coupon_off, now)
    for claim in claims:  # which campaigns an order came from (the inbox filters orders by campaign)
        claim.order_id = order.id
    session.add_all(
        [
            OrderLine(
                order_id=order.id,
                product_id=line.product_id,
                code=line.code,
                name=line.name,
                variant=json.dumps(dict(line.variant), ensure_ascii=False),
                qty=line.qty,
                unit_price=line.unit_price,
            )
            for line in cart.lines
        ]
    )
    row.nonce = secrets.token_urlsafe(16)  # the next visit gets a fresh form
    session.add_all([order, row])
    await session.flush()
    info = await _order_info(session, order)
    _record_event(session, info, "placed", info.total, info.lines, now)
    await session.flush()
    return PlacedOrder(info, replayed=False)


# --- orders -------------------------------------------------------------------------------------------


async def fetch_order(session: AsyncSession, number: str) -> OrderInfo | None:
    order = (await session.execute(select(Order).where(Order.number == number.upper()))).scalar_one_or_none()
    return None if order is None else await _order_info(session, order)


async def fetch_orders(
    session: AsyncSession, status: str | None = None, psid: str | None = None, limit: int = 100
) -> list[OrderInfo]:
    """The newest orders first."""
    stmt = select(Order).order_by(Order.id.desc()).limit(limit)  # type: ignore[union-attr]
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if psid is not None:
        stmt = stmt.where(Order.psid == psid)
    return [await _order_info(session, order) for order in (await session.execute(stmt)).scalars()]


@dataclass(frozen=True, slots=True)
class OrderChange:
    order: OrderInfo
    changed: bool  # False: it already was so (a retry), nothing written
    promoted: tuple[ClaimDecision, ...] = ()  # waitlisted claims that got the units back


async def mark_paid(
    session: AsyncSession,
    number: str,
    *,
    amount: Decimal | None = None,
    currency: str | None = None,
    reference: str | None = None,
    now: datetime,
) -> OrderChange:
    """Record the payment of an order; `amount` and `currency`, when given, must be the order's total."""
    order = await _lock_order(session, number)
    if currency is not None and currency.upper() != order.currency:
        raise OrderError(
            OrderErrorCode.CURRENCY_MISMATCH, f"the order is in {order.currency}, the payment in {currency}"
        )
    if amount is not None and amount != order.total:
        raise OrderError(
            OrderErrorCode.AMOUNT_MISMATCH, f"the order's total is {order.total:.2f}, the payment {amount:.2f}"
        )
    if order.status in PAID_STATUSES:
        return OrderChange(await _order_info(session, order), changed=False)
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise OrderError(OrderErrorCode.WRONG_STATUS, f"the order is {order.status}; it cannot be paid")
    order.status, order.paid_at, order.updated_at = OrderStatus.PAID, now, now
    order.payment_reference = reference
    session.add(order)
    await session.flush()
    await set_uses_of_order(session, order.id or 0, UseStatus.USED, now)
    info = await _order_info(session, order)
    _record_event(session, info, "paid", info.total, info.lines, now)
    await session.flush()
    return OrderChange(info, changed=True)


async def cancel_order(session: AsyncSession, number: str, now: datetime) -> OrderChange:
    """Cancel an unpaid order: its units go back on sale, to the waitlist first."""
    order = await _lock_order(session, number)
    if order.status == OrderStatus.CANCELLED:
        return OrderChange(await _order_info(session, order), changed=False)
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise OrderError(
            OrderErrorCode.WRONG_STATUS, f"the order is {order.status}; only an unpaid order can be cancelled"
        )
    lines = await _lines(session, order.id or 0)
    back = {line.id or 0: line.qty - line.returned_qty for line in lines}
    promoted = await _restock(session, lines, back, now)
    order.status, order.cancelled_at, order.updated_at = OrderStatus.CANCELLED, now, now
    session.add(order)
    await session.flush()
    await set_uses_of_order(session, order.id or 0, UseStatus.RELEASED, now)  # the voucher can be used again
    info = await _order_info(session, order)
    _record_event(session, info, "cancelled", info.total, info.lines, now)
    await session.flush()
    return OrderChange(info, changed=True, promoted=promoted)


async def return_lines(session: AsyncSession, number: str, items: Sequence[ReturnItem], now: datetime) -> OrderChange:
    """Units of a paid order came back: they go back on sale (waitlist first); the order is (partly) returned."""
    order = await _lock_order(session, number)
    if order.status not in RETURNABLE_STATUSES:
        raise OrderError(OrderErrorCode.WRONG_STATUS, f"the order is {order.status}; only a paid order takes returns")
    # Nothing returned yet: the status it keeps if nothing is (paid, packed, shipped or delivered).
    unreturned = OrderStatus(order.status) if order.status != OrderStatus.PARTLY_RETURNED else OrderStatus.PAID
    lines = await _lines(session, order.id or 0)
    before = await _order_info(session, order)
    wanted = match_return_lines(before.lines, items)
    promoted = await _restock(session, lines, wanted, now)
    for line in lines:
        line.returned_qty += wanted.get(line.id or 0, 0)
        session.add(line)
    await session.flush()
    after = await _order_info(session, order)
    order.status, order.updated_at = calculate_return_status(after.lines, unreturned), now
    session.add(order)
    await session.flush()
    if order.status == OrderStatus.RETURNED:  # everything came back: so does the coupon's use (issue 21)
        await set_uses_of_order(session, order.id or 0, UseStatus.RELEASED, now)
    info = await _order_info(session, order)
    returned = tuple(
        OrderLineInfo(line.id, line.product_id, line.code, line.name, line.variant, wanted[line.id], line.unit_price, 0)
        for line in info.lines
        if wanted.get(line.id)
    )
    _record_event(session, info, "returned", sum((line.total for line in returned), Decimal(0)), returned, now)
    await session.flush()
    return OrderChange(info, changed=True, promoted=promoted)


# --- unpaid orders: expiry, reminders, merging ---------------------------------------------------------


async def expire_unpaid_orders(session: AsyncSession, now: datetime, limit: int = 200) -> list[OrderChange]:
    """Unpaid orders whose time to pay ran out at `now` expire: their units go back, to the waitlist first.

    Each is locked and read again before it changes (a payment may have come in since it was listed), so a
    paid order never expires. At most `limit` per call: the background pass comes back for the rest.
    """
    numbers = (
        await session.execute(
            select(Order.number)
            .where(Order.status == OrderStatus.PENDING_PAYMENT, Order.expires_at <= now)  # type: ignore[operator]
            .order_by(Order.expires_at, Order.id)
            .limit(limit)
        )
    ).scalars()
    changes: list[OrderChange] = []
    for number in list(numbers):
        order = await _lock_order(session, number or "")
        if order.status != OrderStatus.PENDING_PAYMENT or order.expires_at is None or order.expires_at > now:
            continue
        lines = await _lines(session, order.id or 0)
        promoted = await _restock(session, lines, {line.id or 0: line.qty - line.returned_qty for line in lines}, now)
        order.status, order.cancelled_at, order.updated_at = OrderStatus.EXPIRED, now, now
        session.add(order)
        await session.flush()
        await set_uses_of_order(session, order.id or 0, UseStatus.RELEASED, now)
        info = await _order_info(session, order)
        _record_event(session, info, "expired", info.total, info.lines, now)
        changes.append(OrderChange(info, changed=True, promoted=promoted))
    await session.flush()
    return changes


async def orders_to_remind(session: AsyncSession, now: datetime, limit: int = 200) -> list[OrderInfo]:
    """Unpaid orders due their reminder at `now`, marked reminded (once each) with a `reminded` event."""
    orders = (
        await session.execute(
            select(Order)
            .where(
                Order.status == OrderStatus.PENDING_PAYMENT,
                Order.remind_at <= now,  # type: ignore[operator]
                Order.reminded_at.is_(None),  # type: ignore[union-attr]
                Order.expires_at > now,  # type: ignore[operator]
            )
            .order_by(Order.remind_at, Order.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # two workers: each reminds different orders, never one twice
        )
    ).scalars()
    due: list[OrderInfo] = []
    for order in list(orders):
        order.reminded_at = now
        session.add(order)
        info = await _order_info(session, order)
        _record_event(session, info, "reminded", info.total, (), now)
        due.append(info)
    await session.flush()
    return due


async def merge_orders(
    session: AsyncSession,
    survivor: str,
    others: Sequence[str],
    now: datetime,
    shipping: ShippingRules | None = None,
) -> OrderChange:
    """Merge a shopper's other unpaid orders into `survivor`, before payment: one order, one parcel, one payment.

    The others' lines move to the survivor; each other order is cancelled with a note and a `merged` event,
    the survivor gets a `merged_in` event. The survivor's totals are worked out again: subtotal of all lines,
    its delivery option's fee on it (with `shipping`, the shop's rules now: "free above" may now apply; the
    merged orders' fees are dropped, their parcels are one), points paid on any of them still off. It keeps
    the latest time to pay of them all. Stock does not move: the units stay sold. Raises `OrderError`
    (not_found; not_mergeable: not unpaid, another shopper's, the same order twice) having changed nothing.
    """
    wanted = [survivor.upper(), *(number.upper() for number in others)]
    if not others:
        raise OrderError(OrderErrorCode.NOT_MERGEABLE, "give at least one other order to merge")
    if len(set(wanted)) != len(wanted):
        raise OrderError(OrderErrorCode.NOT_MERGEABLE, "an order is listed twice")
    # Locked in one order (by number) whatever the request's, so two merges never wait on each other.
    locked = {number: await _lock_order(session, number) for number in sorted(wanted)}
    keep = locked[wanted[0]]
    merged = [locked[number] for number in wanted[1:]]
    for order in [keep, *merged]:
        if order.status != OrderStatus.PENDING_PAYMENT:
            raise OrderError(
                OrderErrorCode.NOT_MERGEABLE, f"{order.number} is {order.status}; only unpaid orders can be merged"
            )
        if (order.page_id, order.psid) != (keep.page_id, keep.psid):
            raise OrderError(OrderErrorCode.NOT_MERGEABLE, f"{order.number} is another shopper's order")
        if order.currency != keep.currency:
            raise OrderError(OrderErrorCode.NOT_MERGEABLE, f"{order.number} is in {order.currency}")
    # What points (or other discounts) took off each order stays off the merged one.
    discount = sum(
        (Decimal(o.subtotal) + Decimal(o.shipping_fee) - Decimal(o.total) for o in [keep, *merged]), Decimal(0)
    )
    for order in merged:
        before = await _order_info(session, order)
        for line in await _lines(session, order.id or 0):
            line.order_id = keep.id or 0
            session.add(line)
        # The claims it sold follow their lines: the campaign's orders (inbox filter, funnel) find the survivor.
        await session.execute(update(StockClaim).where(StockClaim.order_id == order.id).values(order_id=keep.id))
        await move_uses(session, order.id or 0, keep.id or 0, now)
        keep.coupon_discount = Decimal(keep.coupon_discount) + Decimal(order.coupon_discount)
        keep.coupon_code = keep.coupon_code or order.coupon_code
        order.coupon_discount = Decimal(0)
        order.subtotal = order.total = order.shipping_fee = Decimal(0)
        order.status, order.cancelled_at, order.updated_at = OrderStatus.CANCELLED, now, now
        order.note = f"merged into {keep.number}"
        session.add(order)
        await session.flush()
        _record_event(session, before, "merged", before.total, before.lines, now)
        if order.expires_at is not None and (keep.expires_at is None or order.expires_at > keep.expires_at):
            keep.expires_at, keep.remind_at, keep.reminded_at = order.expires_at, order.remind_at, order.reminded_at
    all_lines = (await _order_info(session, keep)).lines
    fee = Decimal(keep.shipping_fee)
    if shipping is not None and keep.delivery_option is not None:
        choice = shipping.choice(keep.delivery_option)
        if choice is not None:  # an option the shop has since dropped keeps the fee it had
            fee = choice.fee(sum((line.total for line in all_lines), Decimal(0)))
    keep.subtotal, keep.total = calculate_totals(all_lines, fee, discount)
    keep.shipping_fee, keep.updated_at = fee, now
    session.add(keep)
    await session.flush()
    info = await _order_info(session, keep)
    _record_event(session, info, "merged_in", info.total, info.lines, now)
    await session.flush()
    return OrderChange(info, changed=True)


# --- helpers ------------------------------------------------------------------------------------------


async def _lock_order(session: AsyncSession, number: str) -> Order:
    order = (
        await session.execute(select(Order).where(Order.number == number.upper()).with_for_update())
    ).scalar_one_or_none()
    if order is None:
        raise OrderError(OrderErrorCode.NOT_FOUND, f"no order {number}")
    return order


async def _lock_products(session: AsyncSession, ids: Iterable[int]) -> dict[int, Product]:
    ids = sorted(ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(Product).where(Product.id.in_(ids)).order_by(Product.id).with_for_update(key_share=True)  # type: ignore[union-attr]
    )
    return {p.id or 0: p for p in rows.scalars()}


async def _restock(
    session: AsyncSession, lines: Sequence[OrderLine], units: Mapping[int, int], now: datetime
) -> tuple[ClaimDecision, ...]:
    """Take units off `sold`, then offer them to the waitlist of each product, in product id order."""
    back: dict[int, int] = {}
    for line in lines:
        if units.get(line.id or 0):
            back[line.product_id] = back.get(line.product_id, 0) + units[line.id or 0]
    products = await _lock_products(session, back)
    decisions: list[ClaimDecision] = []
    for product_id in sorted(back):
        product = products[product_id]
        product.sold -= back[product_id]
        product.updated_at = now
        session.add(product)
        await session.flush()
        decisions += await promote_waitlist(session, product_id, now)
    return tuple(decisions)


async def _lines(session: AsyncSession, order_id: int) -> list[OrderLine]:
    rows = await session.execute(select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.id))
    return list(rows.scalars())


async def _order_info(session: AsyncSession, order: Order) -> OrderInfo:
    lines = await _lines(session, order.id or 0)
    return OrderInfo(
        order.id or 0,
        order.number or "",
        order.page_id,
        order.psid,
        order.status,
        order.currency,
        Decimal(order.subtotal),
        Decimal(order.total),
        order.customer_name,
        order.phone,
        order.delivery_method,
        order.address,
        order.payment_reference,
        order.placed_at,
        order.paid_at,
        order.cancelled_at,
        tuple(
            OrderLineInfo(
                line.id or 0,
                line.product_id,
                line.code,
                line.name,
                variant_pairs(json.loads(line.variant) if line.variant else None),
                line.qty,
                Decimal(line.unit_price),
                line.returned_qty,
            )
            for line in lines
        ),
        packed_at=order.packed_at,
        shipped_at=order.shipped_at,
        delivered_at=order.delivered_at,
        carrier=order.carrier,
        tracking_number=order.tracking_number,
        shipping_fee=Decimal(order.shipping_fee),
        delivery_option=order.delivery_option,
        payment_method=order.payment_method,
        expires_at=order.expires_at,
        note=order.note,
        coupon_code=order.coupon_code,
        coupon_discount=Decimal(order.coupon_discount or 0),
    )


def _record_event(
    session: AsyncSession, order: OrderInfo, kind: str, amount: Decimal, lines: Iterable[OrderLineInfo], now: datetime
) -> None:
    payload = [
        {
            "code": line.code,
            "product_id": line.product_id,
            "variant": dict(line.variant),
            "qty": line.qty,
            "unit_price": f"{line.unit_price:.2f}",
        }
        for line in lines
    ]
    session.add(
        OrderEvent(
            order_id=order.id,
            order_number=order.number,
            kind=kind,
            amount=amount,
            currency=order.currency,
            lines=json.dumps(payload, ensure_ascii=False),
            created_at=now,
        )
    )


async def fetch_order_history(session: AsyncSession, order_id: int) -> list[tuple[str, datetime]]:
    """The order's events, oldest first, as (kind, when): what its page shows as the order's steps."""
    rows = await session.execute(
        select(OrderEvent.kind, OrderEvent.created_at).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
    )
    # SQLite gives naive times back: they were written in UTC.
    return [(kind, at if at.tzinfo else at.replace(tzinfo=UTC)) for kind, at in rows.all()]
