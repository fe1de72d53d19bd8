"""The members admin API and paying with points at checkout, on the running bot (given / when / then)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from sqlalchemy import select

from bot.runtime.clock import utcnow
from carts.order_tables import Order
from crm_bridge.maintenance import apply_maintenance
from crm_bridge.members import fetch_or_create_member
from crm_bridge.program import apply_program
from crm_bridge.rules import Program, Tier
from crm_bridge.tables import PointsEntry
from tests.conftest import ADMIN_TOKEN, PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_web.test_checkout import comment_and_wait, form_of, post

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SHOPPER = "3000000000801"
FORM = {"name": "Points Shopper", "phone": "+852 6999 0000", "delivery_method": "pickup"}
PROGRAM = Program(tiers=(Tier("member", "Member", redeem_points=10, redeem_value=D(1)),), redeem_cap_percent=D(50))


async def test_admin_adjusts_points_and_the_member_pays_part_of_an_order_with_them(bot_stack: Stack) -> None:
    stack = bot_stack
    await seed_shop(stack.sessions, stock=10)
    async with stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, utcnow())
        member, _ = await fetch_or_create_member(session, PAGE_ID, SHOPPER, name="Points Shopper", now=utcnow())
        member_id = member.id
    # bad adjustments are refused with a reason and change nothing
    for body in ({"points": 100}, {"points": 0, "reason": "x"}, {"points": "100", "reason": "x"}, {"bad": 1}):
        response = await stack.client.post(f"/api/members/{member_id}/adjust", headers=ADMIN, json=body)
        assert response.status == 400 and "error" in await response.json()
    assert await stack.rows(select(PointsEntry)) == []
    assert (await stack.client.post(f"/api/members/{member_id}/adjust", json={})).status == 401
    assert (await stack.client.get("/api/members/999999", headers=ADMIN)).status == 404
    # given: the merchant gives the member 5,000 points (HK$500 at 10 points = HK$1)
    response = await stack.client.post(
        f"/api/members/{member_id}/adjust", headers=ADMIN, json={"points": 5000, "reason": "welcome gift"}
    )
    assert response.status == 201 and (await response.json())["available"] == 5000
    found = await (await stack.client.get("/api/members?q=Points Shop", headers=ADMIN)).json()
    assert [m["id"] for m in found["members"]] == [member_id]

    # when: they check out A (HK$380): the page offers points for at most half the order
    await shopper_writes(stack, SHOPPER)
    token = await comment_and_wait(stack, "A+1", psid=SHOPPER, number=81)
    html = await (await stack.client.get(f"/checkout/{token}")).text()
    assert "you have 5000; up to 1900 = HK$190 off" in html
    hidden = form_of(html)
    # too many points, or not whole blocks: the form again, nothing placed
    for points, message in (("2000", "at most 1900 points"), ("15", "blocks of 10")):
        status, text = await post(stack, token, {**FORM, **hidden, "points": points})
        assert status == 400 and message in text
    assert await stack.rows(select(Order)) == []
    status, text = await post(stack, token, {**FORM, **hidden, "points": "1500", "email": "Shopper@Example.com"})
    # then: the order costs HK$230 (1,500 points paid HK$150), the email is linked, the email is linked
    assert status == 200 and "HK$230" in text
    [order] = await stack.rows(select(Order))
    assert (order.subtotal, order.total) == (D(380), D(230))
    ledger = await (await stack.client.get(f"/api/members/{member_id}/ledger", headers=ADMIN)).json()
    assert ledger["available"] == 3500 and [e["points"] for e in ledger["entries"]] == [-1500, 5000]
    card = await (await stack.client.get(f"/api/members/{member_id}", headers=ADMIN)).json()
    assert card["member"]["email"] == "shopper@example.com"
    # the same form again: the same order, no second redemption
    status, _ = await post(stack, token, {**FORM, **hidden, "points": "1500"})
    assert status == 200 and len(await stack.rows(select(PointsEntry))) == 2

    # when: the order is cancelled; then: the points come back
    response = await stack.client.post(f"/api/orders/{order.number}/cancel", headers=ADMIN, json={})
    assert response.status == 200

    async def refunded() -> bool:
        body = await (await stack.client.get(f"/api/members/{member_id}/ledger", headers=ADMIN)).json()
        return bool(body["available"] == 5000)

    await wait_until(refunded, what="the cancelled order's points come back")
    rfm = await (await stack.client.get("/api/members/rfm", headers=ADMIN)).json()
    assert [(m["id"], m["frequency"], m["segment"]) for m in rfm["members"]] == [(member_id, 0, "new")]
    assert (await stack.client.get("/api/members/rfm?sleeping_days=0", headers=ADMIN)).status == 400


async def test_the_merchant_records_a_birthday_and_the_member_gets_birthday_points_once(bot_stack: Stack) -> None:
    stack = bot_stack
    program = Program(tiers=PROGRAM.tiers, birthday_points=88)
    async with stack.sessions() as session, session.begin():
        await apply_program(session, program, utcnow())
        member, _ = await fetch_or_create_member(session, PAGE_ID, SHOPPER, name="Birthday Shopper", now=utcnow())
        member_id = member.id
    url = f"/api/members/{member_id}/birthday"
    for body in ({"birthday": "1990-02-30"}, {"birthday": "tomorrow"}, {"birthday": "2999-01-01"}, {"when": 1}):
        response = await stack.client.put(url, headers=ADMIN, json=body)
        assert response.status == 400 and "error" in await response.json()
    assert (await stack.client.put(url, json={"birthday": None})).status == 401
    today = utcnow().date()
    born = today.replace(year=1992) if (today.month, today.day) != (2, 29) else date(1992, 2, 29)
    response = await stack.client.put(url, headers=ADMIN, json={"birthday": born.isoformat()})
    assert response.status == 200 and (await response.json())["birthday"] == born.isoformat()
    for _ in range(2):  # the daily maintenance, twice on the birthday: one gift
        async with stack.sessions() as session, session.begin():
            await apply_maintenance(session, utcnow())
    gifts = await stack.rows(select(PointsEntry).where(PointsEntry.kind == "birthday"))
    assert [(g.member_id, g.points) for g in gifts] == [(member_id, 88)]
