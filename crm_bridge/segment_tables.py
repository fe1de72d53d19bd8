"""SQL tables of segments and tags: each member's figures and scores, the shop's score cuts, tags, saved
segments and who is in each (the snapshot "entered a segment" is computed from).

`crm_member_figures` holds one row per member (surviving members only), refreshed daily for everyone and
for one member on each paid order (`crm_bridge.segments`): today's raw figures from the counted paid orders
and the scores, NES and NAPL derived from them. `crm_rfm_cuts` (one row) keeps the cuts and lapse threshold
the last daily refresh measured, so a single member can be scored between two of them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, Index, Numeric, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class MemberFigures(SQLModel, table=True):
    __tablename__ = "crm_member_figures"
    __table_args__ = (Index("ix_crm_member_figures_scores", "recency_score", "frequency_score", "monetary_score"),)
    member_id: int = Field(foreign_key="crm_member.id", primary_key=True)
    order_count: int = 0
    total_spend: Decimal = Field(default=Decimal(0), sa_column=Column(Numeric(14, 2), nullable=False))
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    recency_score: int | None = None  # 1-5; None: no counted order
    frequency_score: int | None = None
    monetary_score: int | None = None
    nes: str = Field(max_length=10)  # crm_bridge.segment_rules.Nes
    napl: str | None = Field(default=None, max_length=10)  # crm_bridge.segment_rules.Napl; None: no order
    computed_at: datetime


class RfmCuts(SQLModel, table=True):
    """The last daily refresh's measure of the shop: score cuts (JSON lists, None: too few customers) and
    the lapse threshold with where it came from."""

    __tablename__ = "crm_rfm_cuts"
    id: int = Field(default=1, primary_key=True)
    customers: int = 0
    recency: str | None = Field(default=None, sa_column=Column(Text))  # cuts on minus days since (bigger: better)
    frequency: str | None = Field(default=None, sa_column=Column(Text))
    monetary: str | None = Field(default=None, sa_column=Column(Text))
    lapse_days: int = 90
    lapse_source: str = Field(default="default", max_length=10)  # crm_bridge.segment_rules.LapseSource
    median_gap_days: float | None = None
    shop_lapse_days: int | None = None  # the shop's own threshold (shop file / settings page); None: derived
    computed_at: datetime | None = None
    computed_on: str | None = Field(default=None, max_length=10)  # the shop's local date of the daily refresh


class MemberTag(SQLModel, table=True):
    """A tag on a member: who or what set it (`source` hand | rule | journey, `set_by` the user, segment or
    journey) and when."""

    __tablename__ = "crm_member_tag"
    __table_args__ = (
        UniqueConstraint("member_id", "tag", name="uq_crm_member_tag"),
        Index("ix_crm_member_tag_tag", "tag"),
    )
    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="crm_member.id", index=True)
    tag: str = Field(max_length=40)
    source: str = Field(max_length=10)
    set_by: str | None = Field(default=None, max_length=200)
    created_at: datetime


class SavedSegment(SQLModel, table=True):
    """A saved filter: `definition` is `crm_bridge.segment_rules.SegmentDefinition` as JSON (`version`: its
    schema); `tag_on_entry`: the rule "a member entering this segment gets this tag"."""

    __tablename__ = "crm_segment"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True)
    definition: str = Field(sa_column=Column(Text, nullable=False))
    version: int = 1
    tag_on_entry: str | None = Field(default=None, max_length=40)
    created_at: datetime
    updated_at: datetime


class SegmentMember(SQLModel, table=True):
    """Who was in a segment at its last evaluation (`crm_bridge.segments.refresh_segment`), since when:
    a member is said to enter a segment when a refresh adds their row."""

    __tablename__ = "crm_segment_member"
    __table_args__ = (Index("ix_crm_segment_member_entered", "segment_id", "entered_at"),)
    segment_id: int = Field(foreign_key="crm_segment.id", primary_key=True)
    member_id: int = Field(foreign_key="crm_member.id", primary_key=True)
    entered_at: datetime
