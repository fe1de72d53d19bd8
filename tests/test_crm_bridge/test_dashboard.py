"""The CRM dashboard's figures equal those computed here from the rows (crm_bridge/dashboard.py).

A shop of 36 shoppers over 400 days is built through the real paths over a controlled clock, in time order:
shoppers join through members' links (`crm_bridge.referrals`), their carts become orders at checkout
(`carts.orders.place_order`, some with a coupon code, some paying with points through `crm_bridge.ledger`),
are paid, returned in part or whole, or cancelled (`carts.orders`), the order-event consumer turns payments
and returns into members and points (`crm_bridge.order_events`), the monthly upkeep expires old points
(`crm_bridge.maintenance`), and the daily refresh scores everyone (`crm_bridge.segments`). Every figure is
then worked out in this file from the rows alone, by the definitions written out again here, and compared.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.outbound.email_outbox import enqueue_email
from bot.store.tables import EmailOutbox
from carts.coupon_tables import Coupon, CouponUse
from carts.coupons import CouponRefused
from carts.order_rules import CheckoutForm, ReturnItem
from carts.order_tables import CheckoutToken, Order, OrderEvent
from carts.orders import cancel_order, fetch_or_create_checkout_token, mark_paid, place_order, return_lines
from carts.tables import Campaign, CampaignProduct, Product, ShopInfo, StockClaim
from crm_bridge.dashboard import fetch_dashboard
from crm_bridge.dashboard_rules import DashboardError, Period, parse_period
from crm_bridge.journey_outcome_tables import JourneyAttribution
from crm_bridge.journey_tables import JourneyMessage
from crm_bridge.journeys import advance_runs, save_journey, set_enabled, start_runs
from crm_bridge.ledger import apply_redeem, fetch_redeem_limit
from crm_bridge.maintenance import apply_maintenance
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.order_events import consume_order_events
from crm_bridge.referrals import apply_referral
from crm_bridge.segment_rules import parse_segment_definition
from crm_bridge.segment_tables import MemberFigures, RfmCuts
from crm_bridge.segments import count_segment, refresh_all
from crm_bridge.tables import Member, MemberIdentity, PointsEntry, ReferralEdge
from tests.test_crm_bridge.crm_db import PAGE

HK = ZoneInfo("Asia/Hong_Kong")
T0 = datetime(2025, 6, 1, 2, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=400, hours=5)
COUNTED = ("paid", "packed", "shipped", "delivered", "partly_returned")
CENT = D("0.01")


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _run(sessions, actions: list[tuple[datetime, int, Any]]) -> None:  # type: ignore[no-untyped-def]
    """Each action in time order, then the consumer at that time, as the worker would."""
    for at, _n, action in sorted(actions, key=lambda a: (a[0], a[1])):
        async with sessions() as session, session.begin():
            await action(session, at)
        while True:
            async with sessions() as session, session.begin():
                if not await consume_order_events(session, now=at):
                    break


async def build_shop(sessions, seed: int = 21, shoppers: int = 36) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    async with sessions() as session, session.begin():
        await session.merge(ShopInfo(id=1, name="Blossom", currency="HKD", timezone="Asia/Hong_Kong", updated_at=T0))
        rose = Product(code="DA", name="Rose", price=D("380"), stock=None, created_at=T0, updated_at=T0)
        shirt = Product(code="DB", name="Shirt", price=D("890.50"), stock=None, created_at=T0, updated_at=T0)
        session.add_all([rose, shirt])
        campaign = Campaign(
            key="c",
            title="C",
            page_id=PAGE,
            post_id=f"{PAGE}_1",
            starts_at=T0,
            ends_at=NOW,
            created_at=T0,
            updated_at=T0,
        )
        session.add(campaign)
        await session.flush()
        session.add_all(
            [
                CampaignProduct(campaign_id=campaign.id or 0, product_id=p.id or 0, order_code=p.code)
                for p in (rose, shirt)
            ]
        )
        session.add(
            Coupon(
                code="HELLO50",
                title="Hello",
                kind="amount",
                value=D(50),
                per_shopper_limit=1,
                created_at=T0,
                updated_at=T0,
            )
        )
        session.add(
            Coupon(
                code="TENOFF",
                title="Ten",
                kind="percent",
                value=D(10),
                per_shopper_limit=None,
                created_at=T0,
                updated_at=T0,
            )
        )
        products = [(rose.id or 0, D("380")), (shirt.id or 0, D("890.50"))]
        campaign_id = campaign.id or 0
    counter = itertools.count()
    actions: list[tuple[datetime, int, Any]] = []

    def act(at: datetime, fn: Any) -> None:
        actions.append((at, next(counter), fn))

    for s in range(shoppers):
        psid = f"39{s:04d}"
        joined = T0 + timedelta(days=rng.randint(0, 380), hours=rng.randint(0, 23), minutes=rng.randint(0, 59))
        if s % 3 == 1:  # arrives through an earlier shopper's link (a member by then, or the link is refused)
            referrer = f"39{rng.randrange(0, s):04d}"

            async def join(session, at, psid=psid, referrer=referrer) -> None:  # type: ignore[no-untyped-def]
                member = await fetch_member_by_psid(session, PAGE, referrer)
                if member is not None:
                    await apply_referral(session, PAGE, psid, member.code, "SHORTLINK", at)

            act(joined, join)
        at = joined + timedelta(hours=2)
        for _k in range(rng.choice([0, 1, 1, 2, 3, 4, 6])):
            if at > NOW - timedelta(days=4):
                break
            product_id, price = rng.choice(products)
            qty = rng.choice([1, 1, 2])
            coupon = rng.choice([None, None, None, "HELLO50", "TENOFF"])
            use_points = rng.random() < 0.3
            fate = rng.choice(["paid", "paid", "paid", "paid", "part", "whole", "cancel"])
            number_box: list[str] = []

            async def order(
                session,
                at,
                psid=psid,
                product_id=product_id,
                price=price,
                qty=qty,
                coupon=coupon,
                use_points=use_points,
                box=number_box,
                fate=fate,
            ) -> None:  # type: ignore[no-untyped-def]
                n = len((await session.execute(select(StockClaim.id))).all())
                session.add(
                    StockClaim(
                        key=f"k{n}", campaign_id=campaign_id, product_id=product_id, page_id=PAGE, psid=psid,
                        comment_id=f"c{n}", qty=qty, arrival=f"{n:08d}", status="held",
                        expires_at=at + timedelta(minutes=30), created_at=at, decided_at=at,
                    )
                )  # fmt: skip
                product = await session.get(Product, product_id)
                assert product is not None
                product.held += qty
                await session.flush()
                token = await fetch_or_create_checkout_token(session, PAGE, psid, at)
                nonce = (
                    await session.execute(select(CheckoutToken.nonce).where(CheckoutToken.token == token))
                ).scalar_one()
                form = CheckoutForm(f"Shopper {psid}", f"+852 9{psid[-3:]} 4{psid[-3:]}", "pickup", None)
                plan = None
                if use_points:
                    limit = await fetch_redeem_limit(session, PAGE, psid, price * qty, at)
                    plan = limit[1] if limit is not None and limit[1].points > 0 else None
                discount = plan.value if plan else D(0)
                try:
                    placed = await place_order(session, token, nonce, form, at, discount=discount, coupon=coupon)
                except CouponRefused:  # a code this shopper may no longer use: the checkout goes on without
                    placed = await place_order(session, token, nonce, form, at, discount=discount)
                box.append(placed.order.number)
                if plan is not None:
                    await apply_redeem(session, await session.get(Order, placed.order.id), plan, at)
                # Paid an hour later or cancelled five hours later, in the same transaction: a test running the
                # whole bot has its expiry loop on the machine's clock, which must not expire it first.
                if fate == "cancel":
                    await cancel_order(session, placed.order.number, at + timedelta(hours=5))
                else:
                    await mark_paid(session, placed.order.number, now=at + timedelta(hours=1))

            act(at, order)
            if fate in ("part", "whole"):
                code = "DA" if product_id == products[0][0] else "DB"
                back = qty if fate == "whole" else max(1, qty - 1) if qty > 1 else 0
                if back:

                    async def give_back(session, at, box=number_box, code=code, back=back) -> None:  # type: ignore[no-untyped-def]
                        await return_lines(session, box[0], [ReturnItem(code, back)], at)

                    act(at + timedelta(days=2), give_back)
            at += timedelta(days=rng.randint(3, 70), hours=rng.randint(0, 23))

    # A journey thanks every paid order two days later; its runner runs every other day. Delivery is the bot's
    # (bot/handlers/journey_delivery.py): here a queued message is marked sent as it would be, by e-mail for
    # members of odd id (through the e-mail outbox, every third e-mail opened the next day), else by Messenger.
    async def journey(session, at) -> None:  # type: ignore[no-untyped-def]
        definition = {
            "trigger": {"kind": "order_paid"},
            "attribution_days": 30,
            "steps": [
                {"id": "w", "kind": "wait", "days": 2, "hours": 0},
                {"id": "m", "kind": "send", "text": {"en": "Thanks {name}!", "zh_Hant": "多謝 {name}！"}},
            ],
        }
        await save_journey(session, "thanks", "Thanks", definition, approved_templates=set(), by="test", now=at)
        await set_enabled(session, "thanks", True, at)

    act(T0 + timedelta(days=20), journey)
    day = T0 + timedelta(days=21, hours=3)
    while day < NOW - timedelta(hours=1):

        async def runner(session, at) -> None:  # type: ignore[no-untyped-def]
            await start_runs(session, at, shop_tz=HK)
            await advance_runs(session, at, shop_tz=HK)
            queued = await session.execute(select(JourneyMessage).where(JourneyMessage.status == "queued"))
            for message in queued.scalars():
                channel = "email" if message.member_id % 2 else "messenger"
                if channel == "email":
                    email_id = await enqueue_email(
                        session, key=f"journey:{message.id}", to=f"m{message.member_id}@example.com",
                        subject="Thanks", text=message.text or "", member_id=message.member_id, locale="en",
                        purpose="journey", now=at,
                    )  # fmt: skip
                    opened = at + timedelta(days=1) if message.id % 3 == 0 else None
                    await session.execute(
                        update(EmailOutbox)
                        .where(EmailOutbox.id == email_id)
                        .values(status="sent", sent_at=at, opened_at=opened)
                    )
                message.status, message.channel, message.sent_at = "sent", channel, at
                session.add(message)

        act(day, runner)
        day += timedelta(days=2)
    month = date(2025, 7, 1)
    while (moment := datetime(month.year, month.month, 1, 1, tzinfo=UTC)) < NOW:

        async def upkeep(session, at) -> None:  # type: ignore[no-untyped-def]
            await apply_maintenance(session, at)

        act(moment, upkeep)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    await _run(sessions, actions)
    async with sessions() as session, session.begin():
        await refresh_all(session, NOW)


class Rows:
    """The shop's rows and each figure computed from them, as the dashboard's docstring defines it."""

    def __init__(self, rows: dict[str, list[Any]]) -> None:
        self.__dict__.update(rows)
        member_of = {i.value: i.member_id for i in self.identities if i.kind == "psid"}
        returned: dict[int, D] = Counter()  # type: ignore[assignment]
        for e in self.events:
            if e.kind == "returned":
                returned[e.order_id] += D(e.amount)
        self.counted = []  # (member, paid_at, money, order id)
        for o in self.orders:
            if o.status in COUNTED and o.paid_at is not None:
                money = D(o.total) - (returned[o.id] * D(o.total) / D(o.subtotal) if o.subtotal > 0 else 0)
                self.counted.append((member_of[f"{o.page_id}:{o.psid}"], _utc(o.paid_at), money, o.id))
        self.alive = [m for m in self.members if m.merged_into is None]
        self.lapse = self.cuts.lapse_days

    def state_at(self, member: int, t: datetime) -> str | None:
        mine = sorted(p for m, p, _, _ in self.counted if m == member and p < t)
        if not mine:
            return None
        since = t - mine[-1]
        if since >= timedelta(days=self.lapse):
            return "lapsed"
        if since >= timedelta(days=self.lapse / 3):
            return "passive"
        return "new" if len(mine) == 1 else "active"


async def load(sessions) -> Rows:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        tables = {
            "members": Member, "identities": MemberIdentity, "orders": Order, "events": OrderEvent,
            "points": PointsEntry, "edges": ReferralEdge, "uses": CouponUse, "figures": MemberFigures,
            "messages": JourneyMessage, "emails": EmailOutbox, "credits": JourneyAttribution,
        }  # fmt: skip
        rows = {name: list((await session.execute(select(t))).scalars()) for name, t in tables.items()}
        rows["cuts"] = await session.get(RfmCuts, 1)
    return Rows(rows)


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=HK).astimezone(UTC)


def expected_buckets(first: date, last: date) -> list[tuple[date, datetime, datetime]]:
    """(first day, start, end) of each bucket: weeks from the first day up to 120 days, else months."""
    starts, day = [], first
    weekly = (last - first).days + 1 <= 120
    while day <= last:
        starts.append(day)
        day = day + timedelta(days=7) if weekly else (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    end = min(local_midnight(last + timedelta(days=1)), NOW)
    bounds = [local_midnight(d) for d in starts] + [end]
    return [(d, bounds[i], bounds[i + 1]) for i, d in enumerate(starts)]


def money(value: D) -> D:
    return D(value).quantize(CENT)


def check(dash: Any, rows: Rows, first: date, last: date) -> None:
    buckets = expected_buckets(first, last)
    start, end = buckets[0][1], buckets[-1][2]
    created = {m.id: _utc(m.created_at) for m in rows.alive}
    assert dash.start == start and dash.end == end
    assert [p.start.date() for p in dash.series] == [d for d, _, _ in buckets]
    for point, (_d, a, b) in zip(dash.series, buckets, strict=True):
        assert point.new_members == sum(1 for c in created.values() if a <= c < b)
        assert point.members == sum(1 for c in created.values() if c < b)
        states = Counter(rows.state_at(m, b) for m in created)
        assert point.states == {s: states[s] for s in ("new", "active", "passive", "lapsed")}, b
        inside = [c for c in rows.counted if a <= c[1] < b]
        assert (point.orders, point.gmv) == (len(inside), money(sum((c[2] for c in inside), D(0))))
    assert dash.members == sum(1 for c in created.values() if c < end)
    assert dash.new_members == sum(1 for c in created.values() if start <= c < end)
    assert dash.customers == len({c[0] for c in rows.counted if c[1] < end})
    assert dash.lapse_days == rows.lapse and dash.currency == "HKD"
    in_period = [c for c in rows.counted if start <= c[1] < end]
    assert dash.orders == len(in_period)
    assert dash.gmv == money(sum((c[2] for c in in_period), D(0)))
    assert dash.aov == (money(dash.gmv / len(in_period)) if in_period else None)
    # Repurchase: buyers of the period with two or more counted orders by its end.
    buyers = {c[0] for c in in_period}
    by_end = Counter(c[0] for c in rows.counted if c[1] < end)
    assert dash.buyers == len(buyers)
    assert dash.repeat_buyers == sum(1 for m in buyers if by_end[m] >= 2)
    # Days between consecutive orders, the later one in the period.
    gaps = []
    for member in {c[0] for c in rows.counted}:
        times = sorted((c[1], c[3]) for c in rows.counted if c[0] == member and c[1] < end)
        gaps += [(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(times) if b[0] >= start]
    expected_gap = (D(sum(gaps)) / len(gaps) / 86400).quantize(D("0.1")) if gaps else None
    assert dash.mean_gap_days == expected_gap
    # By segment (NAPL today, from the segments' figures) and by tier (today's).
    napl = {f.member_id: f.napl for f in rows.figures}
    tier = {m.id: m.tier_key for m in rows.members}
    for split, key_of in ((dash.by_segment, napl), (dash.by_tier, tier)):
        want: dict[Any, list[Any]] = {}
        for m, _p, value, _o in in_period:
            w = want.setdefault(key_of.get(m), [set(), 0, D(0)])
            w[0].add(m)
            w[1] += 1
            w[2] += value
        assert {s.key: (s.buyers, s.orders, s.gmv) for s in split} == {
            k: (len(b), n, money(g)) for k, (b, n, g) in want.items()
        }
    # Points.
    made = [(p, _utc(p.created_at)) for p in rows.points]
    assert dash.points.issued == sum(
        p.points for p, at in made if start <= at < end and p.kind not in ("redeem", "expire")
    )
    assert dash.points.redeemed == -sum(p.points for p, at in made if start <= at < end and p.kind == "redeem")
    assert dash.points.expired == -sum(p.points for p, at in made if start <= at < end and p.kind == "expire")
    assert dash.points.liability == sum(p.points for p, at in made if at < end)
    # Referrals joined in the period, and their counted orders paid in it.
    joined = {e.member_id for e in rows.edges if start <= _utc(e.created_at) < end}
    theirs = [c for c in in_period if c[0] in joined]
    assert dash.referrals.joins == len(joined)
    assert (dash.referrals.buyers, dash.referrals.orders) == (len({c[0] for c in theirs}), len(theirs))
    assert dash.referrals.sales == money(sum((c[2] for c in theirs), D(0)))
    # Coupons: uses of counted orders paid in the period.
    kept = {c[3]: c[2] for c in in_period}
    used = [u for u in rows.uses if u.status == "used" and u.order_id in kept]
    assert dash.coupons.orders == len({u.order_id for u in used})
    assert dash.coupons.cost == money(sum((D(u.amount) for u in used), D(0)))
    assert dash.coupons.sales == money(sum((kept[u.order_id] for u in used), D(0)))
    # Journeys: messages sent, journeys' e-mails sent and opened, orders credited (still counted).
    sent = [m for m in rows.messages if m.status == "sent" and start <= _utc(m.sent_at) < end]
    assert (dash.journeys.sends, dash.journeys.email_sends) == (len(sent), sum(1 for m in sent if m.channel == "email"))
    mails = [e for e in rows.emails if e.purpose == "journey"]
    assert dash.journeys.emails_sent == sum(1 for e in mails if e.sent_at and start <= _utc(e.sent_at) < end)
    assert dash.journeys.opens == sum(1 for e in mails if e.opened_at and start <= _utc(e.opened_at) < end)
    still = {o.id for o in rows.orders if o.status in COUNTED}
    credited = [c for c in rows.credits if c.order_id in still and start <= _utc(c.paid_at) < end]
    assert dash.journeys.attributed_orders == len(credited)
    assert dash.journeys.attributed_sales == money(sum((D(c.amount) for c in credited), D(0)))


@pytest.fixture
async def shop(sessions):  # type: ignore[no-untyped-def]
    await build_shop(sessions)
    return sessions


async def test_every_figure_equals_a_count_from_the_rows(shop) -> None:  # type: ignore[no-untyped-def]
    rows = await load(shop)
    # The shop has what each figure needs, so no comparison is of zeros.
    assert len(rows.edges) >= 5 and any(u.status == "used" for u in rows.uses)
    assert {p.kind for p in rows.points} >= {"earn", "redeem", "expire", "referral"}
    assert {o.status for o in rows.orders} >= {"paid", "returned", "partly_returned", "cancelled"}
    assert {m.channel for m in rows.messages} == {"email", "messenger"} and any(e.opened_at for e in rows.emails)
    assert len(rows.credits) >= 3  # orders credited to the journey's messages
    today = NOW.astimezone(HK).date()
    periods = [
        parse_period("30", None, None, today),
        parse_period("90", None, None, today),
        parse_period("365", None, None, today),
        parse_period(None, "2025-06-01", "2026-02-10", today),  # months, ending before today
        parse_period(None, "2025-09-03", "2025-11-20", today),  # weeks, in the past
    ]
    for period in periods:
        async with shop() as session:
            dash = await fetch_dashboard(session, period, NOW)
        check(dash, rows, period.first, period.last)
    async with shop() as session:
        year = await fetch_dashboard(session, periods[2], NOW)
    states = {s: sum(p.states[s] for p in year.series) for s in ("active", "passive", "lapsed")}
    assert all(states.values()), states  # every state occurs somewhere in the year


async def test_todays_segments_equal_the_segments_own_counts(shop) -> None:  # type: ignore[no-untyped-def]
    today = NOW.astimezone(HK).date()
    async with shop() as session:
        dash = await fetch_dashboard(session, parse_period("90", None, None, today), NOW)
        for state in ("new", "active", "passive", "lapsed"):
            segment = parse_segment_definition(
                {"version": 1, "match": [{"field": "napl", "op": "in", "value": [state]}]}
            )
            assert dash.states_now[state] == await count_segment(session, segment, NOW)
    # The series' last point is now, and the refresh ran now: the recomputed states equal the stored ones.
    assert dash.series[-1].end == NOW
    assert dash.series[-1].states == dash.states_now
    assert sum(dash.states_now.values()) == dash.customers


@pytest.mark.parametrize(
    ("days", "first", "last", "field"),
    [
        ("7", None, None, "days"),
        ("abc", None, None, "days"),
        (None, "2026-13-01", "2026-12-01", "from"),
        (None, "2026-01-01", None, "to"),
        (None, None, "2026-01-01", "from"),
        (None, "2026-02-01", "2026-01-01", "from"),
        (None, "2026-01-01", "2026-12-04", "to"),  # after today
        (None, "2020-01-01", "2026-01-01", "from"),  # over three years
    ],
)
def test_a_bad_period_is_refused_naming_the_field(
    days: str | None, first: str | None, last: str | None, field: str
) -> None:
    with pytest.raises(DashboardError) as refused:
        parse_period(days, first, last, date(2026, 12, 3))
    assert refused.value.field == field


def test_presets_end_today_and_pick_weeks_or_months() -> None:
    today = date(2026, 12, 3)
    assert parse_period(None, None, None, today) == Period(date(2026, 11, 4), today, 30)
    assert parse_period("365", "", "", today).grain == "month"
    assert parse_period(None, "2026-09-01", "2026-12-03", today).grain == "week"


async def test_an_empty_shop_has_a_dashboard_of_zeros(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        dash = await fetch_dashboard(session, parse_period("90", None, None, NOW.date()), NOW)
    assert (dash.members, dash.customers, dash.orders, dash.gmv, dash.buyers) == (0, 0, 0, D(0), 0)
    assert dash.aov is None and dash.repurchase_rate is None and dash.mean_gap_days is None
    assert [p.states for p in dash.series] == [dict.fromkeys(("new", "active", "passive", "lapsed"), 0)] * 13
    assert dash.journeys.open_rate is None and dash.coupons.return_per_cost is None
