"""Coupons and first-N offers in SQL: offers made and stopped, vouchers given in arrival order, codes checked
and reserved at checkout, uses given back when an order is cancelled, expires or comes back.

A thin layer around the pure `carts.coupon_rules`. Fairness is the stock claims' (`carts.stock`): a
keyword comment records a pending `OfferClaim` with its place in the ingest stream, and
`allocate_offer_claims` decides the claims below the stream's watermark in arrival order, under a lock on
the offer's row, so `given` never passes `quantity` with any number of workers and a later comment never
takes an earlier one's voucher. `now` is always the caller's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carts.coupon_rules import (
    COUNTED_USES,
    CodeMode,
    CouponDecision,
    CouponLine,
    CouponRefusal,
    CouponSource,
    CouponSpec,
    CouponTerms,
    CouponUsage,
    Discount,
    DiscountKind,
    OfferClaimStatus,
    OfferSpec,
    OfferStatus,
    UseStatus,
    VoucherNews,
    allocate_vouchers,
    decide_coupon,
    matches_keyword,
    normalize_code,
    personal_code,
)
from carts.coupon_tables import Coupon, CouponCode, CouponOffer, CouponUse, OfferClaim
from carts.order_rules import OrderError, OrderErrorCode, OrderStatus
from carts.order_tables import Order, OrderLine
from carts.sql import dialect_insert
from carts.stock_rules import ClaimStatus
from carts.tables import Campaign, Product, ShopInfo, StockClaim

CODE_TRIES = 5  # a fresh code that another holder drew already (31^6 codes) is drawn again


class OfferError(ValueError):
    """An offer that cannot be made or changed, by field (`{field: English msgid}`); nothing was changed."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class CouponRefused(OrderError):
    """The code typed at checkout does not apply: `decision.refusal` says why; nothing was changed."""

    def __init__(self, decision: CouponDecision) -> None:
        super().__init__(OrderErrorCode.COUPON_REFUSED, f"the code does not apply: {decision.refusal}")
        self.decision = decision


# --- offers -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfferInfo:
    """An offer as the console and the API show it."""

    id: int
    campaign_id: int
    campaign_key: str
    keywords: tuple[str, ...]
    quantity: int
    given: int
    status: str
    discount: Discount
    min_spend: Decimal | None
    valid_until: datetime | None
    created_at: datetime

    @property
    def left(self) -> int:
        return max(self.quantity - self.given, 0) if self.status == OfferStatus.ACTIVE else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "campaign": self.campaign_key,
            "keywords": list(self.keywords),
            "quantity": self.quantity,
            "given": self.given,
            "left": self.left,
            "status": self.status,
            "kind": self.discount.kind.value,
            "value": f"{self.discount.value:f}",
            "min_spend": None if self.min_spend is None else f"{self.min_spend:f}",
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "created_at": self.created_at.isoformat(),
        }


def _terms(coupon: Coupon, holder: tuple[str, str] | None = None, code: str | None = None) -> CouponTerms:
    return CouponTerms(
        code=code or coupon.code or "",
        discount=Discount(DiscountKind(coupon.kind), Decimal(coupon.value)),
        min_spend=None if coupon.min_spend is None else Decimal(coupon.min_spend),
        starts_at=coupon.starts_at,
        ends_at=coupon.ends_at,
        campaign_ids=frozenset(json.loads(coupon.campaign_ids)),
        product_ids=frozenset(json.loads(coupon.product_ids)),
        budget=coupon.budget,
        per_shopper_limit=coupon.per_shopper_limit,
        holder=holder,
        stopped=coupon.stopped_at is not None,
    )


async def create_offer(session: AsyncSession, campaign: Campaign, spec: OfferSpec, now: datetime) -> OfferInfo:
    """A first-N offer on `campaign`, active at once: its coupon (personal codes, valid on the campaign's
    lines, once per shopper) and the offer. Raises `OfferError` on a campaign that has closed."""
    if campaign.ends_at <= now:
        raise OfferError({"campaign": "This campaign has closed: an offer needs an open or coming campaign."})
    assert campaign.id is not None
    title = f"{campaign.key}: {' / '.join(spec.keywords)}"[:200]
    coupon = Coupon(
        title=title,
        kind=spec.discount.kind.value,
        value=spec.discount.value,
        min_spend=spec.min_spend,
        ends_at=spec.valid_until,
        campaign_ids=json.dumps([campaign.id]),
        per_shopper_limit=1,
        source="offer",
        created_at=now,
        updated_at=now,
    )
    session.add(coupon)
    await session.flush()
    assert coupon.id is not None
    offer = CouponOffer(
        campaign_id=campaign.id,
        coupon_id=coupon.id,
        keywords=json.dumps(list(spec.keywords), ensure_ascii=False),
        quantity=spec.quantity,
        created_at=now,
        updated_at=now,
    )
    session.add(offer)
    await session.flush()
    return _offer_info(offer, coupon, campaign.key)


def _offer_info(offer: CouponOffer, coupon: Coupon, campaign_key: str) -> OfferInfo:
    return OfferInfo(
        offer.id or 0,
        offer.campaign_id,
        campaign_key,
        tuple(json.loads(offer.keywords)),
        offer.quantity,
        offer.given,
        offer.status,
        Discount(DiscountKind(coupon.kind), Decimal(coupon.value)),
        None if coupon.min_spend is None else Decimal(coupon.min_spend),
        coupon.ends_at,
        offer.created_at,
    )


async def fetch_offers(
    session: AsyncSession, campaign_id: int | None = None, offer_id: int | None = None
) -> list[OfferInfo]:
    """Offers, the newest first (of one campaign, or one offer)."""
    stmt = (
        select(CouponOffer, Coupon, Campaign.key)
        .join(Coupon, Coupon.id == CouponOffer.coupon_id)
        .join(Campaign, Campaign.id == CouponOffer.campaign_id)
        .order_by(CouponOffer.id.desc())  # type: ignore[union-attr]
    )
    if campaign_id is not None:
        stmt = stmt.where(CouponOffer.campaign_id == campaign_id)
    if offer_id is not None:
        stmt = stmt.where(CouponOffer.id == offer_id)
    return [_offer_info(o, c, key) for o, c, key in (await session.execute(stmt)).all()]


async def fetch_offer(session: AsyncSession, offer_id: int) -> OfferInfo | None:
    found = await fetch_offers(session, offer_id=offer_id)
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class Recipient:
    psid: str
    page_id: str
    code: str
    comment_id: str
    given_at: datetime | None
    use: str | None  # reserved | used | released: what became of it at checkout


async def fetch_recipients(session: AsyncSession, offer_id: int) -> list[Recipient]:
    """Who got the offer's vouchers, in the order they got them, with what became of each."""
    rows = (
        await session.execute(
            select(OfferClaim, CouponCode.code)
            .join(CouponCode, CouponCode.id == OfferClaim.code_id)
            .where(OfferClaim.offer_id == offer_id, OfferClaim.status == OfferClaimStatus.GIVEN)
            .order_by(OfferClaim.arrival, OfferClaim.id)
        )
    ).all()
    code_ids = [claim.code_id for claim, _ in rows]
    uses: dict[int, str] = {}
    if code_ids:
        found = await session.execute(
            select(CouponUse.code_id, CouponUse.status).where(CouponUse.code_id.in_(code_ids)).order_by(CouponUse.id)  # type: ignore[union-attr]
        )
        for code_id, status in found.all():
            if uses.get(code_id) != UseStatus.USED:  # a later release does not hide a use
                uses[code_id] = status
    return [
        Recipient(claim.psid, claim.page_id, code, claim.comment_id, claim.decided_at, uses.get(claim.code_id or 0))
        for claim, code in rows
    ]


async def stop_offer(session: AsyncSession, offer_id: int, now: datetime) -> OfferInfo | None:
    """Stop giving vouchers (those given stay valid); None when there is no such offer. Idempotent."""
    offer = (
        await session.execute(select(CouponOffer).where(CouponOffer.id == offer_id).with_for_update(key_share=True))
    ).scalar_one_or_none()
    if offer is None:
        return None
    if offer.status != OfferStatus.STOPPED:
        offer.status, offer.updated_at = OfferStatus.STOPPED, now
        session.add(offer)
        await session.flush()
    return await fetch_offer(session, offer_id)


# --- keyword comments ---------------------------------------------------------------------------------

ActiveOffer = tuple[int, tuple[str, ...]]  # (offer id, keywords)


async def fetch_active_offers(session: AsyncSession, campaign_ids: Iterable[int]) -> dict[int, list[ActiveOffer]]:
    """The offers of these campaigns, by campaign: what a keyword comment is matched against. A stopped one
    still answers its keyword (politely: all taken) while its campaign is open, never silence."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(CouponOffer.campaign_id, CouponOffer.id, CouponOffer.keywords)
        .where(CouponOffer.campaign_id.in_(ids))
        .order_by(CouponOffer.id)
    )
    found: dict[int, list[ActiveOffer]] = {}
    for campaign_id, offer_id, keywords in rows.all():
        found.setdefault(campaign_id, []).append((offer_id, tuple(json.loads(keywords))))
    return found


def offer_claims(
    offers: Sequence[ActiveOffer], comment_id: str, page_id: str, psid: str, message: str, arrival: str, now: datetime
) -> list[dict[str, Any]]:
    """The pending `offer_claim` rows of a comment that says an offer's keyword (none when it says none)."""
    return [
        {
            "offer_id": offer_id,
            "page_id": page_id,
            "psid": psid,
            "comment_id": comment_id,
            "arrival": arrival,
            "status": OfferClaimStatus.PENDING,
            "created_at": now,
        }
        for offer_id, keywords in offers
        if matches_keyword(keywords, message)
    ]


async def insert_offer_claims(session: AsyncSession, claims: list[dict[str, Any]]) -> None:
    if claims:
        await session.execute(insert(OfferClaim.__table__), claims)


@dataclass(frozen=True, slots=True)
class OfferDecision:
    comment_id: str
    offer_id: int
    status: OfferClaimStatus


async def allocate_offer_claims(session: AsyncSession, watermark: str, now: datetime) -> list[OfferDecision]:
    """Decide every pending offer claim that arrived before `watermark`, oldest first, offer by offer.

    The offer's row is locked first (FOR NO KEY UPDATE: a new claim's foreign key takes KEY SHARE on it and
    must not wait), then its pending claims are read under the lock, so none is decided twice and `given`
    is counted once. A shopper gets at most one voucher per offer."""
    table = OfferClaim.__table__
    offer_ids = sorted(
        (
            await session.execute(
                select(table.c.offer_id)
                .where(table.c.status == OfferClaimStatus.PENDING, table.c.arrival < watermark)
                .distinct()
            )
        ).scalars()
    )
    decisions: list[OfferDecision] = []
    for offer_id in offer_ids:
        offer = (
            await session.execute(select(CouponOffer).where(CouponOffer.id == offer_id).with_for_update(key_share=True))
        ).scalar_one()
        claims = (
            await session.execute(
                select(table.c.id, table.c.psid, table.c.page_id, table.c.comment_id)
                .where(
                    table.c.offer_id == offer_id,
                    table.c.status == OfferClaimStatus.PENDING,
                    table.c.arrival < watermark,
                )
                .order_by(table.c.arrival, table.c.id)
            )
        ).all()
        if not claims:
            continue
        have = set(
            (
                await session.execute(
                    select(table.c.psid).where(table.c.offer_id == offer_id, table.c.status == OfferClaimStatus.GIVEN)
                )
            ).scalars()
        )
        decided = allocate_vouchers(
            offer.quantity - offer.given, claims, have, stopped=offer.status != OfferStatus.ACTIVE
        )
        given = [claim for claim, status in decided if status is OfferClaimStatus.GIVEN]
        code_ids = await _give_codes(session, offer.coupon_id, [(c.page_id, c.psid) for c in given], now)
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(status=bindparam("status"), code_id=bindparam("code_id"), decided_at=now),
            [
                {
                    "_id": claim.id,
                    "status": status.value,
                    "code_id": code_ids.get((claim.page_id, claim.psid)) if status is OfferClaimStatus.GIVEN else None,
                }
                for claim, status in decided
            ],
        )
        if given:
            offer.given += len(given)
            offer.updated_at = now
            session.add(offer)
        decisions += [OfferDecision(claim.comment_id, offer_id, status) for claim, status in decided]
    await session.flush()
    return decisions


async def _give_codes(
    session: AsyncSession, coupon_id: int, holders: list[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], int]:
    """A personal code of the coupon for each holder; holder -> code id."""
    if not holders:
        return {}
    prefix = await _offer_prefix(session, coupon_id)
    rows = [
        {"coupon_id": coupon_id, "code": personal_code(prefix), "page_id": page, "psid": psid, "created_at": now}
        for page, psid in holders
    ]
    await session.execute(insert(CouponCode.__table__), rows)
    found = await session.execute(
        select(CouponCode.page_id, CouponCode.psid, CouponCode.id).where(
            CouponCode.coupon_id == coupon_id, CouponCode.code.in_([r["code"] for r in rows])
        )
    )
    return {(page, psid): code_id for page, psid, code_id in found.all()}


async def _offer_prefix(session: AsyncSession, coupon_id: int) -> str:
    """The vouchers' prefix: the offer's first Latin keyword (`SALE-7K2QXM`), else `LIVE`."""
    keywords = (
        await session.execute(select(CouponOffer.keywords).where(CouponOffer.coupon_id == coupon_id))
    ).scalar_one_or_none()
    for keyword in json.loads(keywords or "[]"):
        stem = normalize_code(keyword)
        if stem.isascii() and any(ch.isalnum() for ch in stem):
            return stem
    return "LIVE"


async def offer_statuses_of_comments(session: AsyncSession, comment_ids: Iterable[str]) -> dict[str, set[str]]:
    """The statuses of each comment's offer claims (comments without any are left out)."""
    ids = sorted(set(comment_ids))
    statuses: dict[str, set[str]] = {}
    if ids:
        rows = await session.execute(
            select(OfferClaim.comment_id, OfferClaim.status).where(OfferClaim.comment_id.in_(ids))
        )
        for comment_id, status in rows.all():
            statuses.setdefault(comment_id, set()).add(status)
    return statuses


async def fetch_voucher_news(session: AsyncSession, comment_ids: Iterable[str]) -> dict[str, VoucherNews]:
    """What each decided keyword comment got (the first offer it claimed); a shopper told `already` gets
    their code again."""
    ids = sorted(set(comment_ids))
    if not ids:
        return {}
    rows = (
        await session.execute(
            select(OfferClaim, Coupon)
            .join(CouponOffer, CouponOffer.id == OfferClaim.offer_id)
            .join(Coupon, Coupon.id == CouponOffer.coupon_id)
            .where(OfferClaim.comment_id.in_(ids), OfferClaim.status != OfferClaimStatus.PENDING)
            .order_by(OfferClaim.id)
        )
    ).all()
    codes: dict[tuple[int, str], str] = {}
    if rows:
        found = await session.execute(
            select(CouponCode.coupon_id, CouponCode.psid, CouponCode.code).where(
                CouponCode.coupon_id.in_({c.id for _, c in rows}), CouponCode.psid.in_({o.psid for o, _ in rows})
            )
        )
        codes = {(coupon_id, psid): code for coupon_id, psid, code in found.all()}
    news: dict[str, VoucherNews] = {}
    # A comment that claimed several offers' vouchers (a stopped one and its successor): the best news.
    rank = {OfferClaimStatus.GIVEN: 0, OfferClaimStatus.ALREADY: 1, OfferClaimStatus.ALL_TAKEN: 2}
    for claim, coupon in sorted(rows, key=lambda row: rank.get(OfferClaimStatus(row[0].status), 3)):
        if claim.comment_id in news:
            continue
        news[claim.comment_id] = VoucherNews(
            claim.status,
            codes.get((coupon.id, claim.psid)),
            Discount(DiscountKind(coupon.kind), Decimal(coupon.value)),
            None if coupon.min_spend is None else Decimal(coupon.min_spend),
            coupon.ends_at,
        )
    return news


# --- checkout -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CouponFound:
    coupon: Coupon
    code_id: int | None
    terms: CouponTerms


async def find_code(session: AsyncSession, text: str, lock: bool = False) -> CouponFound | None:
    """The coupon a typed code is (a personal code, or a coupon's shared code); with `lock`, the coupon's
    row is locked (two orders using its last use queue here)."""
    code = normalize_code(text)
    if not code:
        return None
    personal = (await session.execute(select(CouponCode).where(CouponCode.code == code))).scalar_one_or_none()
    stmt = select(Coupon).where(Coupon.id == personal.coupon_id if personal else Coupon.code == code)
    if lock:
        # Read again under the lock even if this session loaded the row before: a stop or an edit
        # committed while this checkout waited must count.
        stmt = stmt.with_for_update(key_share=True).execution_options(populate_existing=True)
    coupon = (await session.execute(stmt)).scalar_one_or_none()
    if coupon is None:
        return None
    holder = (personal.page_id, personal.psid) if personal else None
    return CouponFound(coupon, personal.id if personal else None, _terms(coupon, holder, code))


async def coupon_usage(session: AsyncSession, coupon_id: int, page_id: str, psid: str) -> CouponUsage:
    rows = await session.execute(
        select(CouponUse.page_id, CouponUse.psid, func.count())
        .where(CouponUse.coupon_id == coupon_id, CouponUse.status.in_(COUNTED_USES))
        .group_by(CouponUse.page_id, CouponUse.psid)
    )
    counts = {(page, who): int(n) for page, who, n in rows.all()}
    return CouponUsage(sum(counts.values()), counts.get((page_id, psid), 0))


async def check_coupon(
    session: AsyncSession,
    text: str,
    page_id: str,
    psid: str,
    lines: Sequence[CouponLine],
    currency: str,
    now: datetime,
    lock: bool = False,
) -> tuple[CouponDecision, CouponFound | None]:
    """Whether the typed code applies to these lines for this shopper now, and what it takes off."""
    found = await find_code(session, text, lock=lock)
    if found is None:
        return CouponDecision(Decimal(0), CouponRefusal.UNKNOWN), None
    usage = await coupon_usage(session, found.coupon.id or 0, page_id, psid)
    return decide_coupon(found.terms, lines, (page_id, psid), now, usage, currency), found


async def fetch_shopper_voucher(session: AsyncSession, page_id: str, psid: str, now: datetime) -> str | None:
    """The shopper's newest personal code that is still valid and unused: applied at checkout by itself."""
    rows = (
        await session.execute(
            select(CouponCode.code, CouponCode.id, Coupon)
            .join(Coupon, Coupon.id == CouponCode.coupon_id)
            .where(CouponCode.page_id == page_id, CouponCode.psid == psid, Coupon.stopped_at.is_(None))  # type: ignore[union-attr]
            .order_by(CouponCode.id.desc())  # type: ignore[union-attr]
        )
    ).all()
    for code, _code_id, coupon in rows:
        if coupon.ends_at is not None and coupon.ends_at <= now:
            continue
        usage = await coupon_usage(session, coupon.id or 0, page_id, psid)
        if coupon.per_shopper_limit is None or usage.by_shopper < coupon.per_shopper_limit:
            return code
    return None


async def held_coupon_lines(session: AsyncSession, page_id: str, psid: str, now: datetime) -> list[CouponLine]:
    """The shopper's held stock as a coupon sees it (product, campaign, total): what checkout would sell."""
    rows = await session.execute(
        select(StockClaim.product_id, StockClaim.campaign_id, StockClaim.qty, Product.price)
        .join(Product, Product.id == StockClaim.product_id)
        .where(
            StockClaim.page_id == page_id,
            StockClaim.psid == psid,
            StockClaim.status == ClaimStatus.HELD,
            StockClaim.expires_at > now,  # type: ignore[operator]
        )
    )
    return [CouponLine(pid, cid, Decimal(price) * qty) for pid, cid, qty, price in rows.all()]


async def apply_coupon(
    session: AsyncSession, text: str, page_id: str, psid: str, lines: Sequence[CouponLine], currency: str, now: datetime
) -> tuple[Decimal, CouponFound]:
    """Check the code under the coupon's lock for an order being placed: (discount, coupon), or raises
    `CouponRefused`. The use is reserved by `reserve_use` in the same transaction, so two orders cannot
    both take a last use."""
    decision, found = await check_coupon(session, text, page_id, psid, lines, currency, now, lock=True)
    if not decision.applies or found is None:
        raise CouponRefused(decision)
    return decision.discount, found


async def reserve_use(
    session: AsyncSession, found: CouponFound, order_id: int, page_id: str, psid: str, amount: Decimal, now: datetime
) -> None:
    """The order's use of the coupon, reserved until it is paid (in the order's transaction)."""
    session.add(
        CouponUse(
            coupon_id=found.coupon.id or 0,
            code_id=found.code_id,
            code=found.terms.code,
            order_id=order_id,
            page_id=page_id,
            psid=psid,
            amount=amount,
            status=UseStatus.RESERVED,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()


async def set_uses_of_order(session: AsyncSession, order_id: int, status: UseStatus, now: datetime) -> None:
    """An order's coupon uses follow it: used when it is paid, released when it is cancelled, expires or
    comes back whole (a released use counts no more: the voucher can be used again)."""
    since = (UseStatus.RESERVED,) if status is UseStatus.USED else COUNTED_USES
    await session.execute(
        update(CouponUse)
        .where(CouponUse.order_id == order_id, CouponUse.status.in_(since))  # type: ignore[attr-defined]
        .values(status=status, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def move_uses(session: AsyncSession, from_order: int, to_order: int, now: datetime) -> None:
    """A merged order's coupon uses go with its lines to the order that took them."""
    await session.execute(
        update(CouponUse)
        .where(CouponUse.order_id == from_order)
        .values(order_id=to_order, updated_at=now)
        .execution_options(synchronize_session=False)
    )


# --- coupons by hand, member codes, figures -----------------------------------------------------------


class CouponError(ValueError):
    """A coupon that cannot be saved, by field (`{field: English msgid}`, its `{placeholders}` in `params`);
    nothing was changed."""

    def __init__(self, errors: dict[str, str], params: dict[str, str] | None = None) -> None:
        self.errors, self.params = errors, params or {}
        super().__init__("; ".join(f"{k}: {v.format(**self.params)}" for k, v in errors.items()))


async def _ids_of(session: AsyncSession, column: Any, key: Any, names: Sequence[str]) -> tuple[list[int], list[str]]:
    """The ids of the rows whose `column` is one of `names` (as written, any case), and the names not found."""
    if not names:
        return [], []
    rows = (await session.execute(select(key, column).where(func.upper(column).in_([n.upper() for n in names])))).all()
    found = {str(name).upper(): row_id for row_id, name in rows}
    return sorted(found[n.upper()] for n in names if n.upper() in found), [n for n in names if n.upper() not in found]


async def _unique_shared_code(session: AsyncSession, code: str, coupon_id: int | None) -> bool:
    """Whether no other coupon's shared code and no personal code is `code`."""
    other = await session.execute(select(Coupon.id).where(Coupon.code == code, Coupon.id != (coupon_id or 0)))
    personal = await session.execute(select(CouponCode.id).where(CouponCode.code == code))
    return other.first() is None and personal.first() is None


async def save_coupon(
    session: AsyncSession,
    spec: CouponSpec,
    now: datetime,
    coupon_id: int | None = None,
    source: CouponSource = CouponSource.MANUAL,
) -> Coupon:
    """Create a coupon (`coupon_id` None) or change one's terms (in the caller's transaction). A shared
    coupon without a code gets a fresh one. Raises `CouponError` by field (an unknown product or campaign, a
    code another coupon has, a shared coupon turned personal once codes were given) having changed nothing;
    LookupError when there is no coupon `coupon_id`."""
    errors: dict[str, str] = {}
    product_ids, unknown_products = await _ids_of(session, Product.code, Product.id, spec.products)
    if unknown_products:
        errors["products"] = "No product has the code {code}."
    campaign_ids, unknown_campaigns = await _ids_of(session, Campaign.key, Campaign.id, spec.campaigns)
    if unknown_campaigns:
        errors["campaigns"] = "No campaign has the key {key}."
    coupon: Coupon | None = None
    if coupon_id is not None:
        coupon = (
            await session.execute(select(Coupon).where(Coupon.id == coupon_id).with_for_update(key_share=True))
        ).scalar_one_or_none()
        if coupon is None:
            raise LookupError(f"no coupon {coupon_id}")
    code: str | None = None
    if spec.mode is CodeMode.SHARED:
        code = spec.code or (coupon.code if coupon is not None and coupon.code else None)
        if code is None:
            for _ in range(CODE_TRIES):
                code = personal_code(spec.title)
                if await _unique_shared_code(session, code, coupon_id):
                    break
        elif not await _unique_shared_code(session, code, coupon_id):
            errors["code"] = "Another coupon has this code."
    elif coupon is not None and coupon.code:
        used = await session.execute(select(CouponUse.id).where(CouponUse.coupon_id == coupon.id).limit(1))
        if used.first() is not None:
            errors["mode"] = "Shoppers used its shared code: it stays a shared code."
    if errors:
        raise CouponError(errors, {"code": ", ".join(unknown_products), "key": ", ".join(unknown_campaigns)})
    if coupon is None:
        coupon = Coupon(
            title=spec.title,
            kind=spec.discount.kind.value,
            value=spec.discount.value,
            source=source.value,
            created_at=now,
            updated_at=now,
        )
    coupon.title = spec.title
    coupon.code = code
    coupon.kind, coupon.value = spec.discount.kind.value, spec.discount.value
    coupon.min_spend = spec.min_spend
    coupon.starts_at, coupon.ends_at = spec.starts_at, spec.ends_at
    coupon.product_ids, coupon.campaign_ids = json.dumps(product_ids), json.dumps(campaign_ids)
    coupon.budget, coupon.per_shopper_limit = spec.budget, spec.per_member_limit
    coupon.updated_at = now
    session.add(coupon)
    await session.flush()
    if spec.per_member_limit is None:
        # The ORM leaves a None out of an INSERT and the column's default (1) fires: "no limit" is written.
        await session.execute(update(Coupon).where(Coupon.id == coupon.id).values(per_shopper_limit=None))
        coupon.per_shopper_limit = None
    return coupon


async def stop_coupon(session: AsyncSession, coupon_id: int, now: datetime) -> Coupon | None:
    """Stop a coupon: no order takes it any more (orders that have it keep it). Idempotent; None: no such."""
    coupon = (
        await session.execute(select(Coupon).where(Coupon.id == coupon_id).with_for_update(key_share=True))
    ).scalar_one_or_none()
    if coupon is not None and coupon.stopped_at is None:
        coupon.stopped_at = coupon.updated_at = now
        session.add(coupon)
        await session.flush()
    return coupon


def _code_prefix(coupon: Coupon) -> str:
    """A member code's prefix: the coupon's shared code or its title's Latin letters, else by its source."""
    stem = re.sub(r"[^A-Z0-9]", "", normalize_code(coupon.title))
    if stem:
        return stem[:12]
    return {"signup": "WELCOME", "journey": "THANKS"}.get(coupon.source, "COUPON")


async def issue_member_code(session: AsyncSession, coupon_id: int, holder: tuple[str, str], now: datetime) -> str:
    """The holder's own code of the coupon, made the first time it is asked for (`holder`: the member's
    (page id, PSID), whose checkout applies it by itself). Idempotent: one code per holder per coupon, even
    when two workers ask at once (the unique holder key decides; the loser reads the winner's code).

    Used by the sign-up coupon and by journeys' send steps. Raises LookupError when there is no coupon."""
    page_id, psid = holder
    stmt = select(CouponCode.code).where(
        CouponCode.coupon_id == coupon_id, CouponCode.page_id == page_id, CouponCode.psid == psid
    )
    existing = (await session.execute(stmt)).scalar_one_or_none()
    if existing is not None:
        return existing
    coupon = await session.get(Coupon, coupon_id)
    if coupon is None:
        raise LookupError(f"no coupon {coupon_id}")
    prefix = _code_prefix(coupon)
    insert_ = dialect_insert(session)
    for _ in range(CODE_TRIES):
        code = personal_code(prefix)
        taken = await session.execute(select(Coupon.id).where(Coupon.code == code))
        if taken.first() is not None:
            continue
        # No conflict target: a clash on the holder (another worker gave one) or on the code (drawn twice)
        # inserts nothing, and the read below tells which.
        await session.execute(
            insert_(CouponCode.__table__)
            .values(coupon_id=coupon_id, code=code, page_id=page_id, psid=psid, created_at=now)
            .on_conflict_do_nothing()
        )
        existing = (await session.execute(stmt)).scalar_one_or_none()
        if existing is not None:
            return existing
    raise RuntimeError("no free code after several draws")


@dataclass(frozen=True, slots=True)
class CouponInfo:
    """A coupon with its figures, as the coupon list and the admin API show it.

    Uses: `reserved` (an unpaid order has it), `redeemed` (paid, kept: a partial return keeps it),
    `returned` (the order came back whole: given back), `cancelled` (cancelled, expired or merged away:
    given back). `cost`: what redeemed uses took off; `sales`: what the orders that redeemed it were paid
    for, less what came back of them."""

    coupon: Coupon
    codes_issued: int
    reserved: int
    redeemed: int
    returned: int
    cancelled: int
    cost: Decimal
    sales: Decimal
    offer_id: int | None = None

    @property
    def mode(self) -> CodeMode:
        return CodeMode.SHARED if self.coupon.code else CodeMode.PERSONAL

    @property
    def discount(self) -> Discount:
        return Discount(DiscountKind(self.coupon.kind), Decimal(self.coupon.value))

    def status(self, now: datetime) -> str:
        c = self.coupon
        if c.stopped_at is not None:
            return "stopped"
        if c.ends_at is not None and _aware(c.ends_at) <= now:
            return "expired"
        if c.starts_at is not None and now < _aware(c.starts_at):
            return "scheduled"
        if c.budget is not None and self.reserved + self.redeemed >= c.budget:
            return "used_up"
        return "active"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        c = self.coupon
        return {
            "id": c.id,
            "title": c.title,
            "mode": self.mode.value,
            "code": c.code,
            "kind": c.kind,
            "value": f"{Decimal(c.value).normalize():f}",
            "min_spend": None if c.min_spend is None else f"{Decimal(c.min_spend).normalize():f}",
            "starts_at": _aware(c.starts_at).isoformat() if c.starts_at else None,
            "ends_at": _aware(c.ends_at).isoformat() if c.ends_at else None,
            "product_ids": json.loads(c.product_ids),
            "campaign_ids": json.loads(c.campaign_ids),
            "budget": c.budget,
            "per_member_limit": c.per_shopper_limit,
            "source": c.source,
            "offer_id": self.offer_id,
            "status": self.status(now),
            "stopped_at": _aware(c.stopped_at).isoformat() if c.stopped_at else None,
            "codes_issued": self.codes_issued,
            "uses": {
                "reserved": self.reserved,
                "redeemed": self.redeemed,
                "returned": self.returned,
                "cancelled": self.cancelled,
            },
            "cost": f"{self.cost.quantize(Decimal('0.01')):f}",
            "sales": f"{self.sales.quantize(Decimal('0.01')):f}",
        }


def _aware(moment: datetime) -> datetime:
    """A time read back from SQLite (naive, UTC) made aware."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def fetch_coupons(session: AsyncSession, coupon_id: int | None = None) -> list[CouponInfo]:
    """Every coupon (or one) with its figures, the newest first: four grouped reads, not one per coupon."""
    stmt = select(Coupon).order_by(Coupon.id.desc())  # type: ignore[union-attr]
    if coupon_id is not None:
        stmt = stmt.where(Coupon.id == coupon_id)
    coupons = list((await session.execute(stmt)).scalars())
    ids = [c.id for c in coupons]
    if not ids:
        return []
    issued = dict(
        (
            await session.execute(
                select(CouponCode.coupon_id, func.count())
                .where(CouponCode.coupon_id.in_(ids))
                .group_by(CouponCode.coupon_id)
            )
        ).all()
    )
    offers = dict(
        (
            await session.execute(select(CouponOffer.coupon_id, CouponOffer.id).where(CouponOffer.coupon_id.in_(ids)))
        ).all()
    )
    uses: dict[int, dict[str, int]] = {}
    cost: dict[int, Decimal] = {}
    sales: dict[int, Decimal] = {}
    rows = await session.execute(
        select(CouponUse.coupon_id, CouponUse.status, CouponUse.amount, Order.id, Order.status, Order.total)
        .join(Order, Order.id == CouponUse.order_id)
        .where(CouponUse.coupon_id.in_(ids))
    )
    used_orders: dict[int, set[int]] = {}
    order_totals: dict[int, Decimal] = {}
    for cid, status, amount, order_id, order_status, total in rows.all():
        if status == UseStatus.RELEASED:
            bucket = "returned" if order_status == OrderStatus.RETURNED else "cancelled"
        else:
            bucket = "redeemed" if status == UseStatus.USED else "reserved"
        counts = uses.setdefault(cid, {})
        counts[bucket] = counts.get(bucket, 0) + 1
        if bucket == "redeemed":
            cost[cid] = cost.get(cid, Decimal(0)) + Decimal(amount)
            used_orders.setdefault(cid, set()).add(order_id)
            order_totals[order_id] = Decimal(total)
    if order_totals:
        back = await session.execute(
            select(OrderLine.order_id, func.sum(OrderLine.returned_qty * OrderLine.unit_price))
            .where(OrderLine.order_id.in_(order_totals), OrderLine.returned_qty > 0)
            .group_by(OrderLine.order_id)
        )
        for order_id, value in back.all():
            order_totals[order_id] = max(order_totals[order_id] - Decimal(value or 0), Decimal(0))
    for cid, orders in used_orders.items():
        sales[cid] = sum((order_totals[o] for o in orders), Decimal(0))
    return [
        CouponInfo(
            c,
            int(issued.get(c.id, 0)),
            uses.get(c.id or 0, {}).get("reserved", 0),
            uses.get(c.id or 0, {}).get("redeemed", 0),
            uses.get(c.id or 0, {}).get("returned", 0),
            uses.get(c.id or 0, {}).get("cancelled", 0),
            cost.get(c.id or 0, Decimal(0)),
            sales.get(c.id or 0, Decimal(0)),
            offers.get(c.id),
        )
        for c in coupons
    ]


# --- the sign-up coupon -------------------------------------------------------------------------------


async def fetch_signup_coupon(session: AsyncSession) -> Coupon | None:
    """The coupon new members get with the welcome, if the shop set one and it still gives (not stopped)."""
    coupon_id = (await session.execute(select(ShopInfo.signup_coupon_id).where(ShopInfo.id == 1))).scalar_one_or_none()
    if coupon_id is None:
        return None
    coupon = await session.get(Coupon, coupon_id)
    return coupon if coupon is not None and coupon.stopped_at is None else None


async def set_signup_coupon(session: AsyncSession, coupon_id: int | None, now: datetime) -> None:
    """Give `coupon_id` to new members from now on (None: no sign-up coupon). Raises `CouponError` on the
    field `signup` for a coupon that does not exist or was stopped, having changed nothing."""
    if coupon_id is not None:
        coupon = await session.get(Coupon, coupon_id)
        if coupon is None:
            raise CouponError({"signup": "No such coupon."})
        if coupon.stopped_at is not None:
            raise CouponError({"signup": "A stopped coupon cannot be given to new members."})
    row = await session.get(ShopInfo, 1)
    if row is None:
        row = ShopInfo(id=1, updated_at=now)
    row.signup_coupon_id, row.updated_at = coupon_id, now
    session.add(row)
    await session.flush()
