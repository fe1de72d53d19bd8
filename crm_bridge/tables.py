"""SQL tables of the CRM: members, their identities, the points ledger, referral edges, the programme.

The ledger is append-only: a return or an expiry is a new (negative) row, never an edit; balances are
sums. A row counts as pending until its `available_at` (the shop's return window after payment), then as
available, so nothing has to run when a window closes.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Column, Index, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Member(SQLModel, table=True):
    """A shopper's membership: tier, the current period's spend, referral code, lifetime figures.

    A member merged into another (one shopper proved to hold both, see `ContactClaim`) keeps its row with
    `merged_into` set; its identities, ledger rows and referral edges point at the surviving member.
    """

    __tablename__ = "crm_member"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=20, unique=True)  # the referral code in the member's links
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=254)
    birthday: date | None = None
    birthday_year: int | None = None  # the last year birthday points were given
    tier_key: str = Field(max_length=40)
    # The tier the current period began with (None on rows from before it was kept: the current tier), so
    # carry-over sees an upgrade made at a payment during the period as well as one made at its end.
    period_tier_key: str | None = Field(default=None, max_length=40)
    # The order whose payment lifted the member to `tier_key` this period: returned whole, it takes the
    # upgrade back (None: held since the period began, or no longer one order's doing).
    tier_order_id: int | None = None
    period_start: datetime
    period_spend: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(14, 2), nullable=False))
    total_spend: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(14, 2), nullable=False))
    paid_orders: int = 0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    merged_into: int | None = Field(default=None, index=True)
    # Journeys' consent (crm_bridge.consent): set, the member receives no journey message on any channel.
    marketing_opt_out_at: datetime | None = None
    opt_out_source: str | None = Field(default=None, max_length=12)  # email_link | messenger | merchant | api
    created_at: datetime
    updated_at: datetime


class MemberIdentity(SQLModel, table=True):
    """Something that names a member: `psid` (`page id:psid`), `instagram`, `phone` or `email`."""

    __tablename__ = "crm_member_identity"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_crm_identity_kind_value"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="crm_member.id", index=True)
    kind: str = Field(max_length=12)
    value: str = Field(max_length=300)
    created_at: datetime


class ContactClaim(SQLModel, table=True):
    """A phone or email a shopper gave that another member already has: a claim, not yet proof.

    A contact typed into a form or a chat proves nothing, so it never merges two members by itself. The
    claim waits here until the same person shows they hold both: by typing the one-time code sent to the
    other member's Messenger chat (`code_hash`), or by the merchant confirming it in the inbox.
    """

    __tablename__ = "crm_contact_claim"
    __table_args__ = (UniqueConstraint("member_id", "kind", "value", name="uq_crm_contact_claim"),)
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="crm_member.id", index=True)  # the shopper who gave the contact
    owner_id: int = Field(foreign_key="crm_member.id", index=True)  # the member who already has it
    kind: str = Field(max_length=12)
    value: str = Field(max_length=300)
    code_hash: str | None = Field(default=None, max_length=64)  # sha256 of the code; None: no code sent
    code_expires_at: datetime | None = None
    attempts: int = 0  # wrong codes typed since the code was sent
    confirmed_at: datetime | None = None
    confirmed_by: str | None = Field(default=None, max_length=20)  # code | merchant
    created_at: datetime
    updated_at: datetime


class PointsEntry(SQLModel, table=True):
    """One change of a member's points: earn | redeem | expire | referral | birthday | bonus | adjust.

    `key` makes writing it idempotent (a replayed order event writes nothing new); `order_id` ties the
    order's rows together so a return can scale them down; `level` is the referral level (0: the member).
    """

    __tablename__ = "crm_points"
    __table_args__ = (Index("ix_crm_points_member_available", "member_id", "available_at"),)
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    member_id: int = Field(foreign_key="crm_member.id")
    kind: str = Field(max_length=12)
    points: int  # signed
    reason: str = Field(sa_column=Column(Text, nullable=False))
    # The reason as a code and its values (crm_bridge.rules.PointsReason), said in the reader's language;
    # None: `reason` is a merchant's own words (or an old row no code matched), shown as written.
    reason_code: str | None = Field(default=None, max_length=40)
    reason_params: str | None = Field(default=None, sa_column=Column(Text))
    order_id: int | None = Field(default=None, index=True)
    source_member_id: int | None = None  # for referral rows: whose sign-up or order paid it
    level: int = 0
    fixed: bool = False  # a fixed award (kept whole on a partial return)
    reverses: int | None = Field(default=None, index=True)  # the row a return scales down
    available_at: datetime
    created_at: datetime


class ReferralEdge(SQLModel, table=True):
    """Who brought whom: one edge per referred member (a member is referred at most once)."""

    __tablename__ = "crm_referral"
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="crm_member.id", unique=True)
    referrer_id: int = Field(foreign_key="crm_member.id", index=True)
    source: str = Field(max_length=40)  # SHORTLINK, ADS, ...: where Meta says the link was
    created_at: datetime


class MembershipProgram(SQLModel, table=True):
    """The shop's programme (tiers, points, referral rules) as JSON: one row, from the shop file."""

    __tablename__ = "crm_program"
    id: int = Field(default=1, primary_key=True)
    rules: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime


class CrmCursor(SQLModel, table=True):
    """How far a consumer has read a feed (`order_event`): the last id whose effects are committed."""

    __tablename__ = "crm_cursor"
    name: str = Field(primary_key=True, max_length=40)
    last_id: int = 0
    updated_at: datetime
