"""SQL tables of coupons: the coupon's terms, personal codes, uses by orders, and first-N keyword offers.

A `Coupon` is what a code gives (`carts.coupon_rules.CouponTerms`): a shared `code` on the row itself, or
personal codes (`CouponCode`, one per shopper) such as a first-N offer's vouchers. A `CouponUse` is one
order's use, reserved while the order is unpaid, used once paid, released when it is cancelled, expires or
comes back: the limits count reserved and used ones. A `CouponOffer` gives a campaign's commenters of a
keyword one personal code each, to the first `quantity` by arrival (`OfferClaim`, decided like stock
claims: `carts.coupons.allocate_offer_claims`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, Index, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from carts.coupon_rules import OfferClaimStatus, OfferStatus, UseStatus


class Coupon(SQLModel, table=True):
    """A coupon's terms. `campaign_ids` and `product_ids` are JSON lists ("[]": any)."""

    __tablename__ = "coupon"
    id: int | None = Field(default=None, primary_key=True)
    code: str | None = Field(default=None, max_length=40, unique=True)  # a shared code; None: personal codes
    title: str = Field(max_length=200)
    kind: str = Field(max_length=10)  # a DiscountKind
    value: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    min_spend: Decimal | None = Field(default=None, sa_column=Column(Numeric(12, 2), nullable=True))
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    campaign_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    product_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    budget: int | None = None  # uses in all
    per_shopper_limit: int | None = 1
    source: str = Field(default="manual", max_length=20)  # a carts.coupon_rules.CouponSource
    stopped_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class CouponCode(SQLModel, table=True):
    """A personal code of a coupon, for one shopper of a Page."""

    __tablename__ = "coupon_code"
    __table_args__ = (UniqueConstraint("coupon_id", "page_id", "psid", name="uq_coupon_code_holder"),)
    id: int | None = Field(default=None, primary_key=True)
    coupon_id: int = Field(foreign_key="coupon.id", index=True)
    code: str = Field(max_length=40, unique=True)
    page_id: str = Field(max_length=64)
    psid: str = Field(max_length=64, index=True)
    created_at: datetime


class CouponUse(SQLModel, table=True):
    """One order's use of a coupon and what it took off."""

    __tablename__ = "coupon_use"
    __table_args__ = (Index("ix_coupon_use_coupon_status", "coupon_id", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    coupon_id: int = Field(foreign_key="coupon.id")
    code_id: int | None = Field(default=None, foreign_key="coupon_code.id")
    code: str = Field(max_length=40)  # as applied
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    page_id: str = Field(max_length=64)
    psid: str = Field(max_length=64, index=True)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    status: str = Field(default=UseStatus.RESERVED.value, max_length=10)  # a UseStatus
    created_at: datetime
    updated_at: datetime


class CouponOffer(SQLModel, table=True):
    """ "The first `quantity` who comment a keyword get a voucher": a campaign's first-N offer."""

    __tablename__ = "coupon_offer"
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    coupon_id: int = Field(foreign_key="coupon.id")
    keywords: str = Field(sa_column=Column(Text, nullable=False))  # JSON list, as the merchant wrote them
    quantity: int
    given: int = 0  # vouchers given so far: never more than `quantity`
    status: str = Field(default=OfferStatus.ACTIVE.value, max_length=10)  # an OfferStatus
    created_at: datetime
    updated_at: datetime


class OfferClaim(SQLModel, table=True):
    """A keyword comment's request for an offer's voucher, decided in arrival order (as a stock claim)."""

    __tablename__ = "offer_claim"
    __table_args__ = (
        UniqueConstraint("offer_id", "comment_id", name="uq_offer_claim_comment"),
        Index("ix_offer_claim_pending", "offer_id", "status", "arrival"),
    )
    id: int | None = Field(default=None, primary_key=True)
    offer_id: int = Field(foreign_key="coupon_offer.id")
    page_id: str = Field(max_length=64)
    psid: str = Field(max_length=64)
    comment_id: str = Field(max_length=128, index=True)
    arrival: str = Field(max_length=40)  # carts.stock_rules.arrival_key
    status: str = Field(default=OfferClaimStatus.PENDING.value, max_length=10)  # an OfferClaimStatus
    code_id: int | None = Field(default=None, foreign_key="coupon_code.id")  # the voucher given
    created_at: datetime
    decided_at: datetime | None = None
