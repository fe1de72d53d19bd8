"""Story: journeys through the whole bot (webhook, worker, CRM consumer, outbox sender, Graph emulator).

Two shoppers pay; one sends STOP in Messenger. Two hours on (the clock passed to the journeys' runner, not
waited for), the other receives the thank-you in Messenger and the opted-out one receives nothing, their
run stopped saying why. A shopper whose 24-hour window closed, with no e-mail, is refused with the reason in
the run's history; one whose window closed between delivery and sending comes back refused with the
outbox's reason.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from sqlalchemy import select

from bot.handlers.journey_delivery import JourneyRunner, deliver_messages, settle_messages
from bot.runtime.clock import utcnow
from bot.services import JOURNEY_RUNNER, OUTBOX_NOTIFIER
from carts.order_tables import Order, OrderEvent
from crm_bridge.journey_tables import JourneyMessage, JourneyRun
from crm_bridge.journeys import advance_runs, fetch_run_history, save_journey, set_enabled
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.order_events import consume_order_events
from crm_bridge.segments import fetch_zone
from crm_bridge.tables import Member
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_crm_bridge.test_referral_story import chat

AMY, BEN, CAT = "3000000000801", "3000000000802", "3000000000803"
THANKS = {
    "trigger": {"kind": "order_paid"},
    "steps": [
        {"id": "w", "kind": "wait", "hours": 2},
        {
            "id": "m1",
            "kind": "send",
            "text": {"en": "Thank you {name}, order {order_ref}!", "zh_Hant": "多謝 {name}！"},
        },
    ],
}


async def _journey(stack: Stack) -> None:
    # The app's own runner reads the machine's clock: stopped, so this test passes the moments itself.
    running = stack.client.app[JOURNEY_RUNNER]
    assert running is not None
    running.stop()
    await running.finished.wait()
    async with stack.sessions() as session, session.begin():
        await save_journey(session, "thanks", "Thanks", THANKS, approved_templates=set(), by="test", now=utcnow())
        await set_enabled(session, "thanks", True, utcnow())


async def pays(stack: Stack, psid: str, total: str) -> None:
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        order = Order(
            page_id=PAGE_ID,
            psid=psid,
            checkout_nonce=f"n-{psid}",
            status="paid",
            currency="HKD",
            subtotal=D(total),
            total=D(total),
            customer_name=f"Shopper {psid[-3:]}",
            phone="9123 4567",
            delivery_method="pickup",
            placed_at=now,
            paid_at=now,
            updated_at=now,
        )
        session.add(order)
        await session.flush()
        order.number = f"PO-{order.id:06d}"
        paid = OrderEvent(
            order_id=order.id or 0, order_number=order.number, kind="paid", amount=D(total), currency="HKD"
        )
        paid.created_at = now
        session.add(paid)


async def _runs(stack: Stack, *psids: str) -> dict[str, JourneyRun]:
    runs = {}
    async with stack.sessions() as session:
        for psid in psids or (AMY, BEN, CAT):
            member = await fetch_member_by_psid(session, PAGE_ID, psid)
            if member is None:
                continue
            found = (await session.execute(select(JourneyRun).where(JourneyRun.member_id == member.id))).scalars()
            for run in found:
                runs[psid] = run
    return runs


async def wait_entered(stack: Stack, *psids: str) -> None:
    async def all_in() -> bool:
        async with stack.sessions() as session, session.begin():
            await consume_order_events(session, now=utcnow())  # the worker's consumer may be between polls
        await JourneyRunner(stack.sessions, email_enabled=False).run_once(utcnow())
        return set(psids) <= set(await _runs(stack, *psids))

    await wait_until(all_in, what=f"{psids} entered the journey")


async def _history(stack: Stack, run: JourneyRun) -> list[tuple[str, str | None]]:
    async with stack.sessions() as session:
        return [(e.kind, e.code) for e in await fetch_run_history(session, run.id or 0)]


async def test_an_opted_out_member_receives_nothing_and_the_other_is_thanked(bot_stack: Stack) -> None:
    stack = bot_stack
    await _journey(stack)
    for psid in (AMY, BEN):
        await shopper_writes(stack, psid)
    await pays(stack, AMY, "180")
    await pays(stack, BEN, "220")
    await wait_entered(stack, AMY, BEN)
    # Ben sends STOP in Messenger: he is opted out of marketing.
    await shopper_writes(stack, BEN, "STOP")

    async def ben_out() -> bool:
        async with stack.sessions() as session:
            ben = await fetch_member_by_psid(session, PAGE_ID, BEN)
            return ben is not None and ben.marketing_opt_out_at is not None

    await wait_until(ben_out, what="Ben opted out")
    runner = JourneyRunner(stack.sessions, email_enabled=False, notifier=None)
    later = utcnow() + timedelta(hours=2, minutes=1)
    await runner.run_once(later)
    await stack.client.app[OUTBOX_NOTIFIER].wake()

    async def amy_thanked() -> bool:
        return any("Thank you Shopper 801, order PO-" in text for text in await chat(stack, AMY))

    await wait_until(amy_thanked, what="Amy thanked in Messenger")

    async def settled() -> bool:
        await runner.run_once(later)
        return any(kind == "sent" for kind, _ in await _history(stack, (await _runs(stack))[AMY]))

    await wait_until(settled, what="Amy's message settled as sent")
    runs = await _runs(stack)
    assert (runs[BEN].status, runs[BEN].end_reason) == ("stopped", "opted_out")
    assert [k for k, _ in await _history(stack, runs[AMY])] == ["entered", "waited", "done", "sent"]
    assert not any("Thank you" in text for text in await chat(stack, BEN))
    async with stack.sessions() as session:
        by_member = {m.member_id: m.status for m in (await session.execute(select(JourneyMessage))).scalars()}
    assert by_member == {runs[AMY].member_id: "sent"}


async def test_a_closed_window_without_an_email_is_refused_with_the_reason(bot_stack: Stack) -> None:
    stack = bot_stack
    await _journey(stack)
    for psid in (AMY, CAT):
        await shopper_writes(stack, psid)
    await pays(stack, AMY, "180")
    await pays(stack, CAT, "90")
    await wait_entered(stack, AMY, CAT)
    later = utcnow() + timedelta(hours=2, minutes=1)
    async with stack.sessions() as session, session.begin():
        await advance_runs(session, later, shop_tz=await fetch_zone(session))
    # Amy last wrote 30 hours ago: her window is closed; she gave no e-mail.
    await stack.set_last_user_at(AMY, 30)
    # Cat's window is open when delivery looks (a moment in the past), closed when the sender sends.
    await stack.set_last_user_at(CAT, 25)
    async with stack.sessions() as session, session.begin():
        cat = await fetch_member_by_psid(session, PAGE_ID, CAT)
        assert cat is not None
        cat_message = (
            await session.execute(select(JourneyMessage).where(JourneyMessage.member_id == cat.id))
        ).scalar_one()
    async with stack.sessions() as session, session.begin():
        amy = await fetch_member_by_psid(session, PAGE_ID, AMY)
        assert amy is not None
        amy_row = await session.get(Member, amy.id)
        assert amy_row is not None and amy_row.email is None
        await deliver_messages(session, utcnow() - timedelta(hours=2), email_enabled=True)
    await stack.client.app[OUTBOX_NOTIFIER].wake()

    async def cat_settled() -> bool:
        async with stack.sessions() as session, session.begin():
            await settle_messages(session, utcnow())
            row = await session.get(JourneyMessage, cat_message.id)
            return row is not None and row.status != "queued"

    await wait_until(cat_settled, what="Cat's message settled")
    runs = await _runs(stack)
    assert (await _history(stack, runs[AMY]))[-1] == ("refused", "no_channel")
    async with stack.sessions() as session:
        messages = {m.member_id: m for m in (await session.execute(select(JourneyMessage))).scalars()}
        amy_history = await fetch_run_history(session, runs[AMY].id or 0)
    assert amy_history[-1].detail == '{"messenger": "outside_window", "email": "no_email"}'
    amy_message, cat_row = messages[runs[AMY].member_id], messages[runs[CAT].member_id]
    assert (amy_message.status, amy_message.refusal_code, amy_message.outbox_id) == ("refused", "no_channel", None)
    # The outbox decided at send time: the window had closed; its reason came back.
    assert (cat_row.status, cat_row.channel, cat_row.refusal_code) == ("refused", "messenger", "outside_window")
    assert cat_row.refusal_reason
    assert (await _history(stack, runs[CAT]))[-1] == ("refused", "outside_window")
    assert not any("Thank you" in text for text in await chat(stack, CAT) + await chat(stack, AMY))
