"""Cart edits an agent makes from the buyer panel, on the same stock rules as shoppers' comments.

- An agent adds only the products of the shopper's campaign (`shopper_campaigns`): the ones they commented
  on or hold stock in, else the Page's open ones; another campaign's product is not theirs to buy here.
- Raising a line's quantity extends its hold (`carts.stock.extend_hold`): one hold, its expiry moved, not a
  second hold with another expiry; only while other shoppers' claims wait does it fall back to a claim.
- Adding units (by code, a picked variant) records a pending `StockClaim`
  (source `agent`) that arrives now; the allocator decides it in arrival order like any comment, so an
  agent never takes stock a shopper who commented earlier is owed (invariant 4), and held + sold never
  exceeds stock (docs/architecture.md, invariant 3). It is usually decided within a second; the panel then refreshes.
- Lowering a quantity or removing a line releases held units (`carts.stock.release_claims`); freed
  units go to the waitlist, whose shoppers are told as when a hold expires.
- Sending the cart queues the checkout message (`render_checkout`) through the outbox as the agent.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.comments import tell_about_hold
from bot.runtime.clock import utcnow
from bot.store.tables import CommentLog
from bot.web.numbers import read_int
from carts.stock import release_claims
from carts.stock_rules import ClaimChange, ClaimSource, ClaimStatus, arrival_key
from carts.tables import Campaign, CampaignProduct, Product, StockClaim

MAX_QTY = 99


class CartEditError(ValueError):
    """An edit that cannot be made as asked; nothing was changed (shown to the agent, in their language:
    `msgid` is the catalog's English with `{names}` filled from `params`, bot.replies.i18n)."""

    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(msgid.format(**params) if params else msgid)
        self.msgid, self.params = msgid, params


@dataclass(frozen=True)
class ProductChoice:
    product: Product
    campaign: Campaign


def agent_arrival(redis_time_ms: int) -> str:
    """An agent's claim arrives now, in the stream's clock (Redis TIME), after everything already received."""
    return arrival_key(f"{redis_time_ms}-0", 999_999)


def check_qty(raw: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    try:
        return read_int(raw, low, MAX_QTY)
    except ValueError:
        raise CartEditError("Quantity: a whole number from {low} to {high}.", low=low, high=MAX_QTY) from None


def check_variant(product: Product, chosen: dict[str, str]) -> str:
    """The canonical variant JSON ("" for none); every option the product has must be chosen, validly."""
    options: dict[str, list[str]] = json.loads(product.variants or "{}")
    chosen = {k: v for k, v in chosen.items() if k in options}
    missing = [name for name in options if not chosen.get(name)]
    if missing:
        raise CartEditError("{code}: choose the {options}.", code=product.code, options=", ".join(missing))
    for name, value in chosen.items():
        if value not in options[name]:
            raise CartEditError(
                "{code}: “{value}” is not a {option} of this product.", code=product.code, value=value, option=name
            )
    return json.dumps(chosen, sort_keys=True, ensure_ascii=False) if chosen else ""


async def shopper_campaigns(session: AsyncSession, page_id: str, psid: str, now: datetime) -> list[int]:
    """The campaigns an agent may add to this shopper's cart from: those whose post or live they commented
    on or that hold their stock; for a shopper of none (they only wrote), the Page's open campaigns."""
    commented = select(CommentLog.post_id).where(CommentLog.page_id == page_id, CommentLog.author_id == psid)
    claimed = select(StockClaim.campaign_id).where(StockClaim.page_id == page_id, StockClaim.psid == psid)
    theirs = list(
        (
            await session.execute(
                select(Campaign.id)
                .where(Campaign.page_id == page_id, or_(Campaign.post_id.in_(commented), Campaign.id.in_(claimed)))  # type: ignore[union-attr]
                .order_by(Campaign.id)
            )
        ).scalars()
    )
    if theirs:
        return [int(i) for i in theirs]
    open_now = await session.execute(
        select(Campaign.id)
        .where(Campaign.page_id == page_id, Campaign.starts_at <= now, Campaign.ends_at > now)
        .order_by(Campaign.id)
    )
    return [int(i) for i in open_now.scalars()]


async def find_product(
    session: AsyncSession, page_id: str, code: str, campaign_ids: list[int] | None = None
) -> ProductChoice:
    """The product a code names on this Page: a campaign's order code or the product's own code, among
    `campaign_ids` when given (the shopper's campaigns).

    The campaign is the open one selling it, else the latest that did (its hold time applies).
    """
    code = code.strip()
    if not code:
        raise CartEditError("Type a product code, like A.")
    stmt = (
        select(Product, Campaign, CampaignProduct.order_code)
        .join(CampaignProduct, CampaignProduct.product_id == Product.id)
        .join(Campaign, Campaign.id == CampaignProduct.campaign_id)
        .where(Campaign.page_id == page_id, Product.active.is_(True))
        .order_by(Campaign.ends_at.desc())
    )
    if campaign_ids is not None:
        stmt = stmt.where(Campaign.id.in_(campaign_ids))  # type: ignore[union-attr]
    rows = (await session.execute(stmt)).all()
    wanted = code.casefold()
    matches = [(p, c) for p, c, order_code in rows if wanted in (order_code.casefold(), p.code.casefold())]
    if not matches:
        if campaign_ids is not None:
            raise CartEditError("{code} is not on sale in this shopper's campaign.", code=code)
        raise CartEditError("{code} is not a product of any campaign on this Page.", code=code)
    now = utcnow()
    open_now = [(p, c) for p, c in matches if c.starts_at <= now < c.ends_at]
    product, campaign = (open_now or matches)[0]
    return ProductChoice(product, campaign)


async def add_units(
    session: AsyncSession,
    *,
    page_id: str,
    psid: str,
    choice: ProductChoice,
    variant: str,
    qty: int,
    arrival: str,
    comment_id: str | None = None,
) -> StockClaim:
    """Record a pending claim for the allocator (see the module docstring); the claim."""
    now = utcnow()
    key = f"{comment_id}:{choice.product.id}:{variant}" if comment_id else f"agent:{uuid.uuid4().hex}"
    if comment_id is not None:
        exists = (await session.execute(select(StockClaim.id).where(StockClaim.key == key))).first()
        if exists:
            raise CartEditError("This choice was already made (by the shopper or another agent).")
    claim = StockClaim(
        key=key,
        campaign_id=choice.campaign.id,  # type: ignore[arg-type]
        product_id=choice.product.id,  # type: ignore[arg-type]
        page_id=page_id,
        psid=psid,
        comment_id=comment_id or key,
        variant=variant,
        qty=qty,
        arrival=arrival,
        source=ClaimSource.AGENT,
        hold_minutes=choice.campaign.hold_minutes,
        created_at=now,
    )
    session.add(claim)
    await session.flush()
    return claim


async def held_claims(
    session: AsyncSession, page_id: str, psid: str, product_id: int, variant: str
) -> list[StockClaim]:
    rows = await session.execute(
        select(StockClaim).where(
            StockClaim.page_id == page_id,
            StockClaim.psid == psid,
            StockClaim.product_id == product_id,
            StockClaim.variant == variant,
            StockClaim.status == ClaimStatus.HELD,
        )
    )
    return list(rows.scalars())


async def release_units(session: AsyncSession, claims: list[StockClaim], qty: int | None) -> int:
    """Release units of a line (all when `qty` is None); waitlisted shoppers who get them are told.

    Returns how many messages were queued (the caller wakes the outbox).
    """
    now = utcnow()
    decisions = await release_claims(session, claims, now, qty=qty)
    told = 0
    for decision in decisions:
        if decision.status == ClaimChange.PROMOTED:
            told += await tell_about_hold(session, decision, now)
    return told
