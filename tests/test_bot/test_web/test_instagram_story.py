"""Instagram, end to end through the whole app on the Graph emulator (issue 18, "Instagram").

The shop's Page is linked to an Instagram professional account (the shop file's `instagram:`); Instagram's
webhooks name the account, and the Page's token answers for it through the same pipeline as Facebook:
a comment `A+1` on an Instagram post gets one private reply with the cart, the shopper checks out, the
order is placed and the member linked to the Instagram identity; Direct messages get the FAQ; an account
the shop does not know pauses nothing; Meta's Instagram refusals are final.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.inbound import webhook_factory as wf
from bot.inbox.auth import add_user
from bot.outbound.outbox import enqueue_message
from bot.replies.chat import PUBLIC_FALLBACK_INSTAGRAM
from bot.runtime.clock import utcnow
from bot.store.tables import (
    CommentLog,
    Conversation,
    InstagramAccount,
    LiveVideo,
    Message,
    OutboxMessage,
    PageState,
    ProcessedEvent,
)
from carts.order_tables import Order
from carts.orders import fetch_or_create_checkout_token
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.tables import ContactClaim
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import IG_ACCOUNT, Stack, sends
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_handlers.test_faq import load_sample, rule
from tests.test_bot.test_inbox.test_inbox import PASSWORD, sign_in
from tests.test_bot.test_web.test_checkout import VALID, comment_and_wait, form_of, post

MEDIA = "17918195224117851"  # an Instagram post of the shop's account
LIVE = "17918195224117852"  # an Instagram live of it
IGSID = "1253947108412238"  # a shopper's Instagram-scoped id
FB_SHOPPER = "3000000000301"  # a shopper's Page-scoped id on Facebook


async def link_instagram(stack: Stack) -> None:
    """What loading `instagram: [{account_id: IG_ACCOUNT}]` does: the account is the Page's."""
    async with stack.sessions() as session, session.begin():
        session.add(InstagramAccount(account_id=IG_ACCOUNT, page_id=PAGE_ID, updated_at=utcnow()))


async def sell_on_instagram(stack: Stack, *, live: bool = False) -> None:
    """The test shop (rose bouquet A, linen shirt B), and a campaign on the Instagram post (or live)."""
    await seed_shop(stack.sessions)
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        campaign = Campaign(
            key="instagram",
            title="On Instagram",
            page_id=PAGE_ID,
            post_id=None if live else MEDIA,
            live_video_id=LIVE if live else None,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=2),
            created_at=now,
            updated_at=now,
        )
        session.add(campaign)
        await session.flush()
        for product in (await session.execute(select(Product))).scalars():
            session.add(CampaignProduct(campaign_id=campaign.id, product_id=product.id, order_code=product.code))  # type: ignore[arg-type]
    await link_instagram(stack)


async def private_replies(stack: Stack) -> list[dict[str, Any]]:
    return [c for c in await sends(stack) if "comment_id" in c["body"]["recipient"]]


async def test_an_instagram_comment_gets_its_cart_privately_checks_out_and_links_the_member(bot_stack: Stack) -> None:
    stack = bot_stack
    await sell_on_instagram(stack)
    await stack.emulator.instagram_media(IG_ACCOUNT, MEDIA)

    # A shopper comments A+1 on the Instagram post.
    played = await stack.emulator.instagram_comment(IG_ACCOUNT, MEDIA, IGSID, "A+1", username="ann.chan")
    assert played["status"] == 200

    async def held() -> bool:
        return bool(await stack.rows(select(StockClaim).where(StockClaim.psid == IGSID, StockClaim.status == "held")))

    await wait_until(held, what="stock held for the Instagram shopper")
    [log] = await stack.rows(select(CommentLog))
    assert (log.page_id, log.channel, log.post_id) == (PAGE_ID, "instagram", MEDIA)

    # One private reply, through the Page (Instagram Messaging via the Messenger Platform), with the cart.
    async def replied() -> bool:
        return any(c["status"] == 200 for c in await private_replies(stack))

    await wait_until(replied, what="the private reply to the Instagram comment")
    [reply] = [c for c in await private_replies(stack) if c["status"] == 200]
    assert reply["path"].endswith(f"/{PAGE_ID}/messages")
    assert reply["body"]["recipient"] == {"comment_id": played["comment_id"]}
    payload = reply["body"]["message"]["attachment"]["payload"]
    assert "✅ A Rose bouquet ×1 added" in payload["text"] and "HK$380" in payload["text"]
    assert payload["buttons"][0]["type"] == "web_url"  # the checkout link

    # Its echo (inside `messages`, from the account) lands in the shopper's Instagram conversation.
    async def echoed() -> bool:
        rows = await stack.rows(select(OutboxMessage).where(OutboxMessage.kind == "private_reply"))
        return bool(rows) and rows[0].status == "sent" and rows[0].confirmed_at is not None

    await wait_until(echoed, limit=20, what="the private reply confirmed by its echo")
    [conversation] = await stack.rows(select(Conversation).where(Conversation.psid == IGSID))
    assert (conversation.page_id, conversation.channel) == (PAGE_ID, "instagram")

    # The shopper checks out through the link: the order is placed, for the Instagram shopper.
    async with stack.sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE_ID, IGSID, utcnow())
    html = await (await stack.client.get(f"/checkout/{token}")).text()
    assert "Rose bouquet" in html
    status, page = await post(stack, token, {**VALID, **form_of(html)})
    assert status == 200 and "confirmed" in page
    [order] = await stack.rows(select(Order))
    assert (order.page_id, order.psid, order.status) == (PAGE_ID, IGSID, "pending_payment")

    # The member is linked to the Instagram identity (and no other shopper's).
    async def member_linked() -> bool:
        async with stack.sessions() as session:
            return await fetch_member_by_psid(session, PAGE_ID, IGSID) is not None

    await wait_until(member_linked, limit=20, what="the member linked to the Instagram shopper")
    async with stack.sessions() as session:
        member = await fetch_member_by_psid(session, PAGE_ID, IGSID)
    assert member is not None and member.name == VALID["name"]
    # The inbox shows the conversation as Instagram's, and its buyer panel has the order.
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
    await sign_in(stack, "owner")
    listing = await (await stack.client.get("/inbox")).text()
    assert 'class="tag channel instagram">Instagram<' in listing and "Facebook<" not in listing
    thread = await stack.client.get(f"/inbox/c/{conversation.id}")
    assert thread.status == 200 and 'class="tag channel instagram">Instagram<' in await thread.text()
    panel = await (await stack.client.get(f"/inbox/c/{conversation.id}/part/panel")).text()
    assert order.number in panel
    # Nothing went the Facebook way: no public reply, no comment under a Facebook post.
    assert not [c for c in await sends(stack, "/comments")] and not [c for c in await sends(stack, "/replies")]


async def test_an_instagram_direct_message_gets_the_faq_in_its_own_conversation(bot_stack: Stack) -> None:
    stack = bot_stack
    shop = await load_sample(stack)  # its `instagram:` links the demo's account to the Page
    assert [(a.account_id, a.page_id) for a in shop.instagram or ()] == [(IG_ACCOUNT, PAGE_ID)]

    played = await stack.emulator.instagram_message(IG_ACCOUNT, IGSID, "營業時間？")
    assert played["status"] == 200

    async def answered() -> bool:
        return any(c["body"]["recipient"] == {"id": IGSID} and c["status"] == 200 for c in await sends(stack))

    await wait_until(answered, what="the FAQ answer in Instagram Direct")
    [answer] = [c for c in await sends(stack) if c["body"]["recipient"] == {"id": IGSID}]
    assert answer["path"].endswith(f"/{PAGE_ID}/messages")
    assert answer["body"]["message"]["text"] == rule(shop, "hours").reply.text
    [conversation] = await stack.rows(select(Conversation).where(Conversation.psid == IGSID))
    assert (conversation.page_id, conversation.channel) == (PAGE_ID, "instagram")
    assert conversation.last_user_at is not None  # the shopper's own message opened the 24-hour window

    # The shopper unsends a message: nothing breaks, nothing is answered.
    unsent = wf.messaging_delivery(
        IG_ACCOUNT,
        [
            {
                "sender": {"id": IGSID},
                "recipient": {"id": IG_ACCOUNT},
                "timestamp": int(utcnow().timestamp() * 1000),
                "message": {"mid": played["mid"], "is_deleted": True},
            }
        ],
        obj="instagram",
    )
    assert (await stack.emulator.deliver_raw(unsent))["status"] == 200
    # They saw our answer: Instagram's messaging_seen names it.
    async with stack.sessions() as session:
        mid = (await session.execute(select(Message.mid).where(Message.direction == "out"))).scalars().first()
    if mid:
        assert (await stack.emulator.instagram_seen(IG_ACCOUNT, IGSID, mid))["status"] == 200


async def test_an_unknown_instagram_account_is_acknowledged_and_pauses_nothing(bot_stack: Stack) -> None:
    stack = bot_stack
    await seed_shop(stack.sessions)  # no instagram: link
    item = wf.message_item(page_id="17841499999999999", psid=IGSID, text="hi")
    delivery = wf.messaging_delivery("17841499999999999", [item], obj="instagram")
    assert (await stack.emulator.deliver_raw(delivery))["status"] == 200  # acknowledged

    # Then a Facebook shopper's message is handled: the worker went past it, and nothing was queued for it.
    fb = wf.message_item(page_id=PAGE_ID, psid="3000000000701", text="hi")
    assert (await stack.emulator.deliver_raw(wf.messaging_delivery(PAGE_ID, [fb])))["status"] == 200

    async def handled() -> bool:
        return bool(await stack.rows(select(ProcessedEvent).where(ProcessedEvent.key == f"mid:{fb['message']['mid']}")))

    await wait_until(handled, what="the next delivery handled")
    assert await stack.rows(select(OutboxMessage).where(OutboxMessage.psid == IGSID)) == []
    assert await stack.rows(select(Conversation).where(Conversation.psid == IGSID)) == []
    assert await stack.rows(select(PageState).where(PageState.sending_paused.is_(True))) == []
    assert not [c for c in await stack.emulator.calls() if "17841499999999999" in c["path"]]


async def test_outside_the_window_meta_answers_instagrams_code_and_it_is_final(bot_stack: Stack) -> None:
    stack = bot_stack
    await load_sample(stack)
    played = await stack.emulator.instagram_message(IG_ACCOUNT, IGSID, "hi")
    assert played["status"] == 200

    async def recorded() -> bool:
        return bool(await stack.rows(select(Conversation).where(Conversation.psid == IGSID)))

    await wait_until(recorded, what="the Instagram conversation")
    # Meta's window closed (25 hours on its clock) while ours still thinks it open: Meta's word is final.
    await stack.emulator.set_clock_offset(25 * 3600)
    outbox_id = await stack.enqueue(enqueue_message, key="late", page_id=PAGE_ID, psid=IGSID, message={"text": "hi"})
    row = await stack.settled(outbox_id, "failed")
    assert (row.error_code, row.error_subcode, row.error_class) == (10, 2534022, "outside_window")
    assert row.attempts == 1  # not retried


async def test_a_live_comments_reply_goes_only_while_the_live_is_live(bot_stack: Stack) -> None:
    stack = bot_stack
    await sell_on_instagram(stack, live=True)
    await stack.emulator.instagram_media(IG_ACCOUNT, LIVE, media_product_type="LIVE")
    # The merchant stopped the live in the inbox before the reply (which waits a few seconds) could go.
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        session.add(
            LiveVideo(
                video_id=LIVE,
                page_id=PAGE_ID,
                status="live_stopped",
                started_by="merchant",
                started_at=now - timedelta(minutes=30),
                ended_at=now + timedelta(seconds=1),
                updated_at=now,
            )
        )
    played = await stack.emulator.instagram_comment(IG_ACCOUNT, LIVE, IGSID, "A+1")
    assert played["status"] == 200

    async def settled() -> bool:
        rows = await stack.rows(select(OutboxMessage).where(OutboxMessage.kind == "private_reply"))
        return bool(rows) and rows[0].status not in ("pending", "sending")

    await wait_until(settled, what="the live comment's private reply decided")
    [row] = await stack.rows(select(OutboxMessage).where(OutboxMessage.kind == "private_reply"))
    assert (row.status, row.error_class) == ("refused", "private_reply_live_ended")
    assert await private_replies(stack) == []  # never asked of Meta
    [log] = await stack.rows(select(CommentLog))
    assert log.reply_status == "refused" and log.source == "instagram_live"
    # No public fallback under a live that is over.
    assert await stack.rows(select(OutboxMessage).where(OutboxMessage.kind == "comment_reply")) == []


async def test_when_the_private_reply_fails_for_good_the_public_one_goes_through_instagrams_replies(
    bot_stack: Stack,
) -> None:
    stack = bot_stack
    await sell_on_instagram(stack)
    await stack.emulator.instagram_media(IG_ACCOUNT, MEDIA)
    # The shopper cannot receive messages from the account (Meta's 551): a final refusal.
    await stack.emulator.set_fault("blocked", count=1, path_contains="/messages")
    played = await stack.emulator.instagram_comment(IG_ACCOUNT, MEDIA, IGSID, "A+1")
    assert played["status"] == 200

    async def public_reply() -> bool:
        return any(c["status"] == 200 for c in await sends(stack, "/replies"))

    await wait_until(public_reply, what="the public reply under the Instagram comment")
    [call] = await sends(stack, "/replies")
    assert call["path"].endswith(f"/{played['comment_id']}/replies")
    assert call["body"]["message"] == PUBLIC_FALLBACK_INSTAGRAM  # "send us a Direct message on Instagram"
    assert await sends(stack, "/comments") == []  # never Facebook's comment edge


async def test_the_same_phone_on_facebook_and_instagram_is_a_claim_never_a_merge(bot_stack: Stack) -> None:
    """Members are merged across Facebook and Instagram only on proof: a phone both checkouts typed is not."""
    stack = bot_stack
    await sell_on_instagram(stack)
    await stack.emulator.instagram_media(IG_ACCOUNT, MEDIA)
    facebook_token = await comment_and_wait(stack, "A+1", psid=FB_SHOPPER)
    played = await stack.emulator.instagram_comment(IG_ACCOUNT, MEDIA, IGSID, "A+1")
    assert played["status"] == 200

    async def held() -> bool:
        return bool(await stack.rows(select(StockClaim).where(StockClaim.psid == IGSID, StockClaim.status == "held")))

    await wait_until(held, what="the Instagram shopper's hold")
    async with stack.sessions() as session, session.begin():
        instagram_token = await fetch_or_create_checkout_token(session, PAGE_ID, IGSID, utcnow())
    for token in (facebook_token, instagram_token):  # the same name and phone typed in both
        html = await (await stack.client.get(f"/checkout/{token}")).text()
        status, _ = await post(stack, token, {**VALID, **form_of(html)})
        assert status == 200

    async def both_members() -> bool:
        async with stack.sessions() as session:
            found = [await fetch_member_by_psid(session, PAGE_ID, psid) for psid in (FB_SHOPPER, IGSID)]
        return all(found)

    await wait_until(both_members, what="a member for each shopper")
    async with stack.sessions() as session:
        facebook = await fetch_member_by_psid(session, PAGE_ID, FB_SHOPPER)
        instagram = await fetch_member_by_psid(session, PAGE_ID, IGSID)
    assert facebook is not None and instagram is not None and facebook.id != instagram.id  # two people, for now

    async def claimed() -> bool:
        return bool(await stack.rows(select(ContactClaim)))

    await wait_until(claimed, what="the second checkout's phone kept as a claim")
    [claim] = await stack.rows(select(ContactClaim))
    assert claim.kind == "phone" and {claim.member_id, claim.owner_id} == {facebook.id, instagram.id}


async def test_cart_and_a_person_in_instagram_direct(bot_stack: Stack) -> None:
    """The cart command and the hand-off work in Instagram Direct as in Messenger (the same handlers)."""
    stack = bot_stack
    await sell_on_instagram(stack)
    await stack.emulator.instagram_media(IG_ACCOUNT, MEDIA)
    await stack.emulator.instagram_comment(IG_ACCOUNT, MEDIA, IGSID, "A+1")

    async def held() -> bool:
        return bool(await stack.rows(select(StockClaim).where(StockClaim.psid == IGSID, StockClaim.status == "held")))

    await wait_until(held, what="the hold")
    assert (await stack.emulator.instagram_message(IG_ACCOUNT, IGSID, "cart"))["status"] == 200

    async def direct() -> list[dict[str, Any]]:
        return [c["body"]["message"] for c in await sends(stack) if c["body"]["recipient"] == {"id": IGSID}]

    async def cart_shown() -> bool:
        return any("Rose bouquet" in json.dumps(m, ensure_ascii=False) for m in await direct())

    await wait_until(cart_shown, what="the cart in Instagram Direct")
    assert (await stack.emulator.instagram_message(IG_ACCOUNT, IGSID, "talk to a person"))["status"] == 200

    async def handed_off() -> bool:
        rows = await stack.rows(select(Conversation).where(Conversation.psid == IGSID))
        return bool(rows) and rows[0].handoff_reason == "shopper_asked"

    await wait_until(handed_off, what="the hand-off asked in Instagram Direct")
