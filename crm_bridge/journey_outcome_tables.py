"""What journeys' messages brought back: survey answers and the orders credited to a message (SQL tables).

- `crm_survey_answer`: one row per survey message (message_id unique: a second answer is refused), with the
  stars, the comment and, while the shopper's next Messenger message is taken as the comment, `comment_until`.
- `crm_journey_attribution`: one row per order (order_id unique: a replayed paid event credits once), the
  latest message sent to its member within the journey's attribution days before payment.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Column, Numeric, Text
from sqlmodel import Field, SQLModel


class SurveyAnswer(SQLModel, table=True):
    __tablename__ = "crm_survey_answer"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="crm_journey_message.id", unique=True)
    run_id: int = Field(foreign_key="crm_journey_run.id", index=True)
    member_id: int = Field(foreign_key="crm_member.id", index=True)
    stars: int  # 1..5
    comment: str | None = Field(default=None, sa_column=Column(Text))
    channel: str = Field(max_length=10)  # messenger | email: where it was answered
    answered_at: datetime
    comment_until: datetime | None = None  # the shopper's next message before this is the comment


class JourneyAttribution(SQLModel, table=True):
    __tablename__ = "crm_journey_attribution"
    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", unique=True)
    message_id: int = Field(foreign_key="crm_journey_message.id", index=True)
    journey_id: int = Field(foreign_key="crm_journey.id", index=True)
    member_id: int = Field(foreign_key="crm_member.id", index=True)
    amount: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    paid_at: datetime
