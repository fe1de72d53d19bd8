"""The member card in the buyer panel: tier, points, the member's links, manual adjustments, "make member".

The CRM (`crm_bridge`, issue 7) owns members and their points ledger; this module only reads them for
the card and calls the CRM's own functions to change them, with the same rules as the admin API's
`POST /api/members/{id}/adjust` (a whole number of points, not 0, within the API's limit, and a reason).
Like the API it lets a deduction take the balance below zero: the ledger allows that (a return after
spending does it too), and the inbox and the API must not disagree on what an adjustment may do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox.journey_runs import member_journeys
from bot.outbound.shopper_locale import locale_of
from bot.replies.members import referral_link, share_text, whatsapp_link
from bot.runtime.clock import utcnow
from bot.web.members_api import ADJUST_MAX, REASON_MAX
from bot.web.numbers import read_int
from carts.orders import fetch_shop_name
from crm_bridge.consent import OptOutSource, apply_opt_in, apply_opt_out
from crm_bridge.contact_claims import confirm_claim, fetch_open_claims
from crm_bridge.ledger import apply_adjustment, fetch_balance, fetch_ledger
from crm_bridge.members import fetch_member, fetch_member_by_psid, fetch_or_create_member
from crm_bridge.program import fetch_program
from crm_bridge.segment_tables import MemberFigures, MemberTag
from crm_bridge.segments import fetch_figures, fetch_member_tags, fetch_tag_names
from crm_bridge.tables import PointsEntry

RECENT_ENTRIES = 5


class MemberEditError(ValueError):
    """Bad input for a member change: the message says what to fix; nothing was changed."""


@dataclass(frozen=True)
class LedgerLine:
    points: int
    kind: str
    reason: str
    created_at: datetime
    reason_code: str | None = None  # said in the reader's language (`|points_reason`); None: `reason` as written
    reason_params: str | None = None


@dataclass(frozen=True)
class ClaimLine:
    """This shopper gave a phone or email that another member has: the merchant may join the two."""

    id: int
    kind: str
    value: str
    other_code: str  # the other member's referral code
    other_name: str | None


@dataclass(frozen=True)
class MemberCard:
    code: str
    name: str | None
    tier: str  # the tier's name, as the member sees it in Messenger
    points: int
    pending_points: int
    paid_orders: int
    referral_link: str  # https://m.me/<page>?ref=<code>
    whatsapp_link: str  # https://wa.me/?text=<the share text with that link>
    recent: tuple[LedgerLine, ...]
    claims: tuple[ClaimLine, ...] = ()
    # Segments and tags (issue 21): RFM scores, NES / NAPL, tags, and the shop's tags for the typeahead.
    figures: MemberFigures | None = None
    tags: tuple[MemberTag, ...] = ()
    known_tags: tuple[str, ...] = ()
    # Marketing consent (issue 21): set when the member opted out of journeys and marketing e-mail, and how.
    opted_out_at: datetime | None = None
    opt_out_source: str | None = None  # email_link | messenger | merchant | api
    journeys: tuple[dict[str, Any], ...] = ()  # the member's journey runs (bot.inbox.journey_runs)


@dataclass(frozen=True)
class Adjustment:
    points: int
    reason: str


def parse_adjustment(points_text: str, reason_text: str) -> Adjustment:
    """The adjust form's fields, checked as the admin API checks its JSON; MemberEditError if wrong."""
    try:
        points = read_int(points_text, -ADJUST_MAX, ADJUST_MAX)
    except ValueError:
        points = 0
    if points == 0:
        raise MemberEditError(
            f"Points must be a whole number such as 50 or -20, not 0, at most {ADJUST_MAX:,} either way."
        )
    reason = reason_text.strip()
    if not reason or len(reason) > REASON_MAX:
        raise MemberEditError(f"Give a reason for the change (1 to {REASON_MAX} characters): it stays in the ledger.")
    return Adjustment(points, reason)


async def member_card(session: AsyncSession, page_id: str, psid: str) -> MemberCard | None:
    """The shopper's member card, or None when they are no member yet."""
    member = await fetch_member_by_psid(session, page_id, psid)
    if member is None or member.id is None:
        return None
    balance = await fetch_balance(session, member.id, utcnow())
    program = await fetch_program(session)
    # The same links the member gets in Messenger (bot.handlers.members): the Page's username, else its id.
    page = program.page_username or page_id
    shop_name = await fetch_shop_name(session)
    entries = await fetch_ledger(session, member.id, limit=RECENT_ENTRIES)
    return MemberCard(
        code=member.code,
        name=member.name,
        tier=program.tier(member.tier_key).name,
        points=balance.available,
        pending_points=balance.pending,
        paid_orders=member.paid_orders,
        referral_link=referral_link(page, member.code),
        whatsapp_link=whatsapp_link(share_text(await locale_of(session, page_id, psid), shop_name, page, member.code)),
        recent=tuple(
            LedgerLine(e.points, e.kind, e.reason, e.created_at, e.reason_code, e.reason_params) for e in entries
        ),
        claims=tuple(await _claim_lines(session, member.id)),
        figures=await fetch_figures(session, member.id),
        tags=tuple(await fetch_member_tags(session, member.id)),
        known_tags=tuple(await fetch_tag_names(session, limit=200)),
        opted_out_at=member.marketing_opt_out_at,
        opt_out_source=member.opt_out_source,
        journeys=await member_journeys(session, member.id),
    )


async def _claim_lines(session: AsyncSession, member_id: int) -> list[ClaimLine]:
    lines = []
    for claim in await fetch_open_claims(session, member_id):
        other = await fetch_member(session, claim.owner_id)
        if claim.member_id == member_id and other is not None and other.id != member_id:
            lines.append(ClaimLine(claim.id or 0, claim.kind, claim.value, other.code, other.name))
    return lines


async def join_claimed_member(session: AsyncSession, page_id: str, psid: str, claim_id: int) -> bool:
    """The merchant confirms that this shopper also holds the member their claim names: merge the two.

    Only a claim this shopper made can be confirmed from their chat; False when it is not open (any more).
    """
    member = await fetch_member_by_psid(session, page_id, psid)
    if member is None or not any(line.id == claim_id for line in await _claim_lines(session, member.id or 0)):
        return False
    return await confirm_claim(session, claim_id, utcnow()) is not None


async def adjust_points(session: AsyncSession, page_id: str, psid: str, change: Adjustment, key: str) -> bool:
    """Add the change to the shopper's member's ledger under `key`; False when that key was written already."""
    member = await fetch_member_by_psid(session, page_id, psid)
    if member is None:
        raise MemberEditError("This shopper is not a member yet: make them one first.")
    # A repeated form (double click, reload) is a no-op, not a second change nor a refusal.
    done = (await session.execute(select(PointsEntry.id).where(PointsEntry.key == key))).first()
    if done is not None:
        return False
    await apply_adjustment(session, member, change.points, change.reason, utcnow(), key=key)
    return True


async def make_member(session: AsyncSession, page_id: str, psid: str, name: str | None) -> bool:
    """Make the shopper a member linked to this Page id, as typing "points" in Messenger does; True if new."""
    _, created = await fetch_or_create_member(session, page_id, psid, name=name, now=utcnow())
    return created


async def set_marketing_consent(session: AsyncSession, page_id: str, psid: str, *, out: bool) -> bool:
    """The merchant records the shopper's opt-out of marketing (or their opt-in), as the admin API's
    `PUT /api/members/{id}/consent` does; True when it changed anything."""
    member = await fetch_member_by_psid(session, page_id, psid)
    if member is None or member.id is None:
        raise MemberEditError("This shopper is not a member yet: make them one first.")
    change = apply_opt_out if out else apply_opt_in
    return await change(session, member.id, OptOutSource.MERCHANT.value, utcnow())
