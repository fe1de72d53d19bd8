"""Story: the shop gives new members a coupon. A shopper's first Get Started makes them a member and the
welcome carries their own code and its terms; a second Get Started gives nothing more; a shopper who joins
through a member's link gets theirs with the referral welcome; checkout applies the code by itself. One
member never holds two sign-up codes, whichever of their ids asks (the welcome here, a journey later)."""

from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.replies.coupons import signup_gift
from bot.runtime.clock import utcnow
from bot.store.tables import OutboxMessage
from carts.coupon_rules import Discount, DiscountKind, parse_coupon
from carts.coupon_tables import CouponCode
from carts.coupons import save_coupon, set_signup_coupon, stop_coupon
from crm_bridge.members import IdentityKind, fetch_or_create_member, psid_identity
from crm_bridge.program import apply_program
from crm_bridge.signup_coupon import give_signup_code
from crm_bridge.tables import MemberIdentity
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_web.test_checkout import VALID, comment_and_wait, form_of, post
from tests.test_crm_bridge.crm_db import OTHER_PAGE, PAGE, T0
from tests.test_crm_bridge.test_referral_story import PROGRAM, chat, code_from_card, wait_for_text

NEW, AGAIN, FRIEND = "3000000000801", "3000000000802", "3000000000803"


async def signup_coupon(sessions: async_sessionmaker[AsyncSession], **changes: str) -> int:
    spec, errors = parse_coupon(
        {"title": "Welcome", "mode": "personal", "kind": "percent", "value": "10", "min_spend": "300", **changes},
        None,
        None,
    )
    assert spec is not None, errors
    async with sessions() as session, session.begin():
        coupon = await save_coupon(session, spec, utcnow())
        await set_signup_coupon(session, coupon.id, utcnow())
        assert coupon.id is not None
        return coupon.id


async def codes_of(stack: Stack, psid: str) -> list[str]:
    return [c.code for c in await stack.rows(select(CouponCode).where(CouponCode.psid == psid))]


async def test_a_new_member_gets_their_code_with_the_welcome_once(bot_stack: Stack) -> None:
    stack = bot_stack
    await seed_shop(stack.sessions)
    async with stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, utcnow())
    await signup_coupon(stack.sessions)

    await stack.emulator.deliver_postback(PAGE_ID, NEW, "GET_STARTED")
    text = await wait_for_text(stack, NEW, "A welcome gift")
    [code] = await codes_of(stack, NEW)
    assert code.startswith("WELCOME-")
    assert f"🎁 A welcome gift for you: code {code}, 10% off. For orders of HK$300 or more." in text
    assert "It is applied at checkout." in text
    # Get Started again (a new device): the usual welcome, no second code.
    await stack.emulator.deliver_postback(PAGE_ID, NEW, "GET_STARTED")

    async def two_welcomes() -> bool:
        return len(await chat(stack, NEW)) == 2

    await wait_until(two_welcomes, what="the second welcome")
    assert "gift" not in (await chat(stack, NEW))[1]
    assert await codes_of(stack, NEW) == [code]

    # Joining through a member's link: the referral welcome carries the code too.
    z_code = await code_from_card(stack, NEW)
    await stack.emulator.deliver_postback(PAGE_ID, FRIEND, "GET_STARTED", ref=z_code)
    text = await wait_for_text(stack, FRIEND, "A welcome gift")
    [friend_code] = await codes_of(stack, FRIEND)
    assert friend_code in text and "50 points are yours" in text and friend_code != code

    # Their checkout applies it by itself once the cart reaches the minimum spend (A is HK$380).
    token = await comment_and_wait(stack, "A+1", psid=NEW)
    page = await (await stack.client.get(f"/checkout/{token}")).text()
    assert f'value="{code}"' in page and "HK$342" in page


async def test_a_member_never_holds_two_signup_codes(sessions: async_sessionmaker[AsyncSession]) -> None:
    coupon_id = await signup_coupon(sessions)
    async with sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE, "11", now=T0)
        session.add(
            MemberIdentity(
                member_id=member.id or 0,
                kind=IdentityKind.PSID.value,
                value=psid_identity(OTHER_PAGE, "22"),
                created_at=T0,
            )
        )
    async with sessions() as session, session.begin():
        first = await give_signup_code(session, member.id or 0, (PAGE, "11"), T0)
    async with sessions() as session, session.begin():  # asked again through the member's other Page
        second = await give_signup_code(session, member.id or 0, (OTHER_PAGE, "22"), T0)
    assert first is not None and second is not None and first.code == second.code
    async with sessions() as session:
        assert len((await session.execute(select(CouponCode))).all()) == 1
    # Stopped: nobody gets one any more.
    async with sessions() as session, session.begin():
        await stop_coupon(session, coupon_id, T0)
    async with sessions() as session, session.begin():
        other, _ = await fetch_or_create_member(session, PAGE, "33", now=T0)
        assert await give_signup_code(session, other.id or 0, (PAGE, "33"), T0) is None


def test_the_gift_is_said_in_the_members_language() -> None:
    ten = Discount(DiscountKind.AMOUNT, D(50))
    english = signup_gift("en", "WELCOME-7K2QXM", ten, D(300), None, "HKD")
    chinese = signup_gift("zh_Hant", "WELCOME-7K2QXM", ten, D(300), None, "HKD")
    assert english.startswith("🎁 A welcome gift for you: code WELCOME-7K2QXM, HK$50 off.")
    assert chinese.startswith("🎁 送你一份見面禮：優惠碼 WELCOME-7K2QXM，減HK$50。")
    assert "HK$300" in chinese and chinese != english


async def test_a_shopper_whose_first_contact_is_checkout_gets_their_code_after_the_summary(bot_stack: Stack) -> None:
    stack = bot_stack
    await seed_shop(stack.sessions)
    await signup_coupon(stack.sessions)
    shopper = "3000000000804"
    token = await comment_and_wait(stack, "A+1", psid=shopper, number=41)
    page = await (await stack.client.get(f"/checkout/{token}")).text()
    status, _ = await post(stack, token, {**VALID, **form_of(page)})
    assert status == 200
    [code] = await codes_of(stack, shopper)
    [gift] = await stack.rows(select(OutboxMessage).where(OutboxMessage.idempotency_key.like("signup-gift:%")))
    assert code in gift.payload and "Welcome to our members' club!" in gift.payload
    # The next checkout: a member already, no second gift.
    token = await comment_and_wait(stack, "A+1", psid=shopper, number=42)
    page = await (await stack.client.get(f"/checkout/{token}")).text()
    status, _ = await post(stack, token, {**VALID, **form_of(page)})
    assert status == 200
    assert await codes_of(stack, shopper) == [code]
    assert len(await stack.rows(select(OutboxMessage).where(OutboxMessage.idempotency_key.like("signup-gift:%")))) == 1
