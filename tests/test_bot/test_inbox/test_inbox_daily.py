"""The inbox as a shop's staff use it all day (issue 19): the list's previews and unread counts, the comment
that started a chat in its thread, search by comment, phone and order number, who answers and "Hand back to
the bot", and "Add by code" within the shopper's campaign, its error beside the form, one hold per line."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select, update

from bot.runtime.clock import utcnow
from bot.store.tables import CommentLog, Conversation, Message, OutboxMessage
from carts.orders import fetch_checkout, fetch_or_create_checkout_token, place_order
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack, shopper_writes
from tests.test_bot.test_handlers.test_comments import POST, seed_shop
from tests.test_bot.test_inbox.test_inbox import FORM, csrf_of, sign_in, users

OTHER_POST = f"{PAGE_ID}_2000000000009"


async def conversation_of(stack: Stack, psid: str) -> Conversation:
    return (await stack.rows(select(Conversation).where(Conversation.psid == psid)))[0]


async def bot_answered(stack: Stack, psid: str) -> None:
    conversation = await conversation_of(stack, psid)

    async def sent() -> bool:
        return bool(
            await stack.rows(select(Message).where(Message.conversation_id == conversation.id, Message.author == "bot"))
        )

    await wait_until(sent, what="the bot's answer recorded")


def row_of(listing: str, conversation_id: int) -> str:
    """The list's row of one conversation."""
    return listing.split(f'href="/inbox/c/{conversation_id}"')[1].split("</li>")[0]


async def test_the_list_previews_the_shoppers_message_and_counts_only_what_the_bot_did_not_answer(
    bot_stack: Stack,
) -> None:
    # given: one shopper asks for their cart (the bot answers it), another says hi (the bot can only say
    # "we'll reply soon", which answers nothing)
    await users(bot_stack)
    await shopper_writes(bot_stack, "3000000000801", "cart")
    await shopper_writes(bot_stack, "3000000000802", "hi there")
    await bot_answered(bot_stack, "3000000000801")
    await bot_answered(bot_stack, "3000000000802")
    answered = await conversation_of(bot_stack, "3000000000801")
    waiting = await conversation_of(bot_stack, "3000000000802")
    await sign_in(bot_stack, "owner")
    listing = await (await bot_stack.client.get("/inbox")).text()
    # then: each row previews the shopper's own words, not the bot's reply
    assert ">cart</span>" in row_of(listing, answered.id or 0)
    assert ">hi there</span>" in row_of(listing, waiting.id or 0)
    assert "You:" not in listing and "Bot:" not in listing
    # and only the message nobody answered is unread
    assert 'class="badge"' not in row_of(listing, answered.id or 0)
    assert 'aria-label="1 unread">1</span>' in row_of(listing, waiting.id or 0)
    # and when a person answers, that is the preview, and nothing is unread any more
    csrf = await csrf_of(bot_stack, f"/inbox/c/{waiting.id}")
    await bot_stack.client.post(
        f"/inbox/c/{waiting.id}/reply", data={"csrf": csrf, "text": "Hello! How can we help?", "nonce": "p1"}
    )
    listing = await (await bot_stack.client.get("/inbox?lang=zh_Hant")).text()
    assert "你：Hello! How can we help?" in row_of(listing, waiting.id or 0)
    assert 'class="badge"' not in row_of(listing, waiting.id or 0)


async def test_labels_assignee_and_a_call_for_a_person_are_pills_of_their_own_row(bot_stack: Stack) -> None:
    await users(bot_stack)
    await shopper_writes(bot_stack, "3000000000803", "真人")
    conversation = await conversation_of(bot_stack, "3000000000803")
    await sign_in(bot_stack, "owner")
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    await bot_stack.client.post(f"/inbox/c/{conversation.id}/labels", data={"csrf": csrf, "labels": "vip, friday live"})
    await bot_stack.client.post(f"/inbox/c/{conversation.id}/assign", data={"csrf": csrf, "assignee": "me"})
    row = row_of(await (await bot_stack.client.get("/inbox?lang=zh_Hant")).text(), conversation.id or 0)
    pills = row.split('<span class="pills">')[1].split('<span class="preview">')[0]
    assert '<span class="tag warn">要求真人</span>' in pills
    assert '<span class="tag label">vip</span>' in pills and '<span class="tag label">friday live</span>' in pills
    assert "→ owner" in pills


async def comment_chat(stack: Stack, psid: str, text: str, number: int) -> Conversation:
    """A shopper who wrote, then commented `text` under the campaign's post; their conversation."""
    await shopper_writes(stack, psid, "hi")
    await stack.emulator.deliver_comment(
        PAGE_ID, POST.split("_", 1)[1], psid, text, comment_id=f"{POST}_{number}", user_name="Chan Tai Man"
    )

    async def decided() -> bool:
        rows = await stack.rows(select(CommentLog).where(CommentLog.comment_id == f"{POST}_{number}"))
        return bool(rows) and rows[0].outcome not in ("received", "pending")

    await wait_until(decided, what="the comment decided")
    return await conversation_of(stack, psid)


async def test_the_comment_that_started_a_chat_is_in_its_thread_with_its_outcome(bot_stack: Stack) -> None:
    await users(bot_stack)
    await seed_shop(bot_stack.sessions, stock=5)
    conversation = await comment_chat(bot_stack, "3000000000804", "B+1 for my sister", 804)
    await sign_in(bot_stack, "owner")
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    thread = page.split('id="thread"')[1].split('id="who"')[0]
    comment = thread.split(f'id="comment-{POST}_804"')[1].split("</li>")[0]
    assert "Commented on the post" in comment and "Live sale" in comment
    assert "B+1 for my sister" in comment and "Waiting for an option (size, colour…)" in comment
    chinese = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}/part/thread?lang=zh_Hant")).text()
    assert "在貼文留言" in chinese and "等待選擇款式（尺碼、顏色…）" in chinese


async def test_search_finds_comments_phone_numbers_as_typed_and_order_numbers(bot_stack: Stack) -> None:
    await users(bot_stack)
    await seed_shop(bot_stack.sessions, stock=5)
    psid = "3000000000805"
    conversation = await comment_chat(bot_stack, psid, "A+1 for my sister", 805)
    async with bot_stack.sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE_ID, psid, utcnow())
        info = await fetch_checkout(session, token, utcnow())
        assert info is not None
        number = (await place_order(session, token, info.nonce, FORM, utcnow())).order.number  # phone +852 9123 4567
    assert number is not None
    await sign_in(bot_stack, "owner")
    link = f'href="/inbox/c/{conversation.id}"'
    for search in ("my sister", "9123 4567", "91234567", "+852 9123-4567", number, number.lower(), "PO-" + number[-1]):
        listing = await (await bot_stack.client.get("/inbox", params={"q": search})).text()
        assert link in listing, search
    for search in ("9123 4568", "PO-999999", "your sister"):
        listing = await (await bot_stack.client.get("/inbox", params={"q": search})).text()
        assert link not in listing, search


async def test_who_answers_is_shown_and_the_inbox_hands_the_chat_back_to_the_bot(bot_stack: Stack) -> None:
    await users(bot_stack)
    psid = "3000000000806"
    await shopper_writes(bot_stack, psid, "hi")
    conversation = await conversation_of(bot_stack, psid)
    await sign_in(bot_stack, "owner")
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    assert "The bot answers this chat." in page
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    # when: the owner replies, the bot stays quiet, and the page says who answers and until when
    await bot_stack.client.post(f"/inbox/c/{conversation.id}/reply", data={"csrf": csrf, "text": "Hi!", "nonce": "h1"})
    taken = await conversation_of(bot_stack, psid)
    assert taken.agent_active_at is not None and taken.agent_name == "owner"
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}?lang=zh_Hant")).text()
    who = page.split('id="who"')[1].split("</section>")[0]
    assert "owner 正在回覆此對話" in who and "機械人會保持靜默直至" in who and "交回機械人" in who
    # a hand-back without the form's token, or to no one, changes nothing
    refused = await bot_stack.client.post(f"/inbox/c/{conversation.id}/handoff", data={"to": "bot"})
    assert refused.status == 403
    wrong = await bot_stack.client.post(f"/inbox/c/{conversation.id}/handoff", data={"csrf": csrf, "to": "nobody"})
    assert wrong.status == 400
    assert (await conversation_of(bot_stack, psid)).agent_active_at is not None
    # when: handed back, the bot answers the shopper's next message at once
    back = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/handoff", data={"csrf": csrf, "to": "bot"}, allow_redirects=False
    )
    assert back.status == 303 and back.headers["Location"].endswith("#who")
    handed = await conversation_of(bot_stack, psid)
    assert handed.agent_active_at is None and handed.agent_name is None
    assert "The bot answers this chat." in await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    before = len(await bot_stack.rows(select(OutboxMessage).where(OutboxMessage.author == "bot")))
    await shopper_writes(bot_stack, psid, "cart")

    async def answered() -> bool:
        return len(await bot_stack.rows(select(OutboxMessage).where(OutboxMessage.author == "bot"))) > before

    await wait_until(answered, what="the bot answers again")
    # and the owner can pause the bot without writing
    await bot_stack.client.post(f"/inbox/c/{conversation.id}/handoff", data={"csrf": csrf, "to": "person"})
    assert (await conversation_of(bot_stack, psid)).agent_name == "owner"


async def other_campaign(stack: Stack) -> None:
    """Another post's campaign selling C (colours): not the commenting shopper's."""
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        product = Product(
            code="C",
            name="Silk scarf",
            price=100,  # type: ignore[arg-type]
            stock=10,
            variants=json.dumps({"colour": ["Red", "Blue"]}),
            created_at=now,
            updated_at=now,
        )
        campaign = Campaign(
            key="other",
            title="Other post",
            page_id=PAGE_ID,
            post_id=OTHER_POST,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
            created_at=now,
            updated_at=now,
        )
        session.add_all([product, campaign])
        await session.flush()
        session.add(CampaignProduct(campaign_id=campaign.id, product_id=product.id, order_code="C"))  # type: ignore[arg-type]


def add_form(page: str) -> str:
    return page.split('id="add-form"')[1].split("</form>")[0]


async def test_add_by_code_offers_the_shoppers_campaign_and_says_what_is_wrong_beside_the_form(
    bot_stack: Stack,
) -> None:
    await users(bot_stack)
    await seed_shop(bot_stack.sessions, stock=5)
    await other_campaign(bot_stack)
    conversation = await comment_chat(bot_stack, "3000000000807", "A+1", 807)
    await sign_in(bot_stack, "owner")
    page = await (await bot_stack.client.get(f"/inbox/c/{conversation.id}")).text()
    form = add_form(page)
    # the campaign's products only, each product's options apart (and none shown before a code is typed)
    assert '<option value="A">' in form and '<option value="B">' in form and '<option value="C">' not in form
    assert "colour" not in form
    assert re.search(r'<fieldset class="add-options" data-code="b" hidden disabled>', form)
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    url = f"/inbox/c/{conversation.id}/cart/add"
    # another campaign's product: refused beside the form, the typed code kept, nothing claimed
    other = await bot_stack.client.post(url, data={"csrf": csrf, "code": "C", "qty": "2", "opt:colour": "Red"})
    assert other.status == 400
    form = add_form(await other.text())
    assert 'id="add-error"' in form and "C is not on sale in this shopper&#39;s campaign." in form
    assert 'value="C"' in form and 'value="2"' in form
    # a product with sizes and none chosen: its own options shown, with the error, in the reader's language
    unsized = await bot_stack.client.post(url + "?lang=zh_Hant", data={"csrf": csrf, "code": "b", "qty": "1"})
    assert unsized.status == 400
    form = add_form(await unsized.text())
    assert "B：請選擇size。" in form and 'value="b"' in form
    assert '<fieldset class="add-options" data-code="b">' in form  # shown: not hidden, not disabled
    products = await bot_stack.rows(select(Product).where(Product.code.in_(["B", "C"])))  # type: ignore[attr-defined]
    claimed = await bot_stack.rows(
        select(StockClaim).where(StockClaim.product_id.in_([p.id for p in products]))  # type: ignore[attr-defined]
    )
    assert claimed == []


async def test_raising_a_quantity_extends_the_one_hold_and_moves_its_expiry(bot_stack: Stack) -> None:
    await users(bot_stack)
    await seed_shop(bot_stack.sessions, stock=5)
    psid = "3000000000808"
    conversation = await comment_chat(bot_stack, psid, "A+1", 808)
    [held] = await bot_stack.rows(select(StockClaim).where(StockClaim.psid == psid))
    soon = utcnow() + timedelta(minutes=5)  # the hold has 5 minutes left when the agent raises it
    async with bot_stack.sessions() as session, session.begin():
        await session.execute(update(StockClaim).where(StockClaim.id == held.id).values(expires_at=soon))
    await sign_in(bot_stack, "owner")
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    product = (await bot_stack.rows(select(Product).where(Product.code == "A")))[0]
    line = {"csrf": csrf, "product_id": str(product.id), "variant": ""}
    raised = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/cart/qty", data={**line, "qty": "3"}, allow_redirects=False
    )
    assert raised.status == 303
    [claim] = await bot_stack.rows(select(StockClaim).where(StockClaim.psid == psid))
    assert (claim.id, claim.status, claim.qty) == (held.id, "held", 3)
    assert claim.expires_at.replace(tzinfo=None) > soon.replace(tzinfo=None) + timedelta(minutes=20)
    assert (await bot_stack.rows(select(Product).where(Product.code == "A")))[0].held == 3
    # more than the stock has: refused with the numbers, nothing changed
    short = await bot_stack.client.post(f"/inbox/c/{conversation.id}/cart/qty", data={**line, "qty": "9"})
    assert short.status == 400 and "Only 2 more of A free: the quantity stays 3." in await short.text()
    assert [c.qty for c in await bot_stack.rows(select(StockClaim).where(StockClaim.psid == psid))] == [3]


async def test_what_the_inbox_refuses_is_said_in_the_readers_language(bot_stack: Stack) -> None:
    await users(bot_stack)
    await shopper_writes(bot_stack, "3000000000809", "hi")
    conversation = await conversation_of(bot_stack, "3000000000809")
    await sign_in(bot_stack, "owner")
    csrf = await csrf_of(bot_stack, f"/inbox/c/{conversation.id}")
    empty = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/reply?lang=zh_Hant", data={"csrf": csrf, "text": " ", "nonce": "z1"}
    )
    assert empty.status == 400 and "請先輸入回覆。" in await empty.text()
    unsent = await bot_stack.client.post(
        f"/inbox/c/{conversation.id}/cart/send?lang=zh_Hant", data={"csrf": csrf, "nonce": "z2"}
    )
    assert unsent.status == 409 and "購物車是空的：請先加入貨品。" in await unsent.text()


async def test_a_chat_begun_by_a_comment_previews_the_comment_not_the_bots_private_reply(bot_stack: Stack) -> None:
    await users(bot_stack)
    await seed_shop(bot_stack.sessions, stock=5)
    psid = "3000000000810"
    await bot_stack.emulator.deliver_comment(
        PAGE_ID, POST.split("_", 1)[1], psid, "A+1 please", comment_id=f"{POST}_810", user_name="Lee Ka Yan"
    )

    async def replied() -> bool:
        conversations = await bot_stack.rows(select(Conversation).where(Conversation.psid == psid))
        return bool(conversations) and bool(
            await bot_stack.rows(select(Message).where(Message.conversation_id == conversations[0].id))
        )

    await wait_until(replied, what="the private reply recorded in a conversation")
    conversation = await conversation_of(bot_stack, psid)
    await sign_in(bot_stack, "owner")
    row = row_of(await (await bot_stack.client.get("/inbox")).text(), conversation.id or 0)
    assert '<span class="preview">Commented: A+1 please</span>' in row
