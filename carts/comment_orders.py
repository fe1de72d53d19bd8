"""Selling through comments, decided: what an order comment asks for, what it claims, and its outcome.

Pure: no I/O. `carts.comment_order_repository` loads a campaign (`CampaignInfo`, with the parser of its
codes) and the units a shopper already claimed; these functions plan a new comment (`plan_new_comment`),
the difference an edit makes (`plan_edit`) and a comment's outcome once the allocator decided its claims
(`settled_outcome`). The bot records the outcomes in its comment log and answers the shopper.

The outcomes are the strings stored in `comment_log.outcome` and in the items of its `detail` (members
compare equal to them), so the database does not change with them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from carts.stock_rules import LIVE_STATUSES, ClaimSource, ClaimStatus
from parsers.order_comment import OrderItem, OrderParser, ParseNote, ParseNoteCode


class ItemOutcome(StrEnum):
    """What became of one item of an order comment (`comment_log.detail`'s items)."""

    CLAIMED = "claimed"  # stock requested; the allocator says held or waitlisted
    NEEDS_VARIANT = "needs_variant"  # a size or colour is missing: the shopper picks it in the chat
    OVER_LIMIT = "over_limit"  # units beyond the campaign's per-shopper limit
    UNKNOWN_CODE = "unknown_code"  # a code that is not on sale in this post
    AMBIGUOUS = "ambiguous"  # `+1` without a code, under a post that sells several
    # A name or nickname of several products (`玫瑰+1`): the shopper picks one of `candidates` in the chat.
    AMBIGUOUS_PRODUCT = "ambiguous_product"
    UNREADABLE_QUANTITY = "unreadable_quantity"  # `A幾件`: the shopper picks how many in the chat
    # `+1` without a code while the live's pointer moved within the viewers' delay: the shopper is asked
    # which of the products on screen they meant (`candidates`), and their answer orders it.
    CHOOSE_PRODUCT = "choose_product"


class CommentOutcome(StrEnum):
    """What became of a comment (`comment_log.outcome`), invariant 5: every comment ends in one."""

    RECEIVED = "received"  # logged, not decided yet: no campaign's handler took it (yet)
    IGNORED = "ignored"  # the Page's own comment, or one without an author: never an order
    # Still `received` after a while, and no campaign sells on its post: final (the detail says why).
    NO_CAMPAIGN = "no_campaign"
    NOT_AN_ORDER = "not_an_order"  # under a campaign, but no item in it
    PENDING = "pending"  # its claims wait for the allocator
    ADDED = "added"  # decided: something held
    WAITLISTED = "waitlisted"  # decided: nothing held, all on the waitlist
    CAMPAIGN_CLOSED = "campaign_closed"
    OFFER = "offer"  # decided: it said a first-N offer's keyword and claimed no stock (carts.coupons)
    # A comment that claims nothing takes the outcome of its first item.
    NEEDS_VARIANT = ItemOutcome.NEEDS_VARIANT.value
    OVER_LIMIT = ItemOutcome.OVER_LIMIT.value
    UNKNOWN_CODE = ItemOutcome.UNKNOWN_CODE.value
    AMBIGUOUS = ItemOutcome.AMBIGUOUS.value
    AMBIGUOUS_PRODUCT = ItemOutcome.AMBIGUOUS_PRODUCT.value
    UNREADABLE_QUANTITY = ItemOutcome.UNREADABLE_QUANTITY.value
    CHOOSE_PRODUCT = ItemOutcome.CHOOSE_PRODUCT.value
    # The shopper answered which product they meant, in the chat: its claims are decided there.
    PRODUCT_CHOSEN = "product_chosen"
    # An edited or removed comment.
    EDITED = "edited"
    UNCHANGED = "unchanged"
    RELEASED = "released"
    NOTHING_TO_RELEASE = "nothing_to_release"
    # An order comment of a buyer the shop blocked: nothing claimed, a polite answer (hold_back).
    BLOCKED = "blocked"


@dataclass(frozen=True)
class CampaignProductInfo:
    product_id: int
    order_code: str
    name: str
    variants: Mapping[str, tuple[str, ...]]
    keywords: tuple[str, ...] = ()  # name and nicknames that order it too (parsers.order_comment)


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign loaded once, with the parser built from its codes."""

    id: int
    key: str
    starts_at: datetime
    ends_at: datetime
    per_shopper_limit: int | None
    hold_minutes: int
    products: Mapping[str, CampaignProductInfo]  # by order code as configured
    parser: OrderParser
    closed_reply: str | None = None

    def is_open(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class OrderComment:
    """What the domain needs of a shopper's comment."""

    comment_id: str
    page_id: str
    psid: str  # the author's Page-scoped id
    message: str


Used = dict[tuple[int, str, int], int]  # (campaign id, psid, product id) -> units claimed so far


@dataclass(frozen=True)
class CommentPlan:
    """What a new comment does: its outcome, the trail's detail, and the stock claims to insert."""

    outcome: CommentOutcome
    detail: dict[str, Any]
    claims: list[dict[str, Any]]

    @property
    def answer_now(self) -> bool:
        """Decided without the allocator, and worth a private reply."""
        return self.outcome not in (CommentOutcome.PENDING, CommentOutcome.NOT_AN_ORDER)


def variant_key(variant: Mapping[str, str]) -> str:
    """The claim's `variant` column: canonical JSON of the chosen options, "" for none."""
    return json.dumps(variant, sort_keys=True, ensure_ascii=False) if variant else ""


def plan_new_comment(
    comment: OrderComment,
    campaign: CampaignInfo,
    arrival: str,
    now: datetime,
    used: Used,
    on_screen: Sequence[str] = (),
) -> CommentPlan:
    """Parse a new comment against its campaign and decide each item's outcome; updates `used`.

    `used` holds the units each shopper already claimed (per-shopper limit); claims planned here are
    added to it, so several comments of one shopper in one batch count against the limit in order.
    `on_screen`: the live's products the viewer may have seen when commenting, oldest first
    (`carts.pointer_rules.on_screen`): a quantity without a code orders the one, or asks which of several.
    """
    if not campaign.is_open(now):
        return CommentPlan(CommentOutcome.CAMPAIGN_CLOSED, {"items": [], "closed_reply": campaign.closed_reply}, [])
    screen = [code for code in on_screen if code in campaign.products]
    parsed = campaign.parser.parse(comment.message, now_selling=screen[-1] if screen else None)
    items: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    for item in parsed.items:
        items += _plan_item(comment, campaign, item, arrival, now, used, claims)
    if parsed.pointed and len(screen) == 1:
        for item in parsed.pointed:
            items += [{**e, "pointed": True} for e in _plan_item(comment, campaign, item, arrival, now, used, claims)]
    elif parsed.pointed:
        candidates = [{"code": code, "name": campaign.products[code].name} for code in screen]
        qty = sum(item.qty for item in parsed.pointed)
        items.append({"qty": qty, "outcome": ItemOutcome.CHOOSE_PRODUCT, "candidates": candidates})
    items += [{"code": code, "outcome": ItemOutcome.UNKNOWN_CODE} for code in parsed.unknown]
    items += [{"qty": qty, "outcome": ItemOutcome.AMBIGUOUS} for qty in parsed.ambiguous]
    items += _asked_items(campaign, parsed.notes)
    return CommentPlan(_new_comment_outcome(items, claims), {"items": items}, claims)


def _asked_items(campaign: CampaignInfo, notes: Iterable[ParseNote]) -> list[dict[str, Any]]:
    """Orders the parser would not guess (issue 20): the trail's entries that ask the shopper in the chat.

    `ambiguous_product` keeps the products it could be (`candidates`, each with its id and name) and the
    quantity; `unreadable_quantity` names its product. A removal of an ambiguous name has no quantity
    and is only explained: taking the wrong product off a cart is worse than asking again.
    """
    items: list[dict[str, Any]] = []
    for note in notes:
        if note.code is ParseNoteCode.AMBIGUOUS_PRODUCT:
            choices = [
                {"code": c, "product_id": campaign.products[c].product_id, "name": campaign.products[c].name}
                for c in note.candidates
                if c in campaign.products
            ]
            items.append(
                {
                    "code": note.fragment,
                    "qty": note.qty,
                    "outcome": ItemOutcome.AMBIGUOUS_PRODUCT,
                    "candidates": choices,
                }
            )
        elif note.code is ParseNoteCode.UNREADABLE_QUANTITY and note.product in campaign.products:
            product = campaign.products[note.product]
            items.append(
                {
                    "code": note.product,
                    "qty": None,
                    "product_id": product.product_id,
                    "name": product.name,
                    "outcome": ItemOutcome.UNREADABLE_QUANTITY,
                    "words": note.fragment,
                }
            )
    return items


def plan_product_choice(
    comment: OrderComment, campaign: CampaignInfo, code: str, arrival: str, now: datetime, used: Used
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The shopper answered which product on screen their comment meant: its items for `code` (the comment
    read again with `code` on screen, so its size words are that product's) and their claims, in line from
    the comment's own arrival and decided in the chat (source messenger). Updates `used`."""
    claims: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    if not campaign.is_open(now) or code not in campaign.products:
        return entries, claims
    for item in campaign.parser.parse(comment.message, now_selling=code).pointed:
        entries += [
            {**e, "pointed": True}
            for e in _plan_item(comment, campaign, item, arrival, now, used, claims, ClaimSource.MESSENGER)
        ]
    return entries, claims


def _plan_item(
    comment: OrderComment,
    campaign: CampaignInfo,
    item: OrderItem,
    arrival: str,
    now: datetime,
    used: Used,
    claims: list[dict[str, Any]],
    source: ClaimSource = ClaimSource.COMMENT,
) -> list[dict[str, Any]]:
    """The trail's entries for one ordered item (none, one or two); its claim, if any, is added to `claims`."""
    product = campaign.products[item.code]
    variant = dict(item.variant) if item.variant else {}
    record = {
        "code": item.code,
        "qty": item.qty,
        "variant": variant or None,
        "product_id": product.product_id,
        "name": product.name,
    }
    missing = [name for name in product.variants if name not in variant]
    if missing:
        values = {m: list(product.variants[m]) for m in missing}
        return [{**record, "outcome": ItemOutcome.NEEDS_VARIANT, "missing": missing, "values": values}]
    entries: list[dict[str, Any]] = []
    qty = item.qty
    mine = (campaign.id, comment.psid, product.product_id)
    if campaign.per_shopper_limit is not None:
        allowed = max(campaign.per_shopper_limit - used.get(mine, 0), 0)
        if allowed < qty:
            over = {**record, "qty": qty - allowed, "outcome": ItemOutcome.OVER_LIMIT}
            entries.append({**over, "limit": campaign.per_shopper_limit})
            qty = allowed
    if qty == 0:
        return entries
    used[mine] = used.get(mine, 0) + qty
    claim = _new_claim(comment, campaign, product.product_id, variant_key(variant), qty, arrival, now)
    claims.append({**claim, "source": source})
    entries.append({**record, "qty": qty, "outcome": ItemOutcome.CLAIMED})
    return entries


def _new_claim(
    comment: OrderComment,
    campaign: CampaignInfo,
    product_id: int,
    variant: str,
    qty: int,
    arrival: str,
    now: datetime,
    edit: str | None = None,
) -> dict[str, Any]:
    """The `stock_claim` row of a comment's item, pending until the allocator decides it; `edit` tells the
    claims of one edit of the comment from another's."""
    key = f"{comment.comment_id}:{product_id}:{variant}" + (f":edit:{edit}" if edit is not None else "")
    return {
        "key": key,
        "campaign_id": campaign.id,
        "product_id": product_id,
        "page_id": comment.page_id,
        "psid": comment.psid,
        "comment_id": comment.comment_id,
        "variant": variant,
        "qty": qty,
        "arrival": arrival,
        "status": ClaimStatus.PENDING,
        "source": ClaimSource.COMMENT,
        "hold_minutes": campaign.hold_minutes,
        "created_at": now,
    }


def _new_comment_outcome(items: list[dict[str, Any]], claims: list[dict[str, Any]]) -> CommentOutcome:
    if not items:
        return CommentOutcome.NOT_AN_ORDER
    if claims:
        return CommentOutcome.PENDING  # until the allocator decides
    return CommentOutcome(items[0]["outcome"])


ClaimLine = tuple[int, str]  # (product id, variant key): what one claim is for


def plan_edit(
    campaign: CampaignInfo, message: str, claims: Iterable[Any], now: datetime, now_selling: str | None = None
) -> dict[ClaimLine, int]:
    """The units an edited comment asks for beyond (> 0) or short of (< 0) what its claims still hold, per line.

    `claims`: the comment's claims (objects or rows with product_id, variant, qty, status). A closed
    campaign's comment asks for nothing any more, and an item still missing a size or colour claims
    nothing. Lines that do not change are left out; the lines come sorted. `now_selling`: the product a
    quantity without a code ordered (the one on screen when the comment was made, or the one the shopper
    chose): an edited `+1` to `+2` orders one more of it rather than dropping it.
    """
    current: dict[ClaimLine, int] = {}
    for claim in claims:
        if claim.status in LIVE_STATUSES:
            current[(claim.product_id, claim.variant)] = current.get((claim.product_id, claim.variant), 0) + claim.qty
    wanted: dict[ClaimLine, int] = {}
    pointer = now_selling if now_selling in campaign.products else None
    parsed = campaign.parser.parse(message, now_selling=pointer) if campaign.is_open(now) else None
    for item in (*parsed.items, *parsed.pointed) if parsed else ():
        product = campaign.products[item.code]
        variant = dict(item.variant) if item.variant else {}
        if any(name not in variant for name in product.variants):
            continue  # still needs a choice: nothing to claim from the edit
        key = (product.product_id, variant_key(variant))
        wanted[key] = wanted.get(key, 0) + item.qty
    deltas = {key: wanted.get(key, 0) - current.get(key, 0) for key in sorted(set(current) | set(wanted))}
    return {key: delta for key, delta in deltas.items() if delta != 0}


def edit_claim(
    comment: OrderComment, campaign: CampaignInfo, line: ClaimLine, qty: int, arrival: str, edit: str, now: datetime
) -> dict[str, Any]:
    """The `stock_claim` row for more units asked by an edit, in line from the edit's arrival (an edit cannot
    jump the queue); `edit` tells one edit of the comment from another."""
    product_id, variant = line
    return _new_claim(comment, campaign, product_id, variant, qty, arrival, now, edit)


def hold_back(plan: CommentPlan) -> CommentPlan:
    """A blocked buyer's comment: an order claims nothing and is answered politely (asked to write to the
    shop); a comment that orders nothing, or one after the sale closed, stays as planned."""
    if plan.outcome in (CommentOutcome.NOT_AN_ORDER, CommentOutcome.CAMPAIGN_CLOSED):
        return plan
    return CommentPlan(CommentOutcome.BLOCKED, {"items": [], "held_back": True}, [])


def settled_outcome(statuses: Collection[str]) -> CommentOutcome | None:
    """A comment's outcome from its claims' statuses once none is pending: added when something is held,
    else waitlisted; None while the allocator still has to decide some."""
    if ClaimStatus.PENDING in statuses:
        return None
    return CommentOutcome.ADDED if ClaimStatus.HELD in statuses else CommentOutcome.WAITLISTED
