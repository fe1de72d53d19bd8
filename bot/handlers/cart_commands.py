"""Cart commands in Messenger: `cart` / `購物車` (or the View cart button) and picking a size or colour.

A picked option arrives as a quick reply whose payload carries the comment, the product and the choices
so far (`bot.replies.carts`); it is checked against the comment the shopper really made and the product's
real options, so an old or forged payload gets a friendly answer and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select

from bot.inbound.events import EventKind, MessageEvent, PostbackEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.replies.carts import (
    Pick,
    option_quick_replies,
    parse_pick_payload,
    render_cart,
    render_checkout,
)
from bot.replies.payload_codec import Payload, PayloadAction, decode_payload
from bot.replies.render import render_text
from bot.runtime.clock import utcnow
from bot.store.tables import CommentLog
from carts.comment_orders import ItemOutcome
from carts.orders import fetch_or_create_checkout_token
from carts.repository import fetch_cart
from carts.stock_rules import ClaimSource, arrival_key
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from parsers.normalize import normalize_text

CART_WORDS = frozenset({"cart", "my cart", "view cart", "購物車", "购物车", "我的購物車", "睇購物車"})
EXPIRED_CHOICE = "Sorry, that choice is no longer available. Please comment the code again. 選項已失效，請再留言一次。"


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


async def handle_cart(event: MessageEvent | PostbackEvent, ctx: HandlerContext) -> None:
    cart = await fetch_cart(ctx.session, event.page_id, event.sender_id)
    await _send(ctx, f"cart:{event.key}", event.page_id, event.sender_id, render_cart(cart))


def pick_filter(event: MessageEvent, _ctx: HandlerContext) -> dict[str, Pick | None] | bool:
    decoded = decode_payload(event.quick_reply_payload)
    if decoded.action is not PayloadAction.PICK:
        return False
    # A choice we cannot read (an older version, or forged) is still a choice: it gets the choice's answer.
    return {"pick": parse_pick_payload(event.quick_reply_payload or "") if isinstance(decoded, Payload) else None}


async def handle_pick(event: MessageEvent, ctx: HandlerContext, pick: Pick | None) -> None:
    """The shopper chose an option for an item of their comment: ask the next option, or claim the stock."""
    key = f"pick:{event.key}"
    found = await _pick_target(ctx, event, pick) if pick is not None else None
    if found is None:
        await _send(ctx, key, event.page_id, event.sender_id, render_text(EXPIRED_CHOICE))
        return
    assert pick is not None
    item, product, campaign = found
    options = json.loads(product.variants)
    missing = [name for name in options if name not in pick.chosen]
    if missing:
        option = missing[0]
        replies = option_quick_replies(pick.comment_id, pick.code, pick.chosen, option, options[option])
        await _send(
            ctx,
            key,
            event.page_id,
            event.sender_id,
            render_text(f"{pick.code} {product.name}: which {option}?", replies),
        )
        return
    variant = json.dumps(pick.chosen, sort_keys=True, ensure_ascii=False)
    claim_key = f"{pick.comment_id}:{product.id}:{variant}"
    exists = (await ctx.session.execute(select(StockClaim.id).where(StockClaim.key == claim_key))).first()
    if exists:
        cart = await fetch_cart(ctx.session, event.page_id, event.sender_id)
        await _send(ctx, key, event.page_id, event.sender_id, render_cart(cart))  # tapped twice: show the cart
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
            qty=int(item.get("qty") or 1),
            arrival=arrival_key(ctx.stream_id or "0-0", ctx.position),
            source=ClaimSource.MESSENGER,
            hold_minutes=campaign.hold_minutes,
            created_at=now,
        )
    )
    # The allocator decides it in arrival order and answers in this chat (the tap opened the window).


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
    row = (
        await ctx.session.execute(
            select(Product, Campaign)
            .join(CampaignProduct, CampaignProduct.product_id == Product.id)
            .join(Campaign, Campaign.id == CampaignProduct.campaign_id)
            .where(Product.id == item["product_id"], Campaign.post_id == log_row.post_id, Product.active.is_(True))
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


def is_checkout_request(event: MessageEvent, _ctx: HandlerContext) -> bool:
    return not event.quick_reply_payload and normalize_text(event.text or "").strip(" ?？!！.。") in CHECKOUT_WORDS


def build_cart_router(checkout_link: Callable[[str], str] | None = None) -> Router:
    router = Router("cart")

    async def handle_checkout(event: MessageEvent, ctx: HandlerContext) -> None:
        cart = await fetch_cart(ctx.session, event.page_id, event.sender_id)
        url = None
        if checkout_link is not None and not cart.is_empty:
            token = await fetch_or_create_checkout_token(ctx.session, event.page_id, event.sender_id, utcnow())
            url = checkout_link(token)
        await _send(ctx, f"checkout:{event.key}", event.page_id, event.sender_id, render_checkout(cart, url))

    router.register(handle_pick, pick_filter, kinds=[EventKind.MESSAGE], name="pick_option")
    router.register(handle_cart, is_cart_request, kinds=[EventKind.MESSAGE, EventKind.POSTBACK], name="show_cart")
    router.register(handle_checkout, is_checkout_request, kinds=[EventKind.MESSAGE], name="checkout")
    return router
