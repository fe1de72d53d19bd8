"""Blocked buyers: blocked from the buyer panel, their orders hold nothing and get a polite answer; unpaid counts."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from bot.inbox.auth import add_user
from bot.runtime.clock import utcnow
from bot.store.tables import BlockedBuyer, CommentLog, Conversation
from carts.order_rules import format_order_number
from carts.order_tables import Order
from carts.tables import Product, StockClaim
from tests.conftest import ADMIN_TOKEN, PAGE_ID, wait_until
from tests.test_bot.stack import Stack, sends, shopper_writes
from tests.test_bot.test_handlers.test_comments import private_replies, seed_shop
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in

POST_OBJECT = "2000000000001"
POLITE_EN = "Please send us a message here first"
POLITE_ZH = "請先在這裡傳訊息給我們"


async def staff(stack: Stack) -> None:
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
        await add_user(session, "other", PASSWORD, "agent", ["1000000000002"])


async def chat_of(stack: Stack, psid: str) -> int:
    await shopper_writes(stack, psid, "hi")
    [conversation] = await stack.rows(select(Conversation).where(Conversation.psid == psid))
    return conversation.id


async def post(stack: Stack, path: str, csrf_page: str, **form: str) -> Any:
    csrf = await csrf_of(stack, csrf_page)
    return await stack.client.post(path, data={"csrf": csrf, **form}, allow_redirects=False)


async def claims_of(stack: Stack, psid: str) -> list[StockClaim]:
    return await stack.rows(select(StockClaim).where(StockClaim.psid == psid))


async def reply_to(stack: Stack, comment_id: str) -> str:
    async def replied() -> bool:
        return any(c["body"]["recipient"] == {"comment_id": comment_id} for c in await private_replies(stack))

    await wait_until(replied, what=f"the private reply to {comment_id}")
    [call] = [c for c in await private_replies(stack) if c["body"]["recipient"] == {"comment_id": comment_id}]
    message = call["body"]["message"]
    return message.get("text") or message["attachment"]["payload"]["text"]


async def test_an_agent_blocks_and_the_buyers_order_comments_hold_nothing_and_get_a_polite_answer(
    bot_stack: Stack,
) -> None:
    await seed_shop(bot_stack.sessions, stock=5)
    await staff(bot_stack)
    blocked, other = "3000000000701", "3000000000702"
    cid = await chat_of(bot_stack, blocked)
    await sign_in(bot_stack, "agent")
    response = await post(bot_stack, f"/inbox/c/{cid}/block", f"/inbox/c/{cid}", reason="  3 orders never paid ")
    assert response.status == 303
    [row] = await bot_stack.rows(select(BlockedBuyer))
    assert (row.page_id, row.psid, row.reason, row.blocked_by) == (PAGE_ID, blocked, "3 orders never paid", "agent")
    panel = await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()
    assert "Blocked" in panel and "3 orders never paid" in panel
    assert f'action="/inbox/c/{cid}/unblock"' not in panel  # an agent does not unblock

    await bot_stack.emulator.deliver_comment(PAGE_ID, POST_OBJECT, blocked, "A+2", comment_id=f"{POST_OBJECT}_701")
    await bot_stack.emulator.deliver_comment(PAGE_ID, POST_OBJECT, other, "A+1", comment_id=f"{POST_OBJECT}_702")
    text = await reply_to(bot_stack, f"{POST_OBJECT}_701")
    assert POLITE_EN in text and "block" not in text.lower()
    assert "added" in await reply_to(bot_stack, f"{POST_OBJECT}_702")  # the next shopper is served as before
    assert await claims_of(bot_stack, blocked) == []
    [held] = await claims_of(bot_stack, other)
    async with bot_stack.sessions() as session:
        product = (await session.execute(select(Product).where(Product.code == "A"))).scalar_one()
    assert (held.status, product.held) == ("held", 1)  # only the other shopper's unit
    [log] = await bot_stack.rows(select(CommentLog).where(CommentLog.comment_id == f"{POST_OBJECT}_701"))
    assert log.outcome == "blocked"
    board = await (await bot_stack.client.get("/inbox/board/live")).text()
    assert "Blocked buyer: nothing held" in board

    # In Chinese when they write in Chinese, and still nothing held.
    await bot_stack.emulator.deliver_comment(PAGE_ID, POST_OBJECT, blocked, "A+1 唔該", comment_id=f"{POST_OBJECT}_703")
    assert POLITE_ZH in await reply_to(bot_stack, f"{POST_OBJECT}_703")
    # An edit asking for more claims nothing either.
    await bot_stack.emulator.deliver_comment(
        PAGE_ID, POST_OBJECT, blocked, "A+3", comment_id=f"{POST_OBJECT}_701", verb="edited"
    )

    async def edit_decided() -> bool:
        rows = await bot_stack.rows(
            select(CommentLog).where(CommentLog.comment_id == f"{POST_OBJECT}_701", CommentLog.verb == "edited")
        )
        return bool(rows) and rows[0].outcome == "blocked"

    await wait_until(edit_decided, what="the edit's outcome")
    assert await claims_of(bot_stack, blocked) == []


async def test_only_an_owner_unblocks_and_then_the_buyer_orders_again(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions, stock=5)
    await staff(bot_stack)
    psid = "3000000000711"
    cid = await chat_of(bot_stack, psid)
    await sign_in(bot_stack, "agent")
    assert (await post(bot_stack, f"/inbox/c/{cid}/block", f"/inbox/c/{cid}")).status == 303
    listed = await (await bot_stack.client.get("/inbox/blocked")).text()
    assert psid in listed and 'action="/inbox/blocked/unblock"' not in listed
    refused = await post(bot_stack, f"/inbox/c/{cid}/unblock", f"/inbox/c/{cid}")
    assert refused.status == 403
    refused = await post(bot_stack, "/inbox/blocked/unblock", "/inbox/blocked", page_id=PAGE_ID, psid=psid)
    assert refused.status == 403
    assert len(await bot_stack.rows(select(BlockedBuyer))) == 1

    await sign_in(bot_stack, "other")  # another Page's user: not found, not forbidden
    assert (await post(bot_stack, f"/inbox/c/{cid}/block", "/inbox/blocked")).status == 404
    listed = await (await bot_stack.client.get("/inbox/blocked")).text()
    assert psid not in listed

    await sign_in(bot_stack, "owner")
    response = await post(bot_stack, "/inbox/blocked/unblock", "/inbox/blocked", page_id=PAGE_ID, psid=psid)
    assert response.status == 303
    assert await bot_stack.rows(select(BlockedBuyer)) == []
    await bot_stack.emulator.deliver_comment(PAGE_ID, POST_OBJECT, psid, "A+1", comment_id=f"{POST_OBJECT}_711")
    assert "added" in await reply_to(bot_stack, f"{POST_OBJECT}_711")
    assert [c.status for c in await claims_of(bot_stack, psid)] == ["held"]


async def test_a_reason_too_long_is_refused_beside_the_field_and_blocks_nobody(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await staff(bot_stack)
    cid = await chat_of(bot_stack, "3000000000721")
    await sign_in(bot_stack, "owner")
    typed = "never pays " * 40
    response = await post(bot_stack, f"/inbox/c/{cid}/block", f"/inbox/c/{cid}", reason=typed)
    page = await response.text()
    assert response.status == 400
    assert 'id="block-error"' in page and "at most 300 characters" in page
    assert " ".join(typed.split()) in page  # what was typed is kept
    assert await bot_stack.rows(select(BlockedBuyer)) == []


async def test_a_blocked_buyer_picking_a_size_in_messenger_claims_nothing(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await staff(bot_stack)
    psid = "3000000000731"
    await bot_stack.emulator.deliver_comment(PAGE_ID, POST_OBJECT, psid, "B+1", comment_id=f"{POST_OBJECT}_731")
    question = await reply_to(bot_stack, f"{POST_OBJECT}_731")
    assert "size" in question.lower()
    target = {"comment_id": f"{POST_OBJECT}_731"}
    [call] = [c for c in await private_replies(bot_stack) if c["body"]["recipient"] == target]
    size_l = next(q for q in call["body"]["message"]["quick_replies"] if q["title"] == "L")
    cid = await chat_of(bot_stack, psid)
    await sign_in(bot_stack, "agent")
    assert (await post(bot_stack, f"/inbox/c/{cid}/block", f"/inbox/c/{cid}")).status == 303
    await bot_stack.emulator.deliver_message(PAGE_ID, psid, "L", quick_reply=size_l["payload"])

    async def answered() -> bool:
        return any(
            c["body"]["recipient"].get("id") == psid and POLITE_EN in (c["body"]["message"].get("text") or "")
            for c in await sends(bot_stack)
        )

    await wait_until(answered, what="the polite answer in Messenger")
    assert await claims_of(bot_stack, psid) == []


async def add_order(stack: Stack, psid: str, n: int, status: str, *, paid: bool = False, merged: bool = False) -> None:
    now = utcnow()
    amount = Decimal(0) if merged else Decimal(380)
    async with stack.sessions() as session, session.begin():
        order = Order(
            page_id=PAGE_ID,
            psid=psid,
            checkout_nonce=f"nonce-{psid}-{n}",
            status=status,
            currency="HKD",
            subtotal=amount,
            total=amount,
            customer_name="Mei",
            phone="91234567",
            delivery_method="pickup",
            placed_at=now - timedelta(days=n),
            paid_at=now if paid else None,
            updated_at=now,
        )
        session.add(order)
        await session.flush()
        order.number = format_order_number(order.id or 0)  # as checkout numbers it


async def test_the_unpaid_count_on_the_panel_and_the_list_is_the_databases(bot_stack: Stack) -> None:
    await staff(bot_stack)
    psid, good = "3000000000741", "3000000000742"
    cid = await chat_of(bot_stack, psid)
    await chat_of(bot_stack, good)
    plan = [
        ("pending_payment", False, False),
        ("pending_payment", False, False),
        ("expired", False, False),
        ("cancelled", False, False),
        ("cancelled", False, True),  # merged into another order: not an unpaid one of its own
        ("paid", True, False),
        ("delivered", True, False),
        ("returned", True, False),
    ]
    for n, (status, paid, merged) in enumerate(plan):
        await add_order(bot_stack, psid, n, status, paid=paid, merged=merged)
    await add_order(bot_stack, good, 20, "paid", paid=True)
    async with bot_stack.sessions() as session:
        counted = (
            await session.execute(
                select(func.count(Order.id)).where(
                    Order.psid == psid,
                    Order.paid_at.is_(None),
                    Order.status.in_(["pending_payment", "expired", "cancelled"]),
                    Order.total > 0,
                )
            )
        ).scalar_one()
    assert counted == 4
    await sign_in(bot_stack, "agent")
    panel = (await (await bot_stack.client.get(f"/inbox/c/{cid}")).text()).split('id="standing"')[1]
    assert re.search(rf'class="tag unpaid"[^>]*>{counted} unpaid<', panel)
    listing = await (await bot_stack.client.get("/inbox")).text()
    rows = re.findall(r'<li class="conv[^"]*">(.*?)</li>', listing, re.S)
    mine = next(r for r in rows if f'/inbox/c/{cid}"' in r)
    theirs = next(r for r in rows if f'/inbox/c/{cid}"' not in r)
    assert f">{counted} unpaid<" in mine
    assert "unpaid" not in theirs


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_the_admin_api_blocks_and_unblocks_with_the_inboxs_rules(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions, stock=5)
    psid = "3000000000751"
    base = f"/api/pages/{PAGE_ID}/blocked-buyers"
    refused = [
        (await bot_stack.client.put(f"{base}/{psid}", json={"reason": "x" * 301}, headers=ADMIN), 400),
        (await bot_stack.client.put(f"{base}/{psid}", json={"why": "late"}, headers=ADMIN), 400),
        (await bot_stack.client.put(f"{base}/{psid}", json={"reason": 3}, headers=ADMIN), 400),
        (await bot_stack.client.put(f"{base}/{psid}", data="[]", headers=ADMIN), 400),
        (await bot_stack.client.put(f"{base}/not-a-psid", json={}, headers=ADMIN), 404),
        (await bot_stack.client.delete(f"{base}/{psid}", headers=ADMIN), 404),
        (await bot_stack.client.put(f"{base}/{psid}", json={}), 401),
    ]
    for response, status in refused:
        assert response.status == status
        assert "error" in await response.json()
    assert (await refused[0][0].json())["error"] == "Reason: at most 300 characters."
    assert await bot_stack.rows(select(BlockedBuyer)) == []

    response = await bot_stack.client.put(
        f"{base}/{psid}", json={"reason": " never  pays ", "by": "ops"}, headers=ADMIN
    )
    assert (response.status, (await response.json())["created"]) == (201, True)
    response = await bot_stack.client.put(f"{base}/{psid}", headers=ADMIN)  # again: already blocked
    assert (response.status, (await response.json())["created"]) == (200, False)
    listed = await (await bot_stack.client.get(base, headers=ADMIN)).json()
    assert [(b["psid"], b["reason"], b["by"]) for b in listed["blocked"]] == [(psid, "never pays", "ops")]
    await bot_stack.emulator.deliver_comment(PAGE_ID, POST_OBJECT, psid, "A+1", comment_id=f"{POST_OBJECT}_751")
    assert POLITE_EN in await reply_to(bot_stack, f"{POST_OBJECT}_751")
    assert await claims_of(bot_stack, psid) == []

    response = await bot_stack.client.delete(f"{base}/{psid}", headers=ADMIN)
    assert response.status == 200
    assert await bot_stack.rows(select(BlockedBuyer)) == []
