"""Members in SQL: finding and creating them, linking their identities (Page-scoped ids, phones, emails),
merging two members who turn out to be one shopper, and the admin's searches and views.

Every function works in the caller's transaction. A merged member keeps its row with `merged_into`
set; lookups follow it to the surviving member.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_tables import Order
from carts.sql import dialect_insert
from crm_bridge.program import fetch_program
from crm_bridge.rules import PointsReason, Program, Rfm, Tier, add_months, calculate_rfm, coded_reason
from crm_bridge.segment_tables import MemberFigures, MemberTag, SegmentMember
from crm_bridge.tables import ContactClaim, Member, MemberIdentity, PointsEntry, ReferralEdge

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and retyped


_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}")


_PHONE_CHARS = re.compile(r"[0-9+\-() ]{6,24}")


class IdentityKind(StrEnum):
    PSID = "psid"
    INSTAGRAM = "instagram"
    PHONE = "phone"
    EMAIL = "email"


def psid_identity(page_id: str, psid: str) -> str:
    return f"{page_id}:{psid}"


def parse_phone(text: str) -> str | None:
    """A phone number as one key: digits with the `+` of an international prefix; None if it is none."""
    text = text.strip()
    if not _PHONE_CHARS.fullmatch(text):
        return None
    digits = "".join(c for c in text if c.isdigit())
    if not 6 <= len(digits) <= 15:
        return None
    return ("+" if text.startswith("+") else "") + digits


def parse_email(text: str) -> str | None:
    text = text.strip()
    return text.lower() if _EMAIL.fullmatch(text) else None


def as_utc(moment: datetime) -> datetime:
    """SQLite gives datetimes back without their zone; they were stored as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def fetch_surviving_member(session: AsyncSession, member_id: int) -> Member:
    """The member `member_id` was merged into, following merges to the end (itself when never merged)."""
    member = await session.get(Member, member_id)
    assert member is not None
    while member.merged_into is not None:
        nxt = await session.get(Member, member.merged_into)
        assert nxt is not None
        member = nxt
    return member


async def fetch_member(session: AsyncSession, member_id: int) -> Member | None:
    member = await session.get(Member, member_id)
    return None if member is None else await fetch_surviving_member(session, member_id)


async def fetch_member_by_identity(session: AsyncSession, kind: IdentityKind, value: str) -> Member | None:
    member_id = (
        await session.execute(
            select(MemberIdentity.member_id).where(MemberIdentity.kind == kind.value, MemberIdentity.value == value)
        )
    ).scalar_one_or_none()
    return None if member_id is None else await fetch_surviving_member(session, member_id)


async def fetch_member_by_psid(session: AsyncSession, page_id: str, psid: str) -> Member | None:
    return await fetch_member_by_identity(session, IdentityKind.PSID, psid_identity(page_id, psid))


async def fetch_member_by_code(session: AsyncSession, code: str) -> Member | None:
    member_id = (
        await session.execute(select(Member.id).where(Member.code == code.strip().upper()))
    ).scalar_one_or_none()
    return None if member_id is None else await fetch_surviving_member(session, member_id)


async def _new_member(session: AsyncSession, program: Program, now: datetime, name: str | None = None) -> Member:
    for _ in range(10):
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        if (await session.execute(select(Member.id).where(Member.code == code))).first() is None:
            break
    member = Member(
        code=code,
        name=name,
        tier_key=program.base_tier.key,
        period_tier_key=program.base_tier.key,
        period_start=now,
        created_at=now,
        updated_at=now,
    )
    session.add(member)
    await session.flush()
    return member


async def fetch_or_create_member(
    session: AsyncSession, page_id: str, psid: str, *, name: str | None = None, now: datetime
) -> tuple[Member, bool]:
    """The shopper's member on this Page, made (and linked) on first use; (member, created)."""
    found = await fetch_member_by_psid(session, page_id, psid)
    if found is not None:
        return found, False
    member = await _new_member(session, await fetch_program(session), now, name)
    await _add_identity(session, member, IdentityKind.PSID, psid_identity(page_id, psid), now)
    return member, True


async def _add_identity(session: AsyncSession, member: Member, kind: IdentityKind, value: str, now: datetime) -> None:
    await session.execute(
        dialect_insert(session)(MemberIdentity)
        .values(member_id=member.id, kind=kind.value, value=value, created_at=now)
        .on_conflict_do_nothing(index_elements=["kind", "value"])
    )


async def link_identity(
    session: AsyncSession, member: Member, kind: IdentityKind, value: str, now: datetime
) -> Member | None:
    """Link a phone, email or other id to `member`, unless another member has it: that member then.

    Nothing is merged here: a phone or email typed into a form or a chat proves nothing about who holds
    it, so a taken one becomes a claim waiting for proof (`crm_bridge.contact_claims`).
    """
    owner = await fetch_member_by_identity(session, kind, value)
    if owner is not None and owner.id != member.id:
        return owner
    if owner is None:
        await _add_identity(session, member, kind, value, now)
    if kind is IdentityKind.PHONE:
        member.phone = value
    elif kind is IdentityKind.EMAIL:
        member.email = value
    member.updated_at = now
    session.add(member)
    await session.flush()
    return None


async def lock_member(session: AsyncSession, member: Member) -> Member:
    """`member` again, its row locked until the transaction ends (PostgreSQL; SQLite's writers take turns).

    Whoever spends a member's points locks it first, so two checkouts under two of its ids take turns and
    the second sees the first's spending.
    """
    stmt = select(Member).where(Member.id == member.id).with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one()


async def merge_members(session: AsyncSession, one: Member, other: Member, now: datetime) -> Member:
    """Two members are one shopper: the older keeps everything of both (identities, ledger, referrals)."""
    keep, gone = (one, other) if (one.id or 0) < (other.id or 0) else (other, one)
    voided = await _fetch_self_rewards(session, [keep.id or 0, gone.id or 0])
    await session.execute(update(MemberIdentity).where(MemberIdentity.member_id == gone.id).values(member_id=keep.id))
    # The ledger's rows move with their points untouched: history is kept, only the owner changes.
    await session.execute(update(PointsEntry).where(PointsEntry.member_id == gone.id).values(member_id=keep.id))
    await session.execute(
        update(PointsEntry).where(PointsEntry.source_member_id == gone.id).values(source_member_id=keep.id)
    )
    await session.execute(update(ReferralEdge).where(ReferralEdge.referrer_id == gone.id).values(referrer_id=keep.id))
    await session.execute(update(ContactClaim).where(ContactClaim.member_id == gone.id).values(member_id=keep.id))
    await session.execute(update(ContactClaim).where(ContactClaim.owner_id == gone.id).values(owner_id=keep.id))
    # Tags go to the survivor (one row per tag); the other's figures and segment snapshot rows go: the
    # survivor's are worked out again from the orders of both (crm_bridge.segments).
    kept_tags = select(MemberTag.tag).where(MemberTag.member_id == keep.id)
    await session.execute(
        update(MemberTag)
        .where(MemberTag.member_id == gone.id, MemberTag.tag.not_in(kept_tags))
        .values(member_id=keep.id)  # type: ignore[attr-defined]
    )
    for table in (MemberTag, SegmentMember, MemberFigures):
        await session.execute(delete(table).where(table.member_id == gone.id))  # type: ignore[attr-defined]
    # A claim between the two is answered by this merge; an open one would only wait for a code forever.
    await session.execute(
        delete(ContactClaim).where(
            ContactClaim.member_id == keep.id,
            ContactClaim.owner_id == keep.id,
            ContactClaim.confirmed_at.is_(None),  # type: ignore[union-attr]
        )
    )
    # One of them joined through the other's link: that was no referral. The edge goes (it would read
    # "referred by itself"), and every reward it paid is taken back.
    pair = [keep.id or 0, gone.id or 0]
    await session.execute(
        delete(ReferralEdge).where(ReferralEdge.member_id.in_(pair), ReferralEdge.referrer_id == keep.id)  # type: ignore[attr-defined]
    )
    await _void_rewards(session, voided, gone.id or 0, keep.id or 0, now)
    has_referrer = (await session.execute(select(ReferralEdge.id).where(ReferralEdge.member_id == keep.id))).first()
    if has_referrer is None:
        await session.execute(update(ReferralEdge).where(ReferralEdge.member_id == gone.id).values(member_id=keep.id))
    program = await fetch_program(session)
    if program.rank(program.tier(gone.tier_key)) > program.rank(program.tier(keep.tier_key)):
        keep.tier_key, keep.tier_order_id = gone.tier_key, gone.tier_order_id
    if program.rank(period_tier(program, gone)) > program.rank(period_tier(program, keep)):
        keep.period_tier_key = period_tier(program, gone).key
    keep.period_spend += gone.period_spend
    keep.total_spend += gone.total_spend
    keep.paid_orders += gone.paid_orders
    firsts = [d for d in (keep.first_order_at, gone.first_order_at) if d is not None]
    lasts = [d for d in (keep.last_order_at, gone.last_order_at) if d is not None]
    keep.first_order_at = min(firsts, key=as_utc) if firsts else None
    keep.last_order_at = max(lasts, key=as_utc) if lasts else None
    keep.name = keep.name or gone.name
    keep.phone, keep.email = keep.phone or gone.phone, keep.email or gone.email
    keep.birthday = keep.birthday or gone.birthday
    keep.updated_at = now
    gone.merged_into, gone.updated_at = keep.id, now
    session.add_all([keep, gone])
    await session.flush()
    return keep


async def _fetch_self_rewards(session: AsyncSession, pair: list[int]) -> list[PointsEntry]:
    """Referral rewards the two members (about to be one) earned from each other, before the merge.

    A member who joined through the other's link was no new member: every sign-up award of that join
    (its own welcome points too, and any upline's), and every purchase reward either paid the other.
    """
    self_joined = select(ReferralEdge.member_id).where(
        ReferralEdge.member_id.in_(pair),  # type: ignore[attr-defined]
        ReferralEdge.referrer_id.in_(pair),  # type: ignore[attr-defined]
    )
    signups = (PointsEntry.source_member_id.in_(self_joined)) & PointsEntry.order_id.is_(None)  # type: ignore[union-attr, attr-defined]
    between = PointsEntry.member_id.in_(pair) & PointsEntry.source_member_id.in_(pair) & (PointsEntry.level > 0)  # type: ignore[attr-defined]
    rows = await session.execute(
        select(PointsEntry)
        .where(PointsEntry.kind == "referral", PointsEntry.reverses.is_(None), signups | between)  # type: ignore[union-attr]
        .order_by(PointsEntry.id)
    )
    return list(rows.scalars())


async def _void_rewards(session: AsyncSession, rows: list[PointsEntry], gone: int, keep: int, now: datetime) -> None:
    """Append a row taking back what is left of each reward (the ledger is append-only), keyed `unself:`."""
    for row in rows:
        done = (
            await session.execute(
                select(func.coalesce(func.sum(PointsEntry.points), 0)).where(PointsEntry.reverses == row.id)
            )
        ).scalar_one()
        left = row.points + int(done)
        await session.execute(
            dialect_insert(session)(PointsEntry)
            .values(
                key=f"unself:{row.id}",
                member_id=keep if row.member_id == gone else row.member_id,
                kind="referral",
                points=-left,
                reason=coded_reason(PointsReason.SELF_REFERRAL_REVERSED).english,
                reason_code=PointsReason.SELF_REFERRAL_REVERSED.value,
                order_id=row.order_id,
                source_member_id=keep if row.source_member_id == gone else row.source_member_id,
                level=row.level,
                fixed=row.fixed,
                reverses=row.id,
                available_at=row.available_at,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )


async def search_members(session: AsyncSession, query: str, limit: int = 50) -> list[Member]:
    """Members whose name, phone, email, code or Page-scoped id matches `query` (a part is enough)."""
    like = f"%{query.strip()}%"
    phone = parse_phone(query)
    ids = select(MemberIdentity.member_id).where(
        # A phone matches however it was written: 9123 4567 finds +85291234567.
        or_(MemberIdentity.value.ilike(like), MemberIdentity.value.like(f"%{(phone or '-').lstrip('+')}"))  # type: ignore[attr-defined]
    )
    stmt = (
        select(Member)
        .where(
            Member.merged_into.is_(None),  # type: ignore[union-attr]
            or_(
                Member.name.ilike(like),  # type: ignore[union-attr]
                Member.email.ilike(like),  # type: ignore[union-attr]
                Member.code == query.strip().upper(),
                Member.id.in_(ids),  # type: ignore[union-attr]
            ),
        )
        .order_by(Member.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def fetch_member_orders(session: AsyncSession, member_id: int) -> list[Order]:
    pairs = (
        (
            await session.execute(
                select(MemberIdentity.value).where(
                    MemberIdentity.member_id == member_id, MemberIdentity.kind == IdentityKind.PSID.value
                )
            )
        )
        .scalars()
        .all()
    )
    if not pairs:
        return []
    conditions = [(Order.page_id == p.split(":", 1)[0]) & (Order.psid == p.split(":", 1)[1]) for p in pairs]
    return list((await session.execute(select(Order).where(or_(*conditions)).order_by(Order.id.desc()))).scalars())  # type: ignore[union-attr]


async def fetch_identities(session: AsyncSession, member_id: int) -> list[MemberIdentity]:
    rows = await session.execute(
        select(MemberIdentity).where(MemberIdentity.member_id == member_id).order_by(MemberIdentity.id)
    )
    return list(rows.scalars())


def member_rfm(member: Member, now: datetime, new_days: int = 30, sleeping_days: int = 90) -> Rfm:
    return calculate_rfm(
        as_utc(member.created_at),
        None if member.first_order_at is None else as_utc(member.first_order_at),
        None if member.last_order_at is None else as_utc(member.last_order_at),
        member.paid_orders,
        Decimal(member.total_spend),
        now,
        new_days=new_days,
        sleeping_days=sleeping_days,
    )


async def fetch_all_members(session: AsyncSession) -> list[Member]:
    return list(
        (await session.execute(select(Member).where(Member.merged_into.is_(None)).order_by(Member.id))).scalars()  # type: ignore[union-attr]
    )


def period_tier(program: Program, member: Member) -> Tier:
    """The tier the member's current period began with (their tier, on rows from before it was kept)."""
    return program.tier(member.period_tier_key or member.tier_key)


def member_period_end(program: Program, member: Member) -> date:
    return add_months(as_utc(member.period_start), program.period_months).date()
