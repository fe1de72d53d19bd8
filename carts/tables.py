"""SQL tables of comment selling: the catalog, campaigns and their products (the shop file's contents).

Stock is counted on the product row: `held + sold <= stock` is the invariant (docs/architecture.md, invariant 3),
kept by conditional UPDATEs, never by reading then writing. A product with `stock` None is unlimited.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, Index, Numeric, Text, UniqueConstraint, true
from sqlmodel import Field, SQLModel

from carts.stock_rules import ClaimSource, ClaimStatus


class Product(SQLModel, table=True):
    """A catalog product. `code` is the merchant's code (as written in the shop file, case kept)."""

    __tablename__ = "product"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name: str = Field(max_length=200)
    price: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    variants: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: option -> [values]
    stock: int | None = None  # None: unlimited
    held: int = 0  # in unpaid carts
    sold: int = 0  # in orders
    active: bool = True  # products dropped from the shop file stay (orders refer to them) but are inactive
    image_url: str | None = Field(default=None, max_length=2000)  # a picture of it (http or https), set in the console
    # Words shoppers order it by besides its code (issue 20): JSON list of nicknames, and whether the
    # name is one too (config.catalog_file.product_keywords makes the parser's keywords of them).
    nicknames: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    name_keyword: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    created_at: datetime
    updated_at: datetime


class Campaign(SQLModel, table=True):
    """A sale on one Page: one post, one live video, or the Page's next live; open between two times."""

    __tablename__ = "campaign"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=80, unique=True)  # the merchant's name for it in the shop file
    title: str = Field(max_length=200)
    page_id: str = Field(max_length=64, index=True)
    post_id: str | None = Field(default=None, max_length=128, index=True)  # "{page id}_{post id}"
    live_video_id: str | None = Field(default=None, max_length=64, index=True)
    next_live: bool = False  # attach to the Page's next live video when it starts
    starts_at: datetime
    ends_at: datetime
    per_shopper_limit: int | None = None  # units of one product one shopper may hold or buy
    hold_minutes: int = 30  # how long stock stays held for an unpaid cart
    pinned_text: str | None = Field(default=None, sa_column=Column(Text))
    closed_reply: str | None = Field(default=None, sa_column=Column(Text))
    pinned_comment_id: str | None = Field(default=None, max_length=128)  # the pinned text, once posted on the post
    created_at: datetime
    updated_at: datetime


class CampaignProduct(SQLModel, table=True):
    """A product on sale in a campaign, under the code shoppers type there (`A` may be sold as `Flower`)."""

    __tablename__ = "campaign_product"
    __table_args__ = (UniqueConstraint("campaign_id", "order_code", name="uq_campaign_order_code"),)
    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    product_id: int = Field(foreign_key="product.id")
    order_code: str = Field(max_length=40)


class StockClaim(SQLModel, table=True):
    """One comment's request for units of one product (and variant), decided in arrival order.

    A claim is recorded by whichever worker handles the comment (`pending`), then the allocator decides
    it: `held` (stock is kept for the shopper's cart until `expires_at`), or `waitlisted` when sold out.
    Deciding only claims that arrived before the stream's low watermark, oldest first, is what makes
    first come, first served hold with any number of workers (see `carts.stock`; the statuses are
    `carts.stock_rules.ClaimStatus`).
    """

    __tablename__ = "stock_claim"
    __table_args__ = (
        Index("ix_stock_claim_pending", "product_id", "status", "arrival"),
        Index("ix_stock_claim_expiry", "status", "expires_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=400, unique=True)  # comment id + item: a replayed comment claims nothing twice
    campaign_id: int = Field(foreign_key="campaign.id")
    product_id: int = Field(foreign_key="product.id")
    page_id: str = Field(max_length=64)
    psid: str = Field(max_length=64, index=True)
    comment_id: str = Field(max_length=128, index=True)
    variant: str = Field(default="", max_length=400)  # canonical JSON of the chosen options, "" for none
    qty: int
    arrival: str = Field(max_length=40)  # sortable: stream time, stream sequence, position in the delivery
    status: str = Field(default=ClaimStatus.PENDING.value, max_length=16)  # a ClaimStatus
    source: str = Field(default=ClaimSource.COMMENT.value, max_length=16)  # a ClaimSource
    hold_minutes: int = 30
    expires_at: datetime | None = None
    reminded_at: datetime | None = None  # told the hold runs out soon
    decided_at: datetime | None = None
    order_id: int | None = Field(default=None, index=True)  # the order that sold it (the inbox's campaign filter)
    created_at: datetime
    # When units freed later were held for it from the waitlist (carts.stock.promote_waitlist): the funnel's
    # "waitlist turned into sales" counts such claims. None: never waitlisted, or still waiting.
    promoted_at: datetime | None = None


class ShopInfo(SQLModel, table=True):
    """The shop itself (one row): its name, the currency its prices are in and its time zone."""

    __tablename__ = "shop_info"
    id: int = Field(default=1, primary_key=True)
    name: str = Field(default="Shop", max_length=200)
    currency: str = Field(default="HKD", max_length=3)
    timezone: str = Field(default="UTC", max_length=64)  # IANA name: times shown to people are in it
    updated_at: datetime
    # The shop file's `orders:` and `shipping:` sections as JSON (carts.order_rules.OrderRules.to_dict,
    # ShippingRules.to_dict); None: the defaults (48 hours to pay, no delivery options).
    order_rules: str | None = Field(default=None, sa_column=Column(Text))
    shipping: str | None = Field(default=None, sa_column=Column(Text))
    # The sign-up coupon (issue 21): a new member gets their own code of it with the welcome; None: none.
    signup_coupon_id: int | None = None
