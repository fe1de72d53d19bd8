"""SQL tables of journeys: the journey, its versions (each definition as JSON), each member's run of it
with its history, and the messages its send steps queue for delivery (bot/ delivers them).

Uniqueness carries the guarantees: `(journey_id, trigger_key)` on a run (the same trigger never enters a
member twice, whatever replays it) and `(run_id, step_id)` on a message (a step never sends twice, even
when a restarted runner does the step again). The member's opt-out is on `crm_member`
(`marketing_opt_out_at`, `opt_out_source`; crm_bridge.consent).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class Journey(SQLModel, table=True):
    __tablename__ = "crm_journey"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=60, unique=True)  # a slug: URLs, the API, the shop file
    name: str = Field(max_length=120)
    enabled: bool = False
    current_version_id: int | None = None
    ready_made: str | None = Field(default=None, max_length=60)  # the ready-made journey it came from
    created_at: datetime
    updated_at: datetime


class JourneyVersion(SQLModel, table=True):
    """One definition of a journey (`crm_bridge.journey_rules`, as JSON): editing makes the next number."""

    __tablename__ = "crm_journey_version"
    __table_args__ = (UniqueConstraint("journey_id", "number", name="uq_crm_journey_version_number"),)
    id: int | None = Field(default=None, primary_key=True)
    journey_id: int = Field(foreign_key="crm_journey.id", index=True)
    number: int
    definition: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    created_by: str | None = Field(default=None, max_length=200)


class JourneyRun(SQLModel, table=True):
    """A member's way through one version: `step_index` is the next step to do, `next_at` when to look."""

    __tablename__ = "crm_journey_run"
    __table_args__ = (
        UniqueConstraint("journey_id", "trigger_key", name="uq_crm_journey_run_trigger"),
        Index("ix_crm_journey_run_due", "status", "next_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    journey_id: int = Field(foreign_key="crm_journey.id", index=True)
    version_id: int = Field(foreign_key="crm_journey_version.id")
    member_id: int = Field(foreign_key="crm_member.id", index=True)
    trigger_key: str = Field(max_length=120)  # "order:123", "birthday:2027", "joined" (with the member)
    status: str = Field(max_length=10)  # waiting | done | stopped
    step_index: int = 0
    next_at: datetime | None = Field(default=None, index=True)
    context: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON: order_id, order_ref
    started_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = Field(default=None, max_length=40)


class JourneyEvent(SQLModel, table=True):
    """One line of a run's history: what happened at a step (`kind`), why (`code`), with what (`detail`)."""

    __tablename__ = "crm_journey_event"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="crm_journey_run.id", index=True)
    at: datetime
    step_id: str | None = Field(default=None, max_length=40)
    kind: str = Field(max_length=12)  # crm_bridge.journey_rules.EventKind
    code: str | None = Field(default=None, max_length=40)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON params


class JourneyMessage(SQLModel, table=True):
    """What a send step says to a member: queued by the engine, its outcome written back by delivery."""

    __tablename__ = "crm_journey_message"
    __table_args__ = (
        UniqueConstraint("run_id", "step_id", name="uq_crm_journey_message_step"),
        Index("ix_crm_journey_message_status", "status", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="crm_journey_run.id")
    step_id: str = Field(max_length=40)
    journey_id: int = Field(foreign_key="crm_journey.id", index=True)
    member_id: int = Field(foreign_key="crm_member.id", index=True)
    status: str = Field(max_length=10)  # queued | sent | refused | failed
    channel: str | None = Field(default=None, max_length=10)  # messenger | email; None while queued
    refusal_code: str | None = Field(default=None, max_length=40)
    refusal_reason: str | None = Field(default=None, sa_column=Column(Text))
    locale: str = Field(max_length=10)
    text: str = Field(sa_column=Column(Text, nullable=False))
    coupon_code: str | None = Field(default=None, max_length=40)
    survey: bool = False
    update: bool = False
    template: str | None = Field(default=None, max_length=120)
    outbox_id: int | None = None
    email_id: int | None = None
    created_at: datetime
    sent_at: datetime | None = None
