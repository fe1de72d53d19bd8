"""Contacts a shopper gave that another member already has: claims, and merging only on proof.

A phone or email typed at checkout or in a chat is anyone's to type, so it never joins two members by
itself (issue 16). It is kept as a claim of the shopper's own member; the two members become one only when
the shopper proves they hold the other membership too: by typing, in their own chat, the one-time code
sent to that member's Messenger chat, or by the merchant confirming the claim in the inbox.

Every function works in the caller's transaction and is given the time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_bridge.members import (
    IdentityKind,
    as_utc,
    fetch_surviving_member,
    link_identity,
    merge_members,
)
from crm_bridge.tables import ContactClaim, Member, MemberIdentity

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=15)
MAX_ATTEMPTS = 5  # wrong codes before the claim's code is void: 5 guesses in a million


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def is_code_text(text: str) -> bool:
    return len(text) == CODE_DIGITS and text.isascii() and text.isdigit()


async def give_contact(
    session: AsyncSession, member: Member, kind: IdentityKind, value: str, now: datetime
) -> ContactClaim | None:
    """Link the contact to `member`; when another member has it, record (and return) the claim instead."""
    owner = await link_identity(session, member, kind, value, now)
    if owner is None:
        return None
    claim = (
        await session.execute(
            select(ContactClaim).where(
                ContactClaim.member_id == member.id, ContactClaim.kind == kind.value, ContactClaim.value == value
            )
        )
    ).scalar_one_or_none()
    if claim is None:
        claim = ContactClaim(
            member_id=member.id or 0,
            owner_id=owner.id or 0,
            kind=kind.value,
            value=value,
            created_at=now,
            updated_at=now,
        )
    claim.owner_id, claim.updated_at = owner.id or 0, now
    session.add(claim)
    await session.flush()
    return claim


async def issue_code(session: AsyncSession, claim: ContactClaim, now: datetime) -> str | None:
    """A new one-time code for `claim`, to send to the owner's chat; None while the last one still holds
    (so a shopper repeating the contact cannot flood the other member's chat)."""
    if _code_holds(claim, now):
        return None
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
    claim.code_hash, claim.code_expires_at, claim.attempts, claim.updated_at = _digest(code), now + CODE_TTL, 0, now
    session.add(claim)
    await session.flush()
    return code


def _code_holds(claim: ContactClaim, now: datetime) -> bool:
    return (
        claim.code_hash is not None
        and claim.code_expires_at is not None
        and as_utc(claim.code_expires_at) > now
        and claim.attempts < MAX_ATTEMPTS
    )


async def fetch_owner_thread(session: AsyncSession, owner_id: int) -> tuple[str, str] | None:
    """(page id, psid) of the owner's newest Messenger chat, where a code proves who reads it; None: none."""
    value = (
        await session.execute(
            select(MemberIdentity.value)
            .where(MemberIdentity.member_id == owner_id, MemberIdentity.kind == IdentityKind.PSID.value)
            .order_by(MemberIdentity.id.desc())  # type: ignore[union-attr]
            .limit(1)
        )
    ).scalar_one_or_none()
    if value is None:
        return None
    page_id, psid = value.split(":", 1)
    return page_id, psid


async def _open_coded_claims(session: AsyncSession, member_id: int, now: datetime) -> list[ContactClaim]:
    rows = await session.execute(
        select(ContactClaim)
        .where(
            ContactClaim.member_id == member_id,
            ContactClaim.confirmed_at.is_(None),  # type: ignore[union-attr]
            ContactClaim.code_hash.is_not(None),  # type: ignore[union-attr]
            ContactClaim.attempts < MAX_ATTEMPTS,
        )
        .order_by(ContactClaim.id)
    )
    return [c for c in rows.scalars() if _code_holds(c, now)]


async def has_open_code(session: AsyncSession, member_id: int, now: datetime) -> bool:
    return bool(await _open_coded_claims(session, member_id, now))


@dataclass(frozen=True, slots=True)
class CodeOutcome:
    member: Member | None  # the merged member when the code was right
    tries_left: int  # after a wrong code: how many more the shopper may type


async def confirm_code(session: AsyncSession, member: Member, code: str, now: datetime) -> CodeOutcome:
    """The shopper typed `code` in their own chat: merge with the claimed contact's member when it is right."""
    claims = await _open_coded_claims(session, member.id or 0, now)
    digest = _digest(code.strip())
    for claim in claims:
        if claim.code_hash is not None and hmac.compare_digest(claim.code_hash, digest):
            return CodeOutcome(await _merge_on(session, claim, "code", now), MAX_ATTEMPTS)
    for claim in claims:  # a wrong code counts against every open one: guessing across claims gains nothing
        claim.attempts += 1
        claim.updated_at = now
        session.add(claim)
    await session.flush()
    return CodeOutcome(None, max((MAX_ATTEMPTS - c.attempts for c in claims), default=0))


async def confirm_claim(session: AsyncSession, claim_id: int, now: datetime) -> Member | None:
    """The merchant confirms a claim (they know the shopper): merge; None when there is no open claim."""
    claim = await session.get(ContactClaim, claim_id)
    if claim is None or claim.confirmed_at is not None:
        return None
    return await _merge_on(session, claim, "merchant", now)


async def _merge_on(session: AsyncSession, claim: ContactClaim, by: str, now: datetime) -> Member:
    owner = await fetch_surviving_member(session, claim.owner_id)
    member = await fetch_surviving_member(session, claim.member_id)
    claim.confirmed_at, claim.confirmed_by, claim.updated_at = now, by, now
    session.add(claim)
    await session.flush()
    return member if owner.id == member.id else await merge_members(session, owner, member, now)


async def fetch_open_claims(session: AsyncSession, member_id: int) -> list[ContactClaim]:
    """Unconfirmed claims made by or against the member: what the merchant may confirm."""
    rows = await session.execute(
        select(ContactClaim)
        .where(
            or_(ContactClaim.member_id == member_id, ContactClaim.owner_id == member_id),
            ContactClaim.confirmed_at.is_(None),  # type: ignore[union-attr]
        )
        .order_by(ContactClaim.id)
    )
    return list(rows.scalars())
