"""SQL tables of checkout and orders: checkout tokens, orders, their lines, and the order event log.

`OrderEvent` is the record other parts (the CRM issue) consume: one row per change of an order (placed,
paid, packed, shipped, delivered, cancelled, returned, expired, merged...), written in the same
transaction as the change itself, so an event exists exactly when its change committed. Consumers read it
in `id` order and remember the last id they saw.

An order's `number` (`PO-000123`) is its id, formatted: the id comes from the database's own counter
(SQLite rowid, PostgreSQL identity), which works the same on both and needs no counter table.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, Index, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class CheckoutToken(SQLModel, table=True):
    """The unguessable token in a shopper's checkout link: one per (Page, shopper).

    `nonce` is what the checkout form must send back: a post without it (cross-site, or a stale page) is
    refused; it changes when an order is placed, so the same form posted twice finds that order instead.
    """

    __tablename__ = "checkout_token"
    __table_args__ = (UniqueConstraint("page_id", "psid", name="uq_checkout_token_page_psid"),)
    id: int | None = Field(default=None, primary_key=True)
    token: str = Field(max_length=64, unique=True)
    page_id: str = Field(max_length=64)
    psid: str = Field(max_length=64)
    nonce: str = Field(max_length=64)
    created_at: datetime


class Order(SQLModel, table=True):
    """A confirmed checkout: its stock is sold (not held); paid later by the merchant or a payment notice."""

    __tablename__ = "shop_order"  # `order` is an SQL keyword
    __table_args__ = (Index("ix_shop_order_page_psid", "page_id", "psid"),)
    id: int | None = Field(default=None, primary_key=True)
    number: str | None = Field(default=None, max_length=20, unique=True)  # PO-000123, set from the id
    page_id: str = Field(max_length=64)
    psid: str = Field(max_length=64)
    checkout_nonce: str = Field(max_length=64, unique=True)  # the form post that placed it (idempotency)
    status: str = Field(default="pending_payment", max_length=20, index=True)
    # carts.order_rules.OrderStatus
    currency: str = Field(max_length=3)
    subtotal: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    total: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    customer_name: str = Field(max_length=100)
    phone: str = Field(max_length=20)
    delivery_method: str = Field(max_length=10)  # delivery | pickup
    address: str | None = Field(default=None, sa_column=Column(Text))
    payment_reference: str | None = Field(default=None, max_length=200)
    placed_at: datetime
    paid_at: datetime | None = None
    cancelled_at: datetime | None = None
    # Fulfilment (carts.fulfilment): packed, then shipped with a carrier and its tracking number, delivered.
    packed_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    carrier: str | None = Field(default=None, max_length=60)
    tracking_number: str | None = Field(default=None, max_length=80)
    updated_at: datetime
    # The order's life before payment (carts.order_rules.OrderRules): chosen at checkout, it sets how long
    # the order waits; unpaid at `expires_at`, it expires (its stock goes back); reminded once at `remind_at`.
    payment_method: str | None = Field(default=None, max_length=40)
    expires_at: datetime | None = Field(default=None, index=True)
    remind_at: datetime | None = None
    reminded_at: datetime | None = None
    # Shipping (carts.order_rules.ShippingRules): the option chosen ("key" or "key/region") and its fee,
    # part of `total`.
    delivery_option: str | None = Field(default=None, max_length=200)
    shipping_fee: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(12, 2), nullable=False, server_default="0")
    )
    note: str | None = Field(default=None, sa_column=Column(Text))  # why it ended so: "merged into PO-000003"
    # A coupon or voucher applied at checkout (carts.coupons): its code and what it took off, part of `total`.
    coupon_code: str | None = Field(default=None, max_length=40)
    coupon_discount: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(12, 2), nullable=False, server_default="0")
    )


class OrderLine(SQLModel, table=True):
    """One product (and variant) of an order, priced as it was sold."""

    __tablename__ = "order_line"
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    product_id: int = Field(foreign_key="product.id")
    code: str = Field(max_length=40)  # as the shopper ordered it (the campaign's code)
    name: str = Field(max_length=200)
    variant: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: option -> value
    qty: int
    unit_price: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    returned_qty: int = 0


class OrderEvent(SQLModel, table=True):
    """A change of an order, for consumers (the CRM) to read in `id` order: placed | paid | packed | shipped |
    delivered | cancelled | returned | expired (unpaid in time) | reminded (told it will expire) | merged (into
    another order, its lines moved) | merged_in (the order that took them). Consumers ignore kinds they do not know.

    `amount` is the money the event is about (the total placed, paid or cancelled; the value returned);
    `lines` is JSON: `[{"code", "product_id", "variant", "qty", "unit_price"}]` of the lines it concerns.
    """

    __tablename__ = "order_event"
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    order_number: str = Field(max_length=20)
    kind: str = Field(max_length=16)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    currency: str = Field(max_length=3)
    lines: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    created_at: datetime
