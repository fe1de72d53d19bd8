"""The issue's stories of journeys through the whole bot (webhook, worker and its CRM consumer, outbox
sender, Graph emulator, the local SMTP server, the console's pages), with the journeys' clock moved by
passing `now` to their runner, never slept.

1. The owner adds the playbook with a sign-up coupon and switches on the welcome, the thank-you and the
   survey. Mei asks for her points (she becomes a member) and gives her e-mail: the welcome reaches her in
   Messenger with her own code; she orders with it and pays, and the order is credited to the welcome. On
   day 3 she is thanked by e-mail (her 24-hour window has long closed), on day 7 after delivery she is
   surveyed by e-mail, and answers on the survey page: the answer is in the run's history and on the
   journey's page.
2. Kenji last ordered 120 days ago (lapsed: the shop's threshold is 90 days). The owner switches on the
   win-back with a coupon; Kenji, who just wrote to the Page, receives it in Messenger with his code, uses it
   at checkout, pays, and the order is credited to the win-back on the journeys' list.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal as D
from functools import partial

from sqlalchemy import select

from bot.handlers.journey_delivery import JourneyRunner
from bot.inbox.auth import add_user
from bot.outbound.email_links import link_key
from bot.outbound.survey_links import survey_url
from bot.runtime.clock import utcnow
from bot.runtime.local_smtp import LocalSmtp, Mailbox
from bot.services import JOURNEY_RUNNER, OUTBOX_NOTIFIER
from carts.coupon_tables import Coupon
from carts.order_tables import Order, OrderEvent
from crm_bridge.journey_outcome_tables import JourneyAttribution, SurveyAnswer
from crm_bridge.journey_tables import Journey, JourneyMessage, JourneyRun
from crm_bridge.journeys import fetch_run_history
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.order_events import consume_order_events
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_outbound.test_email_outbox import make_sender
from tests.test_bot.test_web.test_checkout import ADMIN, VALID, comment_and_wait, form_of, post
from tests.test_crm_bridge.test_referral_story import chat

MEI, KENJI = "3000000000871", "3000000000872"
BASE = "https://shop.example"


async def _setup(stack: Stack, coupon_title: str, *keys: str) -> tuple[JourneyRunner, int]:
    """The shop, a coupon with a code per member, the owner signed in with the playbook added with that
    coupon and `keys` switched on; the app's own runner stopped (it reads the machine's clock)."""
    running = stack.client.app[JOURNEY_RUNNER]
    assert running is not None
    running.stop()
    await running.finished.wait()
    await seed_shop(stack.sessions, stock=10)
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        coupon = Coupon(title=coupon_title, kind="percent", value=D(10), created_at=now, updated_at=now)
        session.add(coupon)
        await session.flush()
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
    assert (await sign_in(stack, "owner"))[0] == 303
    csrf = await csrf_of(stack, "/inbox")
    added = await stack.client.post(
        "/inbox/journeys/playbook", data={"csrf": csrf, "coupon": str(coupon.id)}, allow_redirects=False
    )
    assert added.status == 303
    for key in keys:
        switched = await stack.client.post(
            f"/inbox/journeys/{key}/enabled", data={"csrf": csrf, "enabled": "1"}, allow_redirects=False
        )
        assert switched.status == 303, key
    enabled = await stack.rows(select(Journey.key).where(Journey.enabled.is_(True)))  # type: ignore[attr-defined]
    assert sorted(enabled) == sorted(keys)
    runner = JourneyRunner(
        stack.sessions, email_enabled=True, survey_link=partial(survey_url, BASE, link_key(stack.settings))
    )
    return runner, coupon.id or 0


async def _message(stack: Stack, psid: str, journey_key: str) -> JourneyMessage | None:
    async with stack.sessions() as session:
        member = await fetch_member_by_psid(session, PAGE_ID, psid)
        if member is None:
            return None
        return (
            await session.execute(
                select(JourneyMessage)
                .join(Journey, Journey.id == JourneyMessage.journey_id)  # type: ignore[arg-type]
                .where(JourneyMessage.member_id == member.id, Journey.key == journey_key)
            )
        ).scalar_one_or_none()


async def _run_until(stack: Stack, runner: JourneyRunner, now, psid: str, key: str, status: str) -> JourneyMessage:  # type: ignore[no-untyped-def]
    """The runner at `now` (the CRM's consumer first, as the worker does) until `key`'s message is `status`."""

    async def reached() -> bool:
        async with stack.sessions() as session, session.begin():
            await consume_order_events(session, now=utcnow())
        await runner.run_once(now)
        await stack.client.app[OUTBOX_NOTIFIER].wake()
        message = await _message(stack, psid, key)
        return message is not None and message.status == status

    await wait_until(reached, what=f"{key} {status} for {psid}")
    message = await _message(stack, psid, key)
    assert message is not None
    return message


async def _checkout_with(stack: Stack, psid: str, code: str, number: int) -> str:
    """The shopper comments A+1, checks out with `code` and the merchant marks the order paid; its number."""
    token = await comment_and_wait(stack, "A+1", psid=psid, number=number)
    page = await (await stack.client.get(f"/checkout/{token}")).text()
    status, html = await post(stack, token, {**VALID, **form_of(page), "coupon": code})
    assert status == 200, html
    found = re.search(r"(PO-\d{6})", html)  # "Order PO-… confirmed", in the shopper's language
    assert found is not None
    paid = await stack.client.post(f"/api/orders/{found.group(1)}/paid", headers=ADMIN)
    assert paid.status == 200
    return found.group(1)


async def _credited(stack: Stack, number: str) -> JourneyAttribution:
    async def credited() -> bool:
        rows = await stack.rows(select(JourneyAttribution).join(Order).where(Order.number == number))
        return bool(rows)

    await wait_until(credited, what=f"{number} credited to a journey message")
    [row] = await stack.rows(select(JourneyAttribution).join(Order).where(Order.number == number))
    return row


async def test_welcome_with_a_coupon_thanks_on_day_3_and_a_survey_on_day_7_answered(
    bot_stack: Stack, local_smtp: LocalSmtp, mailbox: Mailbox
) -> None:
    stack = bot_stack
    runner, _coupon = await _setup(stack, "Welcome 10% off", "welcome", "thank-you", "satisfaction-survey")
    # Mei becomes a member (she asks for her points) and gives her e-mail with Messenger's quick reply.
    await shopper_writes(stack, MEI, "積分")
    await stack.emulator.deliver_message(PAGE_ID, MEI, "mei@example.com", quick_reply="mei@example.com")

    async def has_email() -> bool:
        async with stack.sessions() as session:
            member = await fetch_member_by_psid(session, PAGE_ID, MEI)
            return member is not None and member.email == "mei@example.com"

    await wait_until(has_email, what="Mei's e-mail on her member")
    start = utcnow()
    welcome = await _run_until(stack, runner, start, MEI, "welcome", "sent")
    assert welcome.channel == "messenger" and welcome.coupon_code
    [text] = [t for t in await chat(stack, MEI) if "sign-up gift" in t or "註冊禮物" in t]
    assert welcome.coupon_code in text  # in Messenger, her own code
    # She orders with the code and pays: the order is credited to the welcome.
    number = await _checkout_with(stack, MEI, welcome.coupon_code, 1)
    [order] = await stack.rows(select(Order).where(Order.number == number))
    assert order.coupon_code == welcome.coupon_code and order.coupon_discount == D(38)
    credited = await _credited(stack, number)
    assert (credited.message_id, credited.amount) == (welcome.id, order.total)
    shipping = {"carrier": "SF Express", "tracking_number": "SF1234567890"}
    for verb, body in (("pack", {}), ("ship", shipping), ("deliver", {})):
        reply = await stack.client.post(f"/api/orders/{number}/{verb}", headers=ADMIN, json=body)
        assert reply.status == 200, (verb, await reply.text())
    # Day 3: the thank-you, by e-mail (her window closed two days ago); the survey waits for day 7.
    day3 = start + timedelta(days=3, minutes=1)
    await _run_until(stack, runner, start, MEI, "welcome", "sent")  # the paid and delivered orders enter
    thanks = await _run_until(stack, runner, day3, MEI, "thank-you", "queued")
    assert thanks.channel == "email"
    assert await make_sender(stack.sessions, local_smtp.port).run_once(day3) == 1
    [thank_mail] = mailbox.mails
    assert thank_mail.rcpt_tos == ("mei@example.com",)
    assert "Thank you for your first order" in thank_mail.body("plain") or "第一張訂單" in thank_mail.body("plain")
    await _run_until(stack, runner, day3, MEI, "thank-you", "sent")
    assert await _message(stack, MEI, "satisfaction-survey") is None
    # Day 7 after delivery: the survey, by e-mail, with its link to the star page.
    day7 = start + timedelta(days=7, minutes=2)
    survey = await _run_until(stack, runner, day7, MEI, "satisfaction-survey", "queued")
    assert survey.survey and survey.channel == "email"
    assert await make_sender(stack.sessions, local_smtp.port).run_once(day7) == 1
    survey_mail = mailbox.mails[-1]
    link = re.search(re.escape(BASE) + r"(/s/\S+)", survey_mail.body("plain"))
    assert link is not None and number in survey_mail.body("plain")
    await _run_until(stack, runner, day7, MEI, "satisfaction-survey", "sent")
    answered = await stack.client.post(link.group(1), data={"stars": "5", "comment": "包裝好靚，好快收到"})
    assert answered.status == 200
    [answer] = await stack.rows(select(SurveyAnswer))
    assert (answer.stars, answer.comment, answer.message_id) == (5, "包裝好靚，好快收到", survey.id)
    async with stack.sessions() as session:
        history = [(e.kind, e.code) for e in await fetch_run_history(session, survey.run_id)]
    assert ("answered", "email") in history
    run_page = await (await stack.client.get(f"/inbox/journeys/runs/{survey.run_id}")).text()
    for words in ("Order delivered", "by E-mail", "not Messenger: outside Messenger's 24-hour window", "★★★★★"):
        assert words in run_page, words
    run_zh = await (await stack.client.get(f"/inbox/journeys/runs/{survey.run_id}?lang=zh_Hant")).text()
    assert "經 電郵" in run_zh and "已回答問卷" in run_zh
    page = await (await stack.client.get("/inbox/journeys/satisfaction-survey/runs")).text()
    assert "5.0 stars on average, 1 answers" in page and "包裝好靚，好快收到" in page
    listed = await (await stack.client.get("/inbox/journeys")).text()
    assert "5.0★ of 1" in listed


async def test_a_lapsed_member_is_won_back_with_a_coupon_and_the_order_is_credited(bot_stack: Stack) -> None:
    stack = bot_stack
    # Kenji's last order, 120 days ago, is already in the CRM before the win-back is switched on.
    long_ago = utcnow() - timedelta(days=120)
    async with stack.sessions() as session, session.begin():
        order = Order(
            page_id=PAGE_ID,
            psid=KENJI,
            checkout_nonce="kenji-old",
            status="delivered",
            currency="HKD",
            subtotal=D(520),
            total=D(520),
            customer_name="Kenji",
            phone="9123 4567",
            delivery_method="pickup",
            placed_at=long_ago,
            paid_at=long_ago,
            delivered_at=long_ago,
            updated_at=long_ago,
        )
        session.add(order)
        await session.flush()
        order.number = "PO-000900"
        paid = OrderEvent(order_id=order.id or 0, order_number=order.number, kind="paid", amount=D(520), currency="HKD")
        paid.created_at = long_ago
        session.add(paid)

    async def in_crm() -> bool:
        async with stack.sessions() as session, session.begin():
            await consume_order_events(session, now=utcnow())
            member = await fetch_member_by_psid(session, PAGE_ID, KENJI)
            return member is not None and member.last_order_at is not None

    await wait_until(in_crm, what="Kenji's old order in the CRM")
    runner, _coupon = await _setup(stack, "Come back 10% off", "win-back")
    await shopper_writes(stack, KENJI, "hi")  # he writes to the Page: Messenger's window is open
    win_back = await _run_until(stack, runner, utcnow(), KENJI, "win-back", "sent")
    assert win_back.channel == "messenger" and win_back.coupon_code
    assert any(win_back.coupon_code in t and "We miss you" in t for t in await chat(stack, KENJI))
    async with stack.sessions() as session:
        run = await session.get(JourneyRun, win_back.run_id)
        assert run is not None and run.trigger_key.startswith("no_order:")
    number = await _checkout_with(stack, KENJI, win_back.coupon_code, 2)
    credited = await _credited(stack, number)
    [order] = await stack.rows(select(Order).where(Order.number == number))
    assert (credited.message_id, credited.journey_id, credited.amount) == (
        win_back.id,
        win_back.journey_id,
        order.total,
    )
    assert order.coupon_code == win_back.coupon_code
    listed = await (await stack.client.get("/inbox/journeys")).text()
    row = re.search(r'<tr class="journey on">(.*?)</tr>', listed, re.S)
    assert row is not None and "Win-back" in row.group(1)
    assert re.search(r'data-label="Orders credited">1 <small', row.group(1))
