"""Cart commands in Messenger: `cart` / `購物車` (or the View cart button) and picking a size or colour.

A comment the parser would not guess (issue 20: a nickname of two products, `A幾件`) was answered with
quick replies naming the products or the quantities 1/2/3 (`v1:ORDER:<comment>:<code>:<qty>`); a tap is
checked against that comment's asked item the same way, then claims the stock, or asks the product's
first option like any item waiting for one.

A picked option arrives as a quick reply whose payload carries the comment, the product and the choices
so far (`bot.replies.carts`); it is checked against the comment the shopper really made and the product's
real options, so an old or forged payload gets a friendly answer and changes nothing. The shopper may also
type the choice (`B L`: an item of theirs still waiting for a size, and the size). Once an item is
claimed, the next item of theirs still waiting for a choice is asked, so a comment like `A+1, B+1` where
both need a size gets both asked, one after the other.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import or_, select

from bot.inbound.events import EventKind, MessageEvent, PostbackEvent
from bot.inbound.live_comments import live_video_of_post
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of
from bot.replies.carts import (
    OrderChoice,
    Pick,
    expired_choice,
    held_back_reply,
    hold_time_left,
    parse_order_payload,
    parse_pick_payload,
    render_cart,
    render_checkout,
    render_choice_question,
    render_next_option,
)
from bot.replies.payload_codec import Payload, PayloadAction, decode_payload
from bot.replies.render import render_text
from bot.runtime.clock import utcnow
from bot.store.blocked_buyers import blocked_among
from bot.store.tables import CommentLog
from carts.comment_order_repository import live_video_ids
from carts.comment_orders import ItemOutcome, variant_key
from carts.orders import fetch_or_create_checkout_token
from carts.repository import fetch_cart, fetch_hold_expiry
from carts.stock_rules import ClaimSource, arrival_key
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from parsers.normalize import normalize_text
from parsers.order_comment import code_key

CART_WORDS = frozenset({"cart", "my cart", "view cart", "購物車", "购物车", "我的購物車", "睇購物車"})


async def _send(ctx: HandlerContext, key: str, page_id: str, psid: str, messages: list[dict]) -> None:
    await enqueue_messages(ctx.session, key=key, page_id=page_id, psid=psid, messages=messages)
    ctx.wake_outbox()


def _is_cart_payload(payload: str) -> bool:
    decoded = decode_payload(payload)
    return isinstance(decoded, Payload) and decoded.action is PayloadAction.CART


def is_cart_request(event: MessageEvent | PostbackEvent, _ctx: HandlerContext) -> bool:
    if isinstance(event, PostbackEvent):
        return _is_cart_payload(event.payload)
    if event.quick_reply_payload:
        return _is_cart_payload(event.quick_reply_payload)
    return normalize_text(event.text or "").strip(" ?？!！.。") in CART_WORDS


async def cart_messages(
    ctx: HandlerContext, page_id: str, psid: str, checkout_link: Callable[[str], str] | None
) -> list[dict]:
    """The shopper's cart with its Checkout button and the hold's time left: every open window is used."""
    cart = await fetch_cart(ctx.session, page_id, psid)
    locale = await locale_of(ctx.session, page_id, psid)
    if cart.is_empty:
        return render_cart(locale, cart)
    now = utcnow()
    url = None
    if checkout_link is not None:
        url = checkout_link(await fetch_or_create_checkout_token(ctx.session, page_id, psid, now))
    hold = hold_time_left(locale, await fetch_hold_expiry(ctx.session, page_id, psid), now)
    return render_cart(locale, cart, url, hold)


def pick_filter(event: MessageEvent, _ctx: HandlerContext) -> dict[str, Pick | None] | bool:
    decoded = decode_payload(event.quick_reply_payload)
    if decoded.action is not PayloadAction.PICK:
        return False
    # A choice we cannot read (an older version, or forged) is still a choice: it gets the choice's answer.
    return {"pick": parse_pick_payload(event.quick_reply_payload or "") if isinstance(decoded, Payload) else None}


async def handle_pick(
    event: MessageEvent, ctx: HandlerContext, pick: Pick | None, checkout_link: Callable[[str], str] | None = None
) -> None:
    """The shopper chose an option for an item of their comment: ask the next option, or claim the stock."""
    key = f"pick:{event.key}"
    found = await _pick_target(ctx, event, pick) if pick is not None else None
    locale = await locale_of(ctx.session, event.page_id, event.sender_id)
    if found is None:
        await _send(ctx, key, event.page_id, event.sender_id, render_text(expired_choice(locale)))
        return
    assert pick is not None
    item, product, campaign = found
    options = json.loads(product.variants)
    missing = [name for name in options if name not in pick.chosen]
    if missing:
        option = missing[0]
        question = render_next_option(
            locale, pick.comment_id, pick.code, product.name, pick.chosen, option, options[option]
        )
        await _send(ctx, key, event.page_id, event.sender_id, question)
        return
    if await blocked_among(ctx.session, [(event.page_id, event.sender_id)]):  # a blocked buyer claims nothing
        await _send(ctx, key, event.page_id, event.sender_id, render_text(held_back_reply(locale)))
        return
    await _claim(ctx, event, key, pick, product, campaign, int(item.get("qty") or 1), checkout_link)


async def _claim(
    ctx: HandlerContext,
    event: MessageEvent,
    key: str,
    pick: Pick,
    product: Product,
    campaign: Campaign,
    qty: int,
    checkout_link: Callable[[str], str] | None,
) -> None:
    """Claim `qty` of the picked product for the shopper's comment (once: a second tap shows the cart)."""
    variant = variant_key(pick.chosen)  # "" for a product without options, as a comment's own claim
    claim_key = f"{pick.comment_id}:{product.id}:{variant}"
    exists = (await ctx.session.execute(select(StockClaim.id).where(StockClaim.key == claim_key))).first()
    if exists:  # tapped twice: show the cart
        messages = await cart_messages(ctx, event.page_id, event.sender_id, checkout_link)
        await _send(ctx, key, event.page_id, event.sender_id, messages)
        return
    now = utcnow()
    ctx.session.add(
        StockClaim(
            key=claim_key,
            campaign_id=campaign.id,
            product_id=product.id,
            page_id=event.page_id,
            psid=event.sender_id,
            comment_id=pick.comment_id,
            variant=variant,
            qty=qty,
            arrival=arrival_key(ctx.stream_id or "0-0", ctx.position),
            source=ClaimSource.MESSENGER,
            hold_minutes=campaign.hold_minutes,
            created_at=now,
        )
    )
    # The allocator decides it in arrival order and answers in this chat (the tap opened the window).
    await ctx.session.flush()
    await _ask_next_choice(ctx, event)


async def _ask_next_choice(ctx: HandlerContext, event: MessageEvent) -> None:
    """Ask the shopper's next item still waiting for a choice, if any (the reply to the comment asked one)."""
    for log_row, item in await _pending_choices(ctx, event.page_id, event.sender_id):
        pick = Pick(log_row.comment_id, item["code"], dict(item.get("variant") or {}))
        found = await _pick_target(ctx, event, pick)
        if found is None:
            continue  # its campaign closed, or the product is off sale
        _, product, _ = found
        options = json.loads(product.variants)
        option = next(name for name in options if name not in pick.chosen)
        question = render_choice_question(
            await locale_of(ctx.session, event.page_id, event.sender_id),
            pick.comment_id,
            pick.code,
            product.name,
            int(item.get("qty") or 1),
            pick.chosen,
            option,
            options[option],
        )
        await _send(ctx, f"pick-next:{event.key}", event.page_id, event.sender_id, question)
        return


async def _pending_choices(ctx: HandlerContext, page_id: str, psid: str) -> list[tuple[CommentLog, dict]]:
    """The shopper's comment items still waiting for a size or colour (no claim from the chat yet), oldest first."""
    logs = (
        (
            await ctx.session.execute(
                select(CommentLog)
                .where(
                    CommentLog.page_id == page_id,
                    CommentLog.author_id == psid,
                    CommentLog.verb == "add",
                    CommentLog.detail.like(f'%"{ItemOutcome.NEEDS_VARIANT}"%'),  # type: ignore[union-attr]
                )
                .order_by(CommentLog.id)
            )
        )
        .scalars()
        .all()
    )
    if not logs:
        return []
    claimed = set(
        (
            await ctx.session.execute(
                select(StockClaim.comment_id, StockClaim.product_id).where(
                    StockClaim.comment_id.in_([row.comment_id for row in logs]),
                    StockClaim.source.in_([ClaimSource.MESSENGER, ClaimSource.AGENT]),
                )
            )
        ).all()
    )
    return [
        (row, item)
        for row in logs
        for item in json.loads(row.detail or "{}").get("items", [])
        if item.get("outcome") == ItemOutcome.NEEDS_VARIANT
        and item.get("product_id")
        and item.get("code")
        and (row.comment_id, item["product_id"]) not in claimed
    ]


async def typed_choice_filter(event: MessageEvent, ctx: HandlerContext) -> dict[str, Pick] | bool:
    """Filter: a typed choice like `B L` for an item of the shopper's still waiting for one; hands it on as a pick.

    The first word is the item's code, the others values of its missing options; text that is not exactly
    that is left to the other handlers.
    """
    if event.quick_reply_payload or not event.text:
        return False
    words = normalize_text(event.text).replace(",", " ").replace("，", " ").split()
    if not 2 <= len(words) <= 4:
        return False
    for log_row, item in await _pending_choices(ctx, event.page_id, event.sender_id):
        if code_key(item["code"]) != words[0]:
            continue
        product = await ctx.session.get(Product, item["product_id"])
        if product is None:
            continue
        options: dict[str, list[str]] = json.loads(product.variants)
        chosen = dict(item.get("variant") or {})
        for word in words[1:]:
            match = next(
                (
                    (name, value)
                    for name, values in options.items()
                    if name not in chosen
                    for value in values
                    if normalize_text(value) == word
                ),
                None,
            )
            if match is None:
                break
            chosen[match[0]] = match[1]
        else:
            return {"pick": Pick(log_row.comment_id, item["code"], chosen)}
    return False


def order_choice_filter(event: MessageEvent, _ctx: HandlerContext) -> dict[str, OrderChoice | None] | bool:
    decoded = decode_payload(event.quick_reply_payload)
    if decoded.action is not PayloadAction.ORDER:
        return False
    return {"choice": parse_order_payload(event.quick_reply_payload or "") if isinstance(decoded, Payload) else None}


async def handle_order_choice(
    event: MessageEvent,
    ctx: HandlerContext,
    choice: OrderChoice | None,
    checkout_link: Callable[[str], str] | None = None,
) -> None:
    """The shopper said which product, or how many, for an item of their comment the bot asked about."""
    key = f"order:{event.key}"
    locale = await locale_of(ctx.session, event.page_id, event.sender_id)
    found = await _order_target(ctx, event, choice) if choice is not None else None
    if found is None:
        await _send(ctx, key, event.page_id, event.sender_id, render_text(expired_choice(locale)))
        return
    assert choice is not None
    log_row, item, product, campaign = found
    code = item.get("resolved_code") or choice.code
    pick = Pick(choice.comment_id, code, {})
    options: dict[str, list[str]] = json.loads(product.variants)
    if options:
        # Waits for its options like an item of the comment that named no size: the trail gets the item,
        # and the size (or colour) taps that follow find it (`_pick_target`).
        detail = json.loads(log_row.detail or "{}")
        waiting = {
            "code": code,
            "qty": choice.qty,
            "variant": None,
            "product_id": product.id,
            "name": product.name,
            "outcome": ItemOutcome.NEEDS_VARIANT,
            "missing": list(options),
            "values": options,
            "asked": item["outcome"],
        }
        items = detail.setdefault("items", [])
        if not any(i.get("code") == code and i.get("outcome") == ItemOutcome.NEEDS_VARIANT for i in items):
            items.append(waiting)
            log_row.detail = json.dumps(detail, ensure_ascii=False)
        option = next(iter(options))
        question = render_choice_question(
            locale, choice.comment_id, code, product.name, choice.qty, {}, option, options[option]
        )
        await _send(ctx, key, event.page_id, event.sender_id, question)
        return
    await _claim(ctx, event, key, pick, product, campaign, choice.qty, checkout_link)


async def _order_target(
    ctx: HandlerContext, event: MessageEvent, choice: OrderChoice
) -> tuple[CommentLog, dict, Product, Campaign] | None:
    """The shopper's own comment, its asked item the choice answers, and the product still on sale; else None."""
    log_row = await _own_comment(ctx, event, choice.comment_id)
    if log_row is None:
        return None
    item: dict | None = None
    product_id: int | None = None
    for entry in json.loads(log_row.detail or "{}").get("items", []):
        if entry.get("outcome") == ItemOutcome.AMBIGUOUS_PRODUCT and entry.get("qty") == choice.qty:
            match = next((c for c in entry.get("candidates", []) if c.get("code") == choice.code), None)
            if match is not None:
                item, product_id = {**entry, "resolved_code": match["code"]}, match.get("product_id")
                break
        if entry.get("outcome") == ItemOutcome.UNREADABLE_QUANTITY and entry.get("code") == choice.code:
            item, product_id = entry, entry.get("product_id")
            break
    if item is None or product_id is None:
        return None
    found = await _on_sale(ctx, log_row, product_id)
    if found is None:
        return None
    return log_row, item, *found


async def _own_comment(ctx: HandlerContext, event: MessageEvent, comment_id: str) -> CommentLog | None:
    return (
        await ctx.session.execute(
            select(CommentLog).where(
                CommentLog.comment_id == comment_id,
                CommentLog.verb == "add",
                CommentLog.author_id == event.sender_id,
                CommentLog.page_id == event.page_id,
            )
        )
    ).scalar_one_or_none()


async def _on_sale(ctx: HandlerContext, log_row: CommentLog, product_id: int) -> tuple[Product, Campaign] | None:
    """The product and the comment's open campaign that sells it, else None."""
    video = await live_video_of_post(ctx.session, log_row.page_id, log_row.post_id)
    live_videos = live_video_ids(log_row.post_id, video)
    row = (
        await ctx.session.execute(
            select(Product, Campaign)
            .join(CampaignProduct, CampaignProduct.product_id == Product.id)
            .join(Campaign, Campaign.id == CampaignProduct.campaign_id)
            .where(
                Product.id == product_id,
                Product.active.is_(True),
                Campaign.page_id == log_row.page_id,
                # A post's campaign, or a live video's: the video whose post Meta named so, or `{page}_{video}`.
                or_(Campaign.post_id == log_row.post_id, Campaign.live_video_id.in_(live_videos)),
            )
        )
    ).first()
    if row is None:
        return None
    product, campaign = row
    if not campaign.starts_at <= utcnow() < campaign.ends_at:
        return None
    return product, campaign


async def _pick_target(ctx: HandlerContext, event: MessageEvent, pick: Pick) -> tuple[dict, Product, Campaign] | None:
    """The shopper's own comment, its item still waiting for an option, and valid choices; else None."""
    log_row = (
        await ctx.session.execute(
            select(CommentLog).where(
                CommentLog.comment_id == pick.comment_id,
                CommentLog.verb == "add",
                CommentLog.author_id == event.sender_id,
                CommentLog.page_id == event.page_id,
            )
        )
    ).scalar_one_or_none()
    if log_row is None:
        return None
    items = json.loads(log_row.detail or "{}").get("items", [])
    item = next(
        (i for i in items if i.get("code") == pick.code and i.get("outcome") == ItemOutcome.NEEDS_VARIANT), None
    )
    if item is None or not item.get("product_id"):
        return None
    video = await live_video_of_post(ctx.session, log_row.page_id, log_row.post_id)
    live_videos = live_video_ids(log_row.post_id, video)
    row = (
        await ctx.session.execute(
            select(Product, Campaign)
            .join(CampaignProduct, CampaignProduct.product_id == Product.id)
            .join(Campaign, Campaign.id == CampaignProduct.campaign_id)
            .where(
                Product.id == item["product_id"],
                Product.active.is_(True),
                Campaign.page_id == log_row.page_id,
                # A post's campaign, or a live video's: the video whose post Meta named so, or `{page}_{video}`.
                or_(Campaign.post_id == log_row.post_id, Campaign.live_video_id.in_(live_videos)),
            )
        )
    ).first()
    if row is None:
        return None
    product, campaign = row
    options = json.loads(product.variants)
    if any(name not in options or value not in options[name] for name, value in pick.chosen.items()):
        return None  # a value this product does not have: forged, or the catalog changed
    if not campaign.starts_at <= utcnow() < campaign.ends_at:
        return None
    return item, product, campaign


CHECKOUT_WORDS = frozenset({"checkout", "check out", "pay", "結帳", "结账", "埋單", "买单", "付款"})


def is_checkout_request(event: MessageEvent | PostbackEvent, _ctx: HandlerContext) -> bool:
    if isinstance(event, PostbackEvent):  # Checkout in the Page's persistent menu
        decoded = decode_payload(event.payload)
        return isinstance(decoded, Payload) and decoded.action is PayloadAction.CHECKOUT
    return not event.quick_reply_payload and normalize_text(event.text or "").strip(" ?？!！.。") in CHECKOUT_WORDS


def build_cart_router(checkout_link: Callable[[str], str] | None = None) -> Router:
    router = Router("cart")

    async def handle_checkout(event: MessageEvent | PostbackEvent, ctx: HandlerContext) -> None:
        cart = await fetch_cart(ctx.session, event.page_id, event.sender_id)
        url = None
        if checkout_link is not None and not cart.is_empty:
            token = await fetch_or_create_checkout_token(ctx.session, event.page_id, event.sender_id, utcnow())
            url = checkout_link(token)
        locale = await locale_of(ctx.session, event.page_id, event.sender_id)
        await _send(ctx, f"checkout:{event.key}", event.page_id, event.sender_id, render_checkout(locale, cart, url))

    async def handle_cart(event: MessageEvent | PostbackEvent, ctx: HandlerContext) -> None:
        messages = await cart_messages(ctx, event.page_id, event.sender_id, checkout_link)
        await _send(ctx, f"cart:{event.key}", event.page_id, event.sender_id, messages)

    async def pick(event: MessageEvent, ctx: HandlerContext, pick: Pick | None) -> None:
        await handle_pick(event, ctx, pick, checkout_link)

    async def order_choice(event: MessageEvent, ctx: HandlerContext, choice: OrderChoice | None) -> None:
        await handle_order_choice(event, ctx, choice, checkout_link)

    router.register(pick, pick_filter, kinds=[EventKind.MESSAGE], name="pick_option")
    router.register(pick, typed_choice_filter, kinds=[EventKind.MESSAGE], name="typed_option")
    router.register(order_choice, order_choice_filter, kinds=[EventKind.MESSAGE], name="order_choice")
    router.register(handle_cart, is_cart_request, kinds=[EventKind.MESSAGE, EventKind.POSTBACK], name="show_cart")
    checkout_kinds = [EventKind.MESSAGE, EventKind.POSTBACK]
    router.register(handle_checkout, is_checkout_request, kinds=checkout_kinds, name="checkout")
    return router
