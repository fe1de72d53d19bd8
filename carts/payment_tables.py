"""SQL tables of paying: the shop's payment methods, how each order is paid, and shoppers' proofs of payment.

- `payment_settings` (one row): the shop file's `payments:` section as JSON (`carts.payment_rules`), and the
  shop's language (`shop.language`), which picks the language of what shoppers read by default.
- `order_payment`: the method the shopper chose for an order, and its Stripe PaymentIntent once made.
- `payment_proof`: a receipt image a shopper sent in Messenger for their unpaid order, until the merchant
  confirms it (the order is paid, reference `proof:<id>`) or rejects it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel


class PaymentSettings(SQLModel, table=True):
    __tablename__ = "payment_settings"
    id: int = Field(default=1, primary_key=True)
    methods: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: {kind: settings}
    language: str = Field(default="en", max_length=16)
    updated_at: datetime


class OrderPayment(SQLModel, table=True):
    __tablename__ = "order_payment"
    order_id: int = Field(foreign_key="shop_order.id", primary_key=True)
    method: str = Field(max_length=20)  # carts.payment_rules.PaymentKind
    stripe_intent_id: str | None = Field(default=None, max_length=255, unique=True)
    created_at: datetime


class PaymentProof(SQLModel, table=True):
    __tablename__ = "payment_proof"
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    message_mid: str = Field(max_length=255, unique=True)  # the Messenger message it came in (once per image)
    image_url: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime
    status: str = Field(default="pending", max_length=10)  # pending | confirmed | rejected
    decided_at: datetime | None = None
