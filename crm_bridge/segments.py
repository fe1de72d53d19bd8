"""Segments and tags in SQL: members' figures and scores, tags, saved segments compiled to one query each,
and the membership snapshot that tells who entered a segment.

Every function works in the caller's transaction and takes `now`. The arithmetic is
`crm_bridge.segment_rules`'s; here are the queries:

- `refresh_figures` (daily, everyone): one INSERT ... SELECT of the raw figures from the orders, the cuts
  and lapse threshold measured on them, then one UPDATE scoring everyone. `refresh_member_figures` (on each
  paid order, one member) scores against the stored cuts.
- Counted orders: paid and not returned whole (paid, packed, shipped, delivered, partly returned); money is
  the order's total less what partial returns gave back (`returned` events' value scaled to what was paid,
  as the points ledger does). An order is a member's through their `psid` identities (`page id:psid`).
- `compile_definition` turns a `SegmentDefinition` into one SQLAlchemy condition on `crm_member` joined to
  `crm_member_figures`: counts, previews and `members_in_segment` are one query each, on SQLite and PostgreSQL.
- Entering: `refresh_segment` compares the query's answer with `crm_segment_member` (who was in at the last
  evaluation): new rows are members who entered (their `entered_at` is now), gone rows left. The daily
  refresh runs it for every segment, after the figures, and applies each segment's tag rule to who entered.
  Journeys read `entered_at` (entered since a time) or call `refresh_segment` themselves.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    column,
    delete,
    exists,
    extract,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    table,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from carts.order_tables import Order, OrderEvent, OrderLine
from carts.sql import dialect_insert
from carts.tables import Campaign, Product, ShopInfo, StockClaim
from crm_bridge.members import as_utc
from crm_bridge.segment_rules import (
    NES_NEW_DAYS,
    SCHEMA_VERSION,
    Condition,
    Field,
    Lapse,
    LapseSource,
    Napl,
    Nes,
    SegmentDefinition,
    SegmentError,
    lapse_threshold,
    parse_segment_definition,
    parse_segment_name,
    parse_tag,
    quantile_cuts,
    repurchase_gaps,
)
from crm_bridge.segment_tables import MemberFigures, MemberTag, RfmCuts, SavedSegment, SegmentMember
from crm_bridge.tables import Member, MemberIdentity

COUNTED_STATUSES = ("paid", "packed", "shipped", "delivered", "partly_returned")
PREVIEW_SIZE = 20
# The inbox's conversations (bot.store.tables.Conversation), named here rather than imported so the layers
# hold: read only, for the channel condition (a member who wrote to the Page on Messenger or Instagram).
_conversation = table("conversation", column("page_id"), column("psid"), column("channel"))


def _identity_of(page_id: Any, psid: Any) -> ColumnElement[bool]:
    return and_(MemberIdentity.kind == "psid", MemberIdentity.value == page_id + literal(":") + psid)


def _counted() -> ColumnElement[bool]:
    return and_(Order.status.in_(COUNTED_STATUSES), Order.paid_at.is_not(None))  # type: ignore[union-attr,attr-defined]


def _order_money() -> Any:
    """An order's money kept: its total less partial returns scaled to what was paid."""
    returned = (
        select(func.coalesce(func.sum(OrderEvent.amount), 0))
        .where(OrderEvent.order_id == Order.id, OrderEvent.kind == "returned")
        .scalar_subquery()
    )
    scaled = case((Order.subtotal > 0, returned * Order.total / Order.subtotal), else_=0)
    return Order.total - scaled


# --- figures ------------------------------------------------------------------------------------------


async def fetch_cuts(session: AsyncSession) -> RfmCuts:
    row = await session.get(RfmCuts, 1)
    return row if row is not None else RfmCuts()


async def lock_cuts(session: AsyncSession) -> RfmCuts:
    """The cuts row, made if missing and locked till the transaction ends: one refresh at a time, and two
    workers making it at once do not collide."""
    await session.execute(dialect_insert(session)(RfmCuts).values(id=1).on_conflict_do_nothing())
    return (await session.execute(select(RfmCuts).where(RfmCuts.id == 1).with_for_update())).scalar_one()


def _lapse(row: RfmCuts) -> Lapse:
    return Lapse(row.lapse_days, LapseSource(row.lapse_source), row.median_gap_days)


def _figures_select(member_id: int | None, pairs: Sequence[tuple[str, str]] = ()) -> Any:
    """Members' raw figures (one member's, with their `pairs` of Page and Page-scoped id)."""
    orders = (
        select(
            MemberIdentity.member_id.label("member_id"),
            func.count(Order.id).label("n"),
            func.sum(_order_money()).label("spend"),
            func.min(Order.paid_at).label("first"),
            func.max(Order.paid_at).label("last"),
        )
        .select_from(Order)
        .join(MemberIdentity, _identity_of(Order.page_id, Order.psid))
        .where(_counted())
        .group_by(MemberIdentity.member_id)
    )
    if member_id is not None:
        # By the orders' (page, psid) index: the identity join alone would read every order.
        mine = [and_(Order.page_id == page, Order.psid == psid) for page, psid in pairs]
        orders = orders.where(MemberIdentity.member_id == member_id, or_(false(), *mine))
    sub = orders.subquery()
    stmt = (
        select(
            Member.id,
            func.coalesce(sub.c.n, 0),
            func.round(func.coalesce(sub.c.spend, 0), 2),
            sub.c.first,
            sub.c.last,
        )
        .select_from(Member)
        .outerjoin(sub, sub.c.member_id == Member.id)
        .where(Member.merged_into.is_(None))  # type: ignore[union-attr]
    )
    return stmt if member_id is None else stmt.where(Member.id == member_id)


_FIGURE_COLUMNS = ("member_id", "order_count", "total_spend", "first_order_at", "last_order_at")


def _score_expr(value: Any, cuts: Sequence[Any] | None, *, has_orders: Any) -> Any:
    if cuts is None:
        return case((has_orders, 3), else_=None)
    total: Any = literal(1)
    for cut in cuts:
        total = total + case((value > cut, 1), else_=0)
    return case((has_orders, total), else_=None)


def _states(now: datetime, lapse: Lapse) -> dict[str, Any]:
    """The UPDATE's scores-free columns: NES and NAPL as SQL over the row's figures at `now`."""
    f = MemberFigures
    lapsed_before = now - timedelta(days=lapse.days)
    cycle_before = now - timedelta(days=lapse.cycle_days)
    new_since = now - timedelta(days=NES_NEW_DAYS)
    joined = select(Member.created_at).where(Member.id == f.member_id).scalar_subquery()
    nes = case(
        (func.coalesce(f.first_order_at, joined) > new_since, Nes.NEW.value),
        (or_(f.last_order_at.is_(None), f.last_order_at <= lapsed_before), Nes.SLEEPING.value),  # type: ignore[union-attr,operator]
        else_=Nes.EXISTING.value,
    )
    napl = case(
        (f.order_count == 0, None),
        (f.last_order_at <= lapsed_before, Napl.LAPSED.value),  # type: ignore[operator]
        (f.last_order_at <= cycle_before, Napl.PASSIVE.value),  # type: ignore[operator]
        (f.order_count == 1, Napl.NEW.value),
        else_=Napl.ACTIVE.value,
    )
    return {"nes": nes, "napl": napl}


def _recency_cuts_as_times(cuts: Sequence[float] | None, now: datetime) -> list[datetime] | None:
    """Recency cuts are on minus whole days since; "beats -k" is "fewer than k days ago": after now - k days."""
    return None if cuts is None else [now - timedelta(days=-cut) for cut in cuts]


def _money_cuts(text: str | None) -> list[Decimal] | None:
    return None if text is None else [Decimal(cut) for cut in json.loads(text)]


async def _score(session: AsyncSession, row: RfmCuts, now: datetime, member_id: int | None) -> None:
    f = MemberFigures
    has = f.order_count > 0
    decode = lambda text: None if text is None else json.loads(text)  # noqa: E731
    values = {
        "recency_score": _score_expr(f.last_order_at, _recency_cuts_as_times(decode(row.recency), now), has_orders=has),
        "frequency_score": _score_expr(f.order_count, decode(row.frequency), has_orders=has),
        "monetary_score": _score_expr(f.total_spend, _money_cuts(row.monetary), has_orders=has),
        **_states(now, _lapse(row)),
        "computed_at": now,
    }
    stmt = update(MemberFigures).values(**values)
    if member_id is not None:
        stmt = stmt.where(MemberFigures.member_id == member_id)
    await session.execute(stmt)


async def _insert_figures(session: AsyncSession, now: datetime, member_id: int | None) -> None:
    pairs: list[tuple[str, str]] = []
    if member_id is not None:
        values = await session.execute(
            select(MemberIdentity.value).where(MemberIdentity.member_id == member_id, MemberIdentity.kind == "psid")
        )
        pairs = [tuple(value.split(":", 1)) for value in values.scalars()]  # type: ignore[misc]
    query = _figures_select(member_id, pairs).add_columns(literal(Nes.NEW.value), literal(now))
    target = [*_FIGURE_COLUMNS, "nes", "computed_at"]
    await session.execute(insert(MemberFigures).from_select(target, query))


async def refresh_figures(session: AsyncSession, now: datetime, local_day: str | None = None) -> RfmCuts:
    """Everyone's figures and scores from the orders as they are now; the cuts and lapse measured."""
    await session.execute(delete(MemberFigures))
    await _insert_figures(session, now, None)
    f = MemberFigures
    customers = (
        await session.execute(
            select(f.member_id, f.order_count, f.total_spend, f.last_order_at).where(f.order_count > 0)
        )
    ).all()
    recency = [-float((now - as_utc(last)).days) for _m, _n, _s, last in customers]
    frequency = [float(n) for _m, n, _s, _l in customers]
    money = [Decimal(s).quantize(Decimal("0.01")) for _m, _n, s, _l in customers]
    gaps_by_member: dict[int, list[datetime]] = defaultdict(list)
    repeat = select(f.member_id).where(f.order_count > 1)
    moments = await session.execute(
        select(MemberIdentity.member_id, Order.paid_at)
        .select_from(Order)
        .join(MemberIdentity, _identity_of(Order.page_id, Order.psid))
        .where(_counted(), MemberIdentity.member_id.in_(repeat))
    )
    for member_id, paid_at in moments:
        gaps_by_member[member_id].append(as_utc(paid_at))
    row = await lock_cuts(session)
    lapse = lapse_threshold(repurchase_gaps(gaps_by_member), len(gaps_by_member), row.shop_lapse_days)
    encode = lambda cuts: None if cuts is None else json.dumps(cuts)  # noqa: E731
    row.customers = len(customers)
    row.recency, row.frequency = encode(quantile_cuts(recency)), encode(quantile_cuts(frequency))
    money_cuts = quantile_cuts(money)  # type: ignore[arg-type]
    row.monetary = None if money_cuts is None else json.dumps([str(cut) for cut in money_cuts])
    row.lapse_days, row.lapse_source, row.median_gap_days = lapse.days, lapse.source.value, lapse.median_gap_days
    row.computed_at, row.computed_on = now, local_day or row.computed_on
    await session.flush()
    await _score(session, row, now, None)
    return row


async def refresh_member_figures(session: AsyncSession, member_id: int, now: datetime) -> None:
    """One member's figures from their orders now, scored against the last daily refresh's cuts."""
    await session.execute(delete(MemberFigures).where(MemberFigures.member_id == member_id))
    await _insert_figures(session, now, member_id)
    await _score(session, await fetch_cuts(session), now, member_id)


async def set_shop_lapse_days(session: AsyncSession, days: int | None, now: datetime) -> RfmCuts:
    """The shop's own lapse threshold (None: derived again); everyone's states follow at once."""
    row = await lock_cuts(session)
    row.shop_lapse_days = days
    await session.flush()
    return await refresh_figures(session, now)


async def fetch_figures(session: AsyncSession, member_id: int) -> MemberFigures | None:
    return await session.get(MemberFigures, member_id)


# --- tags ---------------------------------------------------------------------------------------------


async def tag_member(
    session: AsyncSession, member_id: int, tag: str, source: str, now: datetime, set_by: str | None = None
) -> bool:
    """Tag the member (`source`: hand | rule | journey; `set_by`: who or what); False if they had it."""
    tag = parse_tag(tag)
    result = await session.execute(
        dialect_insert(session)(MemberTag)
        .values(member_id=member_id, tag=tag, source=source, set_by=set_by, created_at=now)
        .on_conflict_do_nothing()
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def untag_member(session: AsyncSession, member_id: int, tag: str, now: datetime) -> bool:
    """Take the tag off; False if they did not have it. (`now` for the journeys' uniform call.)"""
    del now
    try:
        tag = parse_tag(tag)
    except SegmentError:
        return False  # no tag can be so written: nobody has it
    result = await session.execute(delete(MemberTag).where(MemberTag.member_id == member_id, MemberTag.tag == tag))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def fetch_member_tags(session: AsyncSession, member_id: int) -> list[MemberTag]:
    rows = await session.execute(select(MemberTag).where(MemberTag.member_id == member_id).order_by(MemberTag.tag))
    return list(rows.scalars())


async def fetch_tag_names(session: AsyncSession, prefix: str = "", limit: int = 50) -> list[str]:
    """The tags in use (for a typeahead), those starting with `prefix` first."""
    stmt = select(MemberTag.tag).distinct().order_by(MemberTag.tag).limit(limit)
    if prefix.strip():
        stmt = stmt.where(func.lower(MemberTag.tag).startswith(prefix.strip().lower(), autoescape=True))
    return list((await session.execute(stmt)).scalars())


# --- compiling a segment ------------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # checked when the shop file was loaded; tzdata may change
        return ZoneInfo("UTC")


async def fetch_zone(session: AsyncSession) -> ZoneInfo:
    """The shop's time zone (dates in segments are its days)."""
    shop = await session.get(ShopInfo, 1)
    # In a thread: the first use of a zone reads its file from disk (ZoneInfo keeps it after).
    return await asyncio.to_thread(_zone, shop.timezone if shop is not None else "UTC")


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def _with_member_orders(stmt: Any, order_id: Any) -> Any:
    """`stmt` (rows with an `order_id`) joined to the counted orders of the member in the outer query: one
    level deep, so the outer `crm_member` is correlated."""
    return (
        stmt.join(Order, and_(Order.id == order_id, _counted()))
        .join(MemberIdentity, _identity_of(Order.page_id, Order.psid))
        .where(MemberIdentity.member_id == Member.id)
    )


def _condition(cond: Condition, now: datetime, zone: ZoneInfo) -> ColumnElement[bool]:
    f, value = MemberFigures, cond.value
    if cond.field in (Field.R_SCORE, Field.F_SCORE, Field.M_SCORE, Field.ORDER_COUNT, Field.TOTAL_SPEND):
        col = {
            Field.R_SCORE: f.recency_score,
            Field.F_SCORE: f.frequency_score,
            Field.M_SCORE: f.monetary_score,
            Field.ORDER_COUNT: f.order_count,
            Field.TOTAL_SPEND: f.total_spend,
        }[cond.field]
        return col >= value if cond.op == "min" else col <= value  # type: ignore[operator,return-value]
    if cond.field == Field.TIER:
        return Member.tier_key.in_(value)  # type: ignore[attr-defined]
    if cond.field == Field.NES:
        return f.nes.in_(value)  # type: ignore[attr-defined]
    if cond.field == Field.NAPL:
        return f.napl.in_(value)  # type: ignore[union-attr]
    if cond.field == Field.TAGS:
        has = lambda tags: exists().where(MemberTag.member_id == Member.id, MemberTag.tag.in_(tags))  # type: ignore[attr-defined]  # noqa: E731
        if cond.op == "any":
            return has(value)
        if cond.op == "none":
            return not_(has(value))
        return and_(*(has([tag]) for tag in value))
    if cond.field == Field.LAST_ORDER:
        last = f.last_order_at
        if cond.op == "within_days":
            return last >= now - timedelta(days=value)  # type: ignore[operator,return-value]
        if cond.op == "not_within_days":
            return or_(last.is_(None), last < now - timedelta(days=value))  # type: ignore[union-attr,operator]
        start = _day_start(value, zone)
        return last < start if cond.op == "before" else last >= start + timedelta(days=1)  # type: ignore[operator,return-value]
    if cond.field == Field.PRODUCT:
        lines = select(OrderLine.id).join(Product, Product.id == OrderLine.product_id)
        codes = func.upper(Product.code).in_([c.upper() for c in value])
        return exists(_with_member_orders(lines, OrderLine.order_id).where(codes))
    if cond.field == Field.CAMPAIGN:
        claims = select(StockClaim.id).join(Campaign, Campaign.id == StockClaim.campaign_id)
        return exists(_with_member_orders(claims, StockClaim.order_id).where(Campaign.key.in_(value)))  # type: ignore[attr-defined]
    if cond.field == Field.CHANNEL:
        options: list[ColumnElement[bool]] = []
        chats = [c for c in value if c != "comment"]
        if chats:
            options.append(
                exists(
                    select(literal(1))
                    .select_from(_conversation)
                    .join(MemberIdentity, _identity_of(_conversation.c.page_id, _conversation.c.psid))
                    .where(MemberIdentity.member_id == Member.id, _conversation.c.channel.in_(chats))
                )
            )
        if "comment" in value:
            claims = select(StockClaim.id)
            options.append(
                exists(_with_member_orders(claims, StockClaim.order_id).where(StockClaim.source == "comment"))
            )
        return or_(*options)
    if cond.field == Field.BIRTHDAY_MONTH:
        return extract("month", Member.birthday).in_(value)
    raise AssertionError(cond.field)


def compile_definition(definition: SegmentDefinition, now: datetime, zone: ZoneInfo) -> ColumnElement[bool]:
    """The members of `definition` as one condition over `crm_member` joined to `crm_member_figures`."""
    match = and_(true(), *(_condition(c, now, zone) for c in definition.match))
    if not definition.exclude:
        return match
    # An exclusion on an empty figure (no order: no state, no score) excludes no one: SQL's NULL made false.
    excluded = func.coalesce(or_(false(), *(_condition(c, now, zone) for c in definition.exclude)), false())
    return and_(match, not_(excluded))


def _members_query(where: ColumnElement[bool]) -> Any:
    return (
        select(Member.id)
        .join(MemberFigures, MemberFigures.member_id == Member.id)
        .where(Member.merged_into.is_(None), where)  # type: ignore[union-attr]
    )


def segment_definition(segment: SavedSegment | SegmentDefinition) -> SegmentDefinition:
    if isinstance(segment, SegmentDefinition):
        return segment
    return parse_segment_definition(json.loads(segment.definition))


async def members_in_segment(
    session: AsyncSession, segment: SavedSegment | SegmentDefinition, now: datetime
) -> list[int]:
    """The ids of the members in the segment now (by their figures of the last refresh), in id order."""
    where = compile_definition(segment_definition(segment), now, await fetch_zone(session))
    return list((await session.execute(_members_query(where).order_by(Member.id))).scalars())


async def is_in_segment(session: AsyncSession, segment_id: int, member_id: int, now: datetime) -> bool:
    segment = await session.get(SavedSegment, segment_id)
    if segment is None:
        return False
    where = compile_definition(segment_definition(segment), now, await fetch_zone(session))
    return (await session.execute(_members_query(where).where(Member.id == member_id))).first() is not None


async def count_segment(session: AsyncSession, definition: SegmentDefinition, now: datetime) -> int:
    where = compile_definition(definition, now, await fetch_zone(session))
    return int((await session.execute(select(func.count()).select_from(_members_query(where).subquery()))).scalar_one())


@dataclass(frozen=True, slots=True)
class PreviewRow:
    member_id: int
    code: str
    name: str | None
    tier_key: str
    figures: MemberFigures


async def preview_segment(
    session: AsyncSession, definition: SegmentDefinition, now: datetime, limit: int = PREVIEW_SIZE
) -> list[PreviewRow]:
    """The first members of the segment (best money first) with their figures."""
    where = compile_definition(definition, now, await fetch_zone(session))
    rows = await session.execute(
        select(Member.id, Member.code, Member.name, Member.tier_key, MemberFigures)
        .join(MemberFigures, MemberFigures.member_id == Member.id)
        .where(Member.merged_into.is_(None), where)  # type: ignore[union-attr]
        .order_by(MemberFigures.total_spend.desc(), Member.id)  # type: ignore[attr-defined]
        .limit(limit)
    )
    return [PreviewRow(i, c, n, t, fig) for i, c, n, t, fig in rows]


# --- saved segments and their snapshot ----------------------------------------------------------------


async def fetch_segments(session: AsyncSession) -> list[SavedSegment]:
    return list((await session.execute(select(SavedSegment).order_by(SavedSegment.name))).scalars())


async def save_segment(
    session: AsyncSession,
    name: str,
    definition: SegmentDefinition,
    now: datetime,
    *,
    segment_id: int | None = None,
    tag_on_entry: str | None = None,
) -> SavedSegment:
    """Create (`segment_id` None) or replace a segment; SegmentError naming the field when refused."""
    name = parse_segment_name(name)
    tag = parse_tag(tag_on_entry, "tag_on_entry") if tag_on_entry and tag_on_entry.strip() else None
    same = (
        await session.execute(select(SavedSegment.id).where(func.lower(SavedSegment.name) == name.lower()))
    ).scalar_one_or_none()
    if same is not None and same != segment_id:
        raise SegmentError("name", "another segment has this name")
    if segment_id is None:
        segment = SavedSegment(name=name, definition="", created_at=now, updated_at=now)
    else:
        found = await session.get(SavedSegment, segment_id)
        if found is None:
            raise LookupError(segment_id)
        segment = found
    segment.name, segment.tag_on_entry, segment.version = name, tag, SCHEMA_VERSION
    segment.definition = json.dumps(definition.to_dict(), ensure_ascii=False)
    segment.updated_at = now
    session.add(segment)
    await session.flush()
    return segment


async def delete_segment(session: AsyncSession, segment_id: int) -> bool:
    await session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment_id))
    result = await session.execute(delete(SavedSegment).where(SavedSegment.id == segment_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Membership:
    entered: list[int]
    left: list[int]


async def refresh_segment(
    session: AsyncSession, segment: SavedSegment, now: datetime, member_id: int | None = None
) -> Membership:
    """Evaluate the segment now against its snapshot (everyone, or one member): who entered (rows added,
    `entered_at` now), who left (rows removed); the segment's tag rule tags who entered."""
    where = compile_definition(segment_definition(segment), now, await fetch_zone(session))
    query = _members_query(where)
    snapshot = select(SegmentMember.member_id).where(SegmentMember.segment_id == segment.id)
    if member_id is not None:
        query, snapshot = query.where(Member.id == member_id), snapshot.where(SegmentMember.member_id == member_id)
    current = set((await session.execute(query)).scalars())
    before = set((await session.execute(snapshot)).scalars())
    entered, left = sorted(current - before), sorted(before - current)
    for chunk in _chunks(left):
        await session.execute(
            delete(SegmentMember).where(SegmentMember.segment_id == segment.id, SegmentMember.member_id.in_(chunk))  # type: ignore[attr-defined]
        )
    for chunk in _chunks(entered):
        await session.execute(
            insert(SegmentMember), [{"segment_id": segment.id, "member_id": m, "entered_at": now} for m in chunk]
        )
        if segment.tag_on_entry:
            rows = [
                {
                    "member_id": m,
                    "tag": segment.tag_on_entry,
                    "source": "rule",
                    "set_by": f"segment:{segment.id}",
                    "created_at": now,
                }
                for m in chunk
            ]
            await session.execute(dialect_insert(session)(MemberTag).values(rows).on_conflict_do_nothing())
    return Membership(entered, left)


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    # SQLite takes at most 32,766 bound values a statement: a daily pass may move tens of thousands.
    return [ids[i : i + size] for i in range(0, len(ids), size)]


async def refresh_member_segments(session: AsyncSession, member_id: int, now: datetime) -> int:
    """One member against every segment's snapshot (after their figures changed, or a tag): how many they
    entered. One pass: a tag a rule gives here is seen by the other segments at the next refresh."""
    entered = 0
    for segment in await fetch_segments(session):
        entered += len((await refresh_segment(session, segment, now, member_id)).entered)
    return entered


async def refresh_all(session: AsyncSession, now: datetime, local_day: str | None = None) -> dict[str, int]:
    """The daily pass: everyone's figures, then every segment's snapshot and tag rule."""
    cuts = await refresh_figures(session, now, local_day)
    entered = 0
    for segment in await fetch_segments(session):
        entered += len((await refresh_segment(session, segment, now)).entered)
    return {"customers": cuts.customers, "entered": entered}
