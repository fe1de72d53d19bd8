"""The inbox's reads: the conversation list with its filters, one conversation, the buyer panel.

Every read takes the user's Pages and never returns a row of another Page: a conversation of a Page the
user was not given is "not found", the same as one that does not exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.handlers.handoff import ConversationState, HandoffReason, conversation_state
from bot.inbox.cart_edit import shopper_campaigns
from bot.inbox.core import (
    NOT_AN_ANSWER,
    ListFilter,
    ListQuery,
    MessageState,
    ReplyState,
    describe_duration,
    display_name,
    fill_placeholders,
    labels_of,
    message_state,
    order_number_searched,
    parsed_as,
    phone_digits_searched,
    reply_state,
)
from bot.inbox.tables import InboxNote, InboxThread, InboxUser, InboxUserPage, SavedReply
from bot.runtime.clock import utcnow
from bot.store.blocked_buyers import fetch_block
from bot.store.tables import BlockedBuyer, CommentLog, Conversation, Message, OutboxMessage
from carts.comment_orders import ItemOutcome
from carts.core import CartInfo
from carts.order_rules import OrderInfo, OrderStatus, format_order_number
from carts.order_tables import Order
from carts.orders import fetch_order
from carts.payment_tables import PaymentProof
from carts.payments import fetch_proofs
from carts.repository import fetch_cart
from carts.stock_rules import ClaimSource, ClaimStatus
from carts.tables import Campaign, CampaignProduct, Product, StockClaim
from carts.unpaid import unpaid_order_counts

LIST_LIMIT = 100
# The quiet period when the caller does not say (the setting's default, PLUSONE_HANDOFF_QUIET_S).
DEFAULT_QUIET = timedelta(hours=2)


@dataclass(frozen=True)
class ConversationRow:
    id: int
    page_id: str
    psid: str
    name: str
    last_message_at: datetime | None
    unread: int  # the shopper's messages nobody answered yet (the bot's real answers count as answers)
    preview: str  # the shopper's last message, else the last one a person sent, else the bot's
    assignee: str | None
    labels: list[str]
    asked_person: bool
    channel: str = "facebook"  # where the shopper writes from: facebook | instagram (a pill in the list)
    picture: str | None = None  # the shopper's picture as Meta's User Profile API gave it (bot.outbound.user_profiles)
    preview_author: str = "shopper"  # shopper | agent | bot | comment: the template says "You:", "Bot:"...
    unpaid: int = 0  # orders placed and never paid (carts.unpaid): a pill when there are some


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def list_conversations(
    session: AsyncSession, pages: frozenset[str], query: ListQuery, user_id: int
) -> list[ConversationRow]:
    """Newest first, limited to the user's Pages, filtered and searched."""
    if not pages:
        return []
    c = Conversation
    stmt = (
        select(c, InboxThread)
        .outerjoin(InboxThread, InboxThread.conversation_id == c.id)
        .where(c.page_id.in_(pages))
        .order_by(c.last_message_at.desc().nulls_last(), c.id.desc())  # type: ignore[union-attr]
        .limit(LIST_LIMIT)
    )
    if query.search:
        pattern = _like(query.search)
        named = select(CommentLog.id).where(
            CommentLog.page_id == c.page_id,
            CommentLog.author_id == c.psid,
            CommentLog.author_name.like(pattern, escape="\\"),
        )
        said = select(Message.id).where(Message.conversation_id == c.id, Message.text.like(pattern, escape="\\"))
        commented = select(CommentLog.id).where(
            CommentLog.page_id == c.page_id,
            CommentLog.author_id == c.psid,
            CommentLog.message.like(pattern, escape="\\"),  # type: ignore[union-attr]
        )
        found: list[ColumnElement[bool]] = [
            c.name.like(pattern, escape="\\"),  # type: ignore[union-attr]
            exists(named),
            exists(said),
            exists(commented),
        ]
        of_shopper = and_(Order.page_id == c.page_id, Order.psid == c.psid)
        if digits := phone_digits_searched(query.search):
            found.append(exists(select(Order.id).where(of_shopper, _digits_of(Order.phone).like(f"%{digits}%"))))
        if (order_id := order_number_searched(query.search)) is not None:
            found.append(exists(select(Order.id).where(of_shopper, Order.number == format_order_number(order_id))))
        stmt = stmt.where(or_(*found))
    shopper = and_(StockClaim.page_id == c.page_id, StockClaim.psid == c.psid)
    for flt in query.filters:
        if flt is ListFilter.CART:
            stmt = stmt.where(exists(select(StockClaim.id).where(shopper, StockClaim.status == ClaimStatus.HELD)))
        elif flt is ListFilter.UNPAID:
            stmt = stmt.where(
                exists(
                    select(Order.id).where(
                        Order.page_id == c.page_id, Order.psid == c.psid, Order.status == OrderStatus.PENDING_PAYMENT
                    )
                )
            )
        elif flt is ListFilter.VARIANT:
            stmt = stmt.where(
                exists(
                    select(CommentLog.id).where(
                        CommentLog.page_id == c.page_id,
                        CommentLog.author_id == c.psid,
                        CommentLog.verb == "add",
                        CommentLog.detail.like(f'%"{ItemOutcome.NEEDS_VARIANT}"%'),  # type: ignore[union-attr]
                        ~exists(
                            select(StockClaim.id).where(
                                StockClaim.comment_id == CommentLog.comment_id,
                                StockClaim.source.in_([ClaimSource.MESSENGER, ClaimSource.AGENT]),
                            )
                        ),
                    )
                )
            )
        elif flt is ListFilter.PERSON:
            stmt = stmt.where(
                or_(
                    InboxThread.asked_person_at.is_not(None),  # type: ignore[union-attr]
                    c.handoff_reason == HandoffReason.SHOPPER_ASKED.value,
                )
            )
        elif flt is ListFilter.MINE:
            stmt = stmt.where(InboxThread.assignee_id == user_id)
    if query.label:
        stmt = stmt.where(InboxThread.labels.like(_like(f",{query.label},"), escape="\\"))  # type: ignore[union-attr]
    rows = (await session.execute(stmt)).all()
    ids = [conv.id for conv, _ in rows]
    names = await _comment_names(session, {(conv.page_id, conv.psid) for conv, _ in rows if not conv.name})
    previews = await _previews(session, ids)
    # A chat that began with a comment has only the bot's private reply: the comment is the shopper's words.
    commented = await _last_comments(
        session, {(conv.page_id, conv.psid) for conv, _ in rows if previews.get(conv.id, ("", "bot"))[1] == "bot"}
    )
    for conv, _ in rows:
        if (conv.page_id, conv.psid) in commented:
            previews[conv.id] = (commented[(conv.page_id, conv.psid)], "comment")
    waiting = await _unanswered(session, ids)
    users = dict(await users_of_pages(session, pages))
    unpaid = await unpaid_order_counts(session, {(conv.page_id, conv.psid) for conv, _ in rows})
    return [
        ConversationRow(
            id=conv.id,
            page_id=conv.page_id,
            psid=conv.psid,
            name=display_name(conv.name or names.get((conv.page_id, conv.psid)), conv.psid),
            last_message_at=conv.last_message_at,
            # Read ones reset `unread` (the counter); of those left, the bot's real answers answered some.
            unread=min(conv.unread, waiting.get(conv.id, 0)),
            preview=previews.get(conv.id, ("", "shopper"))[0],
            preview_author=previews.get(conv.id, ("", "shopper"))[1],
            assignee=users.get(thread.assignee_id) if thread and thread.assignee_id else None,
            labels=labels_of(thread.labels) if thread else [],
            asked_person=bool(thread and thread.asked_person_at)
            or conv.handoff_reason == HandoffReason.SHOPPER_ASKED.value,
            channel=conv.channel,
            picture=conv.profile_pic,
            unpaid=unpaid.get((conv.page_id, conv.psid), 0),
        )
        for conv, thread in rows
    ]


async def _last_comments(session: AsyncSession, shoppers: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Each shopper's latest comment on the Page's posts and lives (their words, for the list's preview)."""
    if not shoppers:
        return {}
    psids = {psid for _, psid in shoppers}
    rows = await session.execute(
        select(CommentLog.page_id, CommentLog.author_id, CommentLog.message)
        .where(CommentLog.author_id.in_(psids), CommentLog.verb == "add", CommentLog.message.is_not(None))  # type: ignore[union-attr]
        .order_by(CommentLog.id)
    )
    return {(page, psid): text[:120] for page, psid, text in rows.all() if (page, psid) in shoppers}


async def _comment_names(session: AsyncSession, shoppers: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Names from the shoppers' comments (Messenger does not send names with messages)."""
    if not shoppers:
        return {}
    psids = {psid for _, psid in shoppers}
    rows = await session.execute(
        select(CommentLog.page_id, CommentLog.author_id, CommentLog.author_name)
        .where(CommentLog.author_id.in_(psids), CommentLog.author_name.is_not(None))  # type: ignore[union-attr]
        .order_by(CommentLog.id)
    )
    return {(page, psid): name for page, psid, name in rows.all() if (page, psid) in shoppers}


def _digits_of(column: Any) -> Any:
    """A phone column as digits only, in SQL (the separators people type: spaces, dashes, +, brackets, dots)."""
    for separator in (" ", "-", "+", "(", ")", "."):
        column = func.replace(column, separator, "")
    return column


async def _previews(session: AsyncSession, ids: list[int]) -> dict[int, tuple[str, str]]:
    """Each conversation's preview and its author: the shopper's last message (what the agent must answer),
    or when a person answered after it, that answer; the bot's own messages only when nothing else was said
    (a chat that began with the private reply to a comment)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Message.conversation_id, Message.id, Message.text, Message.kind, Message.author, Message.payload)
        .where(
            Message.id.in_(  # type: ignore[union-attr]
                select(func.max(Message.id))
                .where(Message.conversation_id.in_(ids))
                .group_by(Message.conversation_id, Message.author == "bot")
            )
        )
        .order_by((Message.author == "bot").desc(), Message.id)
    )
    found: dict[int, tuple[str, str]] = {}
    for cid, _, text, kind, author, payload in rows.all():  # the bot's first when both: a person's wins
        if author == "bot" and cid in found:
            continue
        words = text or _describe_payload(kind, payload, shown=False)
        found[cid] = (words[:120], author)
    return found


async def _unanswered(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    """The shopper's messages after the last answer in each conversation: an agent's message, or the bot's
    that answered (a FAQ, the cart...), not its "we'll reply soon" or "a person will answer" (`NOT_AN_ANSWER`)."""
    if not ids:
        return {}
    real_answer = ~or_(*[OutboxMessage.idempotency_key.like(f"{prefix}%") for prefix in NOT_AN_ANSWER])
    answered = or_(
        Message.author == "agent",
        and_(Message.author == "bot", or_(OutboxMessage.id.is_(None), real_answer)),  # type: ignore[union-attr]
    )
    last_answer = (
        select(Message.conversation_id, func.max(Message.id).label("answer_id"))
        .outerjoin(OutboxMessage, OutboxMessage.id == Message.outbox_id)
        .where(Message.conversation_id.in_(ids), Message.direction == "out", answered)
        .group_by(Message.conversation_id)
        .subquery()
    )
    rows = await session.execute(
        select(Message.conversation_id, func.count(Message.id))
        .outerjoin(last_answer, last_answer.c.conversation_id == Message.conversation_id)
        .where(
            Message.conversation_id.in_(ids),
            Message.direction == "in",
            or_(last_answer.c.answer_id.is_(None), Message.id > last_answer.c.answer_id),
        )
        .group_by(Message.conversation_id)
    )
    return {int(cid): int(count) for cid, count in rows.all()}


async def fetch_conversation(session: AsyncSession, pages: frozenset[str], conversation_id: int) -> Conversation | None:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or conversation.page_id not in pages:
        return None
    return conversation


@dataclass(frozen=True)
class MessageView:
    id: int
    author: str
    direction: str
    kind: str
    text: str
    sent_at: datetime
    state: MessageState
    tag: str | None
    images: tuple[str, ...] = ()  # https URLs of the shopper's pictures (a receipt...), shown as images


@dataclass(frozen=True)
class NoteView:
    author: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class CommentView:
    """A comment of the shopper's under one of the Page's posts or lives: what started the chat (or came since)."""

    comment_id: str
    post_id: str
    text: str
    at: datetime
    outcome: str  # comment_log.outcome
    campaign: str | None  # the campaign's name, when one sells on that post
    live: bool  # the post is a live video's
    parsed: str  # the items as the parser read them ("A ×1 (M): claimed")


@dataclass
class ThreadView:
    conversation: Conversation
    name: str
    messages: list[MessageView]
    notes: list[NoteView]
    reply: ReplyState
    assignee_id: int | None
    labels: list[str]
    asked_person: bool
    users: list[tuple[int, str]] = field(default_factory=list)
    saved_replies: list[tuple[str, str]] = field(default_factory=list)  # title, text filled for this chat
    who: ConversationState | None = None  # who answers now: the bot, or a person (and until when)
    comments: list[CommentView] = field(default_factory=list)

    @property
    def items(self) -> list[tuple[str, MessageView | CommentView]]:
        """Messages and comments in one thread, by time: ("message", m) or ("comment", c)."""
        entries: list[tuple[datetime, int, str, MessageView | CommentView]] = [
            (_naive(m.sent_at), 1, "message", m) for m in self.messages
        ]
        entries += [(_naive(c.at), 0, "comment", c) for c in self.comments]
        entries.sort(key=lambda e: (e[0], e[1]))
        return [(kind, entry) for _, _, kind, entry in entries]


def _naive(moment: datetime) -> datetime:
    """UTC without its zone: SQLite gives naive times, PostgreSQL aware ones; both are UTC."""
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


async def fetch_thread(
    session: AsyncSession,
    conversation: Conversation,
    limit: int = 200,
    *,
    human_agent: bool = False,
    quiet: timedelta = DEFAULT_QUIET,
) -> ThreadView:
    """The conversation's messages with the shopper's comments among them, notes, and who answers now
    (`quiet`: how long the bot stays quiet after a person's message, PLUSONE_HANDOFF_QUIET_S)."""
    rows = (
        await session.execute(
            select(Message, OutboxMessage)
            .outerjoin(OutboxMessage, OutboxMessage.id == Message.outbox_id)
            .where(Message.conversation_id == conversation.id)
            .order_by(Message.sent_at.desc(), Message.id.desc())
            .limit(limit)
        )
    ).all()
    messages = [
        MessageView(
            id=m.id,
            author=m.author,
            direction=m.direction,
            kind=m.kind,
            text=m.text or _describe_payload(m.kind, m.payload, shown=bool(images)),
            images=images,
            sent_at=m.sent_at,
            state=message_state(
                m.direction,
                m.status,
                m.delivered_at,
                m.read_at,
                m.error,
                out.error_code if out is not None else None,
                out.error_subcode if out is not None else None,
                out.status if out is not None else None,
            ),
            tag=out.tag if out is not None else None,
        )
        for m, out in reversed(rows)
        for images in [image_urls(m.kind, m.payload)]
    ]
    note_rows = list(
        (
            await session.execute(
                select(InboxNote, InboxUser.name)
                .outerjoin(InboxUser, InboxUser.id == InboxNote.user_id)
                .where(InboxNote.conversation_id == conversation.id)
                .order_by(InboxNote.id)
            )
        ).all()
    )
    notes = [NoteView(author or "?", n.text, n.created_at) for n, author in note_rows]
    thread = await session.get(InboxThread, conversation.id)
    names = await _comment_names(session, {(conversation.page_id, conversation.psid)})
    name = display_name(conversation.name or names.get((conversation.page_id, conversation.psid)), conversation.psid)
    users = await users_of_pages(session, frozenset([conversation.page_id]))
    now = utcnow()
    return ThreadView(
        conversation=conversation,
        name=name,
        messages=messages,
        notes=notes,
        reply=reply_state(now, conversation.last_user_at, human_agent),
        assignee_id=thread.assignee_id if thread else None,
        labels=labels_of(thread.labels) if thread else [],
        asked_person=bool(thread and thread.asked_person_at)
        or conversation.handoff_reason == HandoffReason.SHOPPER_ASKED.value,
        users=users,
        saved_replies=await saved_replies_for(session, conversation, name),
        who=conversation_state(conversation, now, quiet),
        comments=await shopper_comments(session, conversation.page_id, conversation.psid),
    )


async def shopper_comments(session: AsyncSession, page_id: str, psid: str, limit: int = 50) -> list[CommentView]:
    """The shopper's comments on the Page's posts and lives (newest `limit`), each with its campaign and
    outcome: a conversation that began with a comment shows it in its thread."""
    rows = (
        await session.execute(
            select(CommentLog, Campaign.title, Campaign.live_video_id.is_not(None) | Campaign.next_live)  # type: ignore[union-attr]
            .outerjoin(Campaign, and_(Campaign.post_id == CommentLog.post_id, Campaign.page_id == CommentLog.page_id))
            .where(CommentLog.page_id == page_id, CommentLog.author_id == psid, CommentLog.verb == "add")
            .order_by(CommentLog.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        )
    ).all()
    seen: set[str] = set()
    found = []
    for log, campaign, of_live in rows:
        if log.comment_id in seen:  # one row per comment even if two campaigns named its post
            continue
        seen.add(log.comment_id)
        found.append(
            CommentView(
                comment_id=log.comment_id,
                post_id=log.post_id,
                text=log.message or "",
                at=log.created_time or log.received_at,
                outcome=log.outcome,
                campaign=campaign,
                live=bool(of_live) or log.source != "webhook",  # read from a live's stream or comments
                parsed=parsed_as(log.detail),
            )
        )
    return list(reversed(found))


async def users_of_pages(session: AsyncSession, pages: frozenset[str]) -> list[tuple[int, str]]:
    """(id, name) of the active users who have one of these Pages, by name: the directory a user of
    those Pages sees and assigns from (another Page's people are none of their business)."""
    rows = await session.execute(
        select(InboxUser.id, InboxUser.name)
        .join(InboxUserPage, InboxUserPage.user_id == InboxUser.id)
        .where(InboxUserPage.page_id.in_(pages), InboxUser.active.is_(True))
        .distinct()
        .order_by(InboxUser.name)
    )
    return [(int(user_id), str(user_name)) for user_id, user_name in rows.all()]


async def saved_replies_for(session: AsyncSession, conversation: Conversation, name: str) -> list[tuple[str, str]]:
    """The Page's saved replies as (title, text) with their placeholders filled for this conversation."""
    replies = (
        await session.execute(
            select(SavedReply).where(SavedReply.page_id == conversation.page_id).order_by(SavedReply.title)
        )
    ).scalars()
    order = (
        await session.execute(
            select(Order.number)
            .where(Order.page_id == conversation.page_id, Order.psid == conversation.psid, Order.number.is_not(None))  # type: ignore[union-attr]
            .order_by(Order.id.desc())  # type: ignore[union-attr]
            .limit(1)
        )
    ).scalar_one_or_none()
    values = {"name": name, "order": order}
    return [(r.title, fill_placeholders(r.text, values)) for r in replies]


def image_urls(kind: str, payload: str | None) -> tuple[str, ...]:
    """The images of an attachment message, https URLs only: the inbox shows them with `<img src>`, so a
    `javascript:` or `data:` URL, or one over plain http, is never put on the page."""
    if kind != "attachment":
        return ()
    try:
        data = json.loads(payload or "{}")
    except ValueError:
        return ()
    attachments = data.get("attachments") if isinstance(data, dict) else None
    return tuple(
        a["url"]
        for a in attachments or []
        if isinstance(a, dict)
        and a.get("type") == "image"
        and isinstance(a.get("url"), str)
        and a["url"].startswith("https://")
    )


def _describe_payload(kind: str, payload: str | None, shown: bool = False) -> str:
    """What a message without text was; "" for pictures only, which the page shows themselves (`shown`)."""
    try:
        data: dict[str, Any] = json.loads(payload or "{}")
    except ValueError:
        data = {}
    template = data.get("attachment", {}).get("payload", {}) if isinstance(data.get("attachment"), dict) else {}
    if isinstance(template, dict) and isinstance(template.get("text"), str):
        return template["text"]  # a button template: its text is what the shopper reads
    if kind == "attachment":
        attachments = [a for a in data.get("attachments", []) if isinstance(a, dict)]
        # Meta's echo of a button template: its text (kept as the attachment's title) is what the shopper
        # read, not "[template]".
        texts = [
            str(a.get("title") or (a.get("payload") or {}).get("text") or "")
            for a in attachments
            if a.get("type") == "template"
        ]
        texts = [t for t in texts if t]
        if texts:
            return "\n".join(texts)
        types = [a.get("type", "file") for a in attachments]
        if shown and set(types) == {"image"}:
            return ""
        return f"[{', '.join(types) or 'attachment'}]"
    if kind == "referral":
        return f"[opened the chat from a link: {data.get('referral', {}).get('ref') or '-'}]"
    if "attachment" in data:
        return "[a card with buttons]"
    return f"[{kind}]"


@dataclass(frozen=True)
class HoldView:
    claim_id: int
    code: str
    name: str
    variant: str
    qty: int
    status: str
    time_left: str | None
    expires_at: datetime | None = None  # a hold's end (the page says "in 22 minutes" in the reader's language)


@dataclass(frozen=True)
class PendingChoice:
    """A comment item that still needs a size or colour: the agent can pick it for the shopper."""

    comment_id: str
    code: str
    name: str
    qty: int
    options: dict[str, list[str]]


@dataclass
class PanelView:
    cart: CartInfo
    holds: list[HoldView]
    orders: list[OrderInfo]
    choices: list[PendingChoice]
    # For "add by code": the products of the shopper's campaign (bot.inbox.cart_edit.shopper_campaigns) as
    # (order code, name, variants); the form shows only the typed one's options.
    products: list[tuple[str, str, dict[str, list[str]]]]
    proofs: dict[int, list[PaymentProof]] = field(default_factory=dict)  # receipts by order id
    blocked: BlockedBuyer | None = None  # the shop blocked this buyer (bot.store.blocked_buyers)
    unpaid: int = 0  # orders placed and never paid (carts.unpaid)


async def fetch_panel(session: AsyncSession, conversation: Conversation, now: datetime | None = None) -> PanelView:
    page_id, psid = conversation.page_id, conversation.psid
    now = now or utcnow()
    cart = await fetch_cart(session, page_id, psid)
    claims = (
        await session.execute(
            select(StockClaim, Product)
            .join(Product, Product.id == StockClaim.product_id)
            .where(
                StockClaim.page_id == page_id,
                StockClaim.psid == psid,
                StockClaim.status.in_([ClaimStatus.HELD, ClaimStatus.PENDING, ClaimStatus.WAITLISTED]),
            )
            .order_by(StockClaim.arrival)
        )
    ).all()
    holds = [
        HoldView(
            claim.id or 0,
            product.code,
            product.name,
            " / ".join(json.loads(claim.variant).values()) if claim.variant else "",
            claim.qty,
            claim.status,
            describe_duration(claim.expires_at - now)
            if claim.status == ClaimStatus.HELD and claim.expires_at
            else None,
            claim.expires_at if claim.status == ClaimStatus.HELD else None,
        )
        for claim, product in claims
    ]
    numbers = (
        await session.execute(
            select(Order.number).where(Order.page_id == page_id, Order.psid == psid).order_by(Order.id.desc()).limit(20)  # type: ignore[union-attr]
        )
    ).scalars()
    orders = [o for n in numbers if n and (o := await fetch_order(session, n)) is not None]
    choices = await _pending_choices(session, page_id, psid)
    campaigns = await shopper_campaigns(session, page_id, psid, now)
    offered = await session.execute(
        select(CampaignProduct.order_code, Product.name, Product.variants)
        .join(Product, Product.id == CampaignProduct.product_id)
        .where(CampaignProduct.campaign_id.in_(campaigns), Product.active.is_(True))  # type: ignore[attr-defined]
        .order_by(CampaignProduct.order_code)
    )
    products: list[tuple[str, str, dict[str, list[str]]]] = []
    for code, name, variants in offered.all():
        if all(code.casefold() != known.casefold() for known, _, _ in products):  # two campaigns selling it
            products.append((code, name, json.loads(variants or "{}")))
    proofs: dict[int, list[PaymentProof]] = {}
    for proof in await fetch_proofs(session, [o.id for o in orders]):
        proofs.setdefault(proof.order_id, []).append(proof)
    blocked = await fetch_block(session, page_id, psid)
    unpaid = (await unpaid_order_counts(session, [(page_id, psid)])).get((page_id, psid), 0)
    return PanelView(cart, holds, orders, choices, products, proofs, blocked, unpaid)


async def _pending_choices(session: AsyncSession, page_id: str, psid: str) -> list[PendingChoice]:
    logs = (
        await session.execute(
            select(CommentLog).where(
                CommentLog.page_id == page_id,
                CommentLog.author_id == psid,
                CommentLog.verb == "add",
                CommentLog.detail.like(f'%"{ItemOutcome.NEEDS_VARIANT}"%'),  # type: ignore[union-attr]
            )
        )
    ).scalars()
    found: list[PendingChoice] = []
    for row in logs:
        picked = set(
            (
                await session.execute(
                    select(StockClaim.product_id).where(
                        StockClaim.comment_id == row.comment_id,
                        StockClaim.source.in_([ClaimSource.MESSENGER, ClaimSource.AGENT]),
                    )
                )
            ).scalars()
        )
        for item in json.loads(row.detail or "{}").get("items", []):
            if (
                item.get("outcome") != ItemOutcome.NEEDS_VARIANT
                or not item.get("product_id")
                or item["product_id"] in picked
            ):
                continue
            product = await session.get(Product, item["product_id"])
            if product is None or not product.active:
                continue
            found.append(
                PendingChoice(
                    row.comment_id,
                    item.get("code") or product.code,
                    product.name,
                    int(item.get("qty") or 1),
                    json.loads(product.variants),
                )
            )
    return found


async def campaign_for_comment(session: AsyncSession, comment_id: str, product_id: int) -> Campaign | None:
    row = (
        (
            await session.execute(
                select(Campaign)
                .join(CampaignProduct, CampaignProduct.campaign_id == Campaign.id)
                .join(CommentLog, CommentLog.post_id == Campaign.post_id)
                .where(CommentLog.comment_id == comment_id, CampaignProduct.product_id == product_id)
            )
        )
        .scalars()
        .first()
    )
    return row
