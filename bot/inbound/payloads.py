"""Meta webhook JSON → typed events (`bot.inbound.events`). Pure: no I/O.

A delivery may batch many entries, each with many `changes[]`, `messaging[]` or `standby[]` items
(Meta: "batching cannot be guaranteed", up to 1000 updates). Every item becomes exactly one event;
anything unknown or malformed becomes an `IgnoredEvent` with the reason, so one odd item never fails
the rest of the batch. Nothing here raises on any input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from bot.inbound.events import (
    Attachment,
    Channel,
    CommentEvent,
    CommentVerb,
    DeliveryEvent,
    IgnoredEvent,
    InboundEvent,
    LiveVideoEvent,
    MessageEvent,
    PostbackEvent,
    ReactionEvent,
    ReadEvent,
    Referral,
    ReferralEvent,
    TemplateStatusEvent,
    TestPingEvent,
)
from parsers.normalize import storable_text

_OBJECT_CHANNELS = {"page": Channel.FACEBOOK, "instagram": Channel.INSTAGRAM}
_IG_COMMENT_FIELDS = {"comments", "live_comments"}
IG_LIVE_SOURCE = "instagram_live"  # a CommentEvent's `source` for an Instagram live's comment


def _id(value: Any) -> str | None:
    """Meta ids are strings, but some fixtures and SDKs send numbers; anything else is absent."""
    if isinstance(value, bool):
        return None
    # An id with a lone surrogate is no Meta id, and no database could store it: absent, not mended
    # (mending two different forged ids into one would make the second a "duplicate").
    if isinstance(value, str) and value and len(value) <= 128 and storable_text(value) == value:
        return value
    if isinstance(value, int) and value >= 0:
        return str(value)
    return None


def _text(value: Any, limit: int = 100_000) -> str | None:
    """A string as it can be stored: a lone surrogate (valid JSON, yet no UTF-8) becomes U+FFFD."""
    return storable_text(value[:limit]) if isinstance(value, str) else None


def _detail(value: Any) -> str:
    """What an ignored item held, short and storable, for the log."""
    return storable_text(str(value)[:80])


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():  # "³".isdigit(), yet int() refuses it
        return int(value)
    return None


_MAX_EPOCH_S = 32_503_680_000  # year 3000: anything later is junk, not a time


def _epoch_s(value: Any) -> int | None:
    seconds = _int(value)
    return seconds if seconds is not None and 0 <= seconds < _MAX_EPOCH_S else None


def _epoch_ms(value: Any) -> int | None:
    ms = _int(value)
    return ms if ms is not None and 0 <= ms < _MAX_EPOCH_S * 1000 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_delivery(body: bytes | str) -> list[InboundEvent]:
    """Every event in one webhook delivery, in the order Meta listed them."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return [IgnoredEvent(page_id="", channel=Channel.FACEBOOK, reason="body is not JSON")]
    if not isinstance(data, dict):
        return [IgnoredEvent(page_id="", channel=Channel.FACEBOOK, reason="body is not a JSON object")]
    obj = data.get("object")
    channel = _OBJECT_CHANNELS.get(obj) if isinstance(obj, str) else None
    if channel is None:
        return [IgnoredEvent(page_id="", channel=Channel.FACEBOOK, reason="unknown object", detail=_detail(obj))]
    entries = _list(data.get("entry"))
    if not entries:
        return [IgnoredEvent(page_id="", channel=channel, reason="delivery has no entries")]
    events: list[InboundEvent] = []
    for entry in entries:
        events.extend(_parse_entry(entry, channel))
    return events


def _parse_entry(entry: Any, channel: Channel) -> Iterator[InboundEvent]:
    if not isinstance(entry, dict):
        yield IgnoredEvent(page_id="", channel=channel, reason="entry is not an object")
        return
    page_id = _id(entry.get("id"))
    if page_id is None:
        yield IgnoredEvent(page_id="", channel=channel, reason="entry has no id")
        return
    entry_time = _epoch_ms(entry.get("time"))
    had_items = False
    for change in _list(entry.get("changes")):
        had_items = True
        if page_id == "0":
            # The dashboard's "Test" button: a changes[] shape even for messaging fields.
            yield TestPingEvent(page_id=page_id, channel=channel, field_name=_detail(_dict(change).get("field")))
            continue
        yield _parse_change(change, page_id, channel, entry_time)
    for name, standby in (("messaging", False), ("standby", True)):
        for item in _list(entry.get(name)):
            had_items = True
            yield _parse_messaging(item, page_id, channel, standby)
    if not had_items:
        yield IgnoredEvent(page_id=page_id, channel=channel, reason="entry has no changes or messaging")


def _parse_change(change: Any, page_id: str, channel: Channel, entry_time: int | None) -> InboundEvent:
    if not isinstance(change, dict):
        return IgnoredEvent(page_id=page_id, channel=channel, reason="change is not an object")
    field_name = change.get("field")
    value = change.get("value")
    if not isinstance(value, dict):
        return IgnoredEvent(page_id=page_id, channel=channel, reason="change has no value", detail=_detail(field_name))
    if field_name == "feed":
        return _parse_feed(value, page_id, channel)
    if field_name == "live_videos":
        video_id, status = _id(value.get("id")), _text(value.get("status"), 40)
        if video_id and status:
            return LiveVideoEvent(page_id=page_id, channel=channel, video_id=video_id, status=status)
        return IgnoredEvent(page_id=page_id, channel=channel, reason="live_videos change without id or status")
    if field_name == "message_template_status_update":
        template_id, event = _id(value.get("message_template_id")), _text(value.get("event"), 40)
        if not (template_id and event):
            return IgnoredEvent(page_id=page_id, channel=channel, reason="template status without id or event")
        reason = _text(value.get("reason"), 1000)
        return TemplateStatusEvent(
            page_id=page_id,
            channel=channel,
            template_id=template_id,
            event=event.upper(),
            name=_text(value.get("message_template_name"), 512),
            language=_text(value.get("message_template_language"), 16),
            reason=None if reason in (None, "NONE") else reason,
        )
    # isinstance first: a list or object there is unhashable, and `in` a set would raise.
    if channel is Channel.INSTAGRAM and isinstance(field_name, str) and field_name in _IG_COMMENT_FIELDS:
        return _parse_ig_comment(value, page_id, entry_time, str(field_name))
    return IgnoredEvent(page_id=page_id, channel=channel, reason="unknown field", detail=_detail(field_name))


def _author(value: dict[str, Any]) -> tuple[str | None, str | None]:
    author = _dict(value.get("from"))
    if author:
        return _id(author.get("id")), _text(author.get("name") or author.get("username"), 200)
    # Graph API <= v2.9 sent sender_id / sender_name instead of from{}.
    return _id(value.get("sender_id")), _text(value.get("sender_name"), 200)


def _parse_feed(value: dict[str, Any], page_id: str, channel: Channel) -> InboundEvent:
    item, verb = value.get("item"), value.get("verb")
    if item != "comment":
        return IgnoredEvent(
            page_id=page_id, channel=channel, reason="feed item not handled", detail=_detail(f"{item}/{verb}")
        )
    try:
        comment_verb = CommentVerb(verb)
    except ValueError:
        return IgnoredEvent(page_id=page_id, channel=channel, reason="comment verb not handled", detail=_detail(verb))
    comment_id, post_id = _id(value.get("comment_id")), _id(value.get("post_id"))
    if comment_id is None or post_id is None:
        return IgnoredEvent(page_id=page_id, channel=channel, reason="comment without comment_id or post_id")
    author_id, author_name = _author(value)
    return CommentEvent(
        page_id=page_id,
        channel=channel,
        verb=comment_verb,
        comment_id=comment_id,
        post_id=post_id,
        parent_id=_id(value.get("parent_id")),
        author_id=author_id,
        author_name=author_name,
        message=_text(value.get("message")),
        created_time=_epoch_s(value.get("created_time")),
    )


def _parse_ig_comment(value: dict[str, Any], page_id: str, entry_time: int | None, field_name: str) -> InboundEvent:
    comment_id = _id(value.get("id"))
    media = _dict(value.get("media"))
    media_id = _id(media.get("id"))
    if comment_id is None or media_id is None:
        return IgnoredEvent(page_id=page_id, channel=Channel.INSTAGRAM, reason=f"{field_name} without id or media")
    author_id, author_name = _author(value)
    created = entry_time // 1000 if entry_time and entry_time > 10**11 else entry_time
    return CommentEvent(
        page_id=page_id,
        channel=Channel.INSTAGRAM,
        verb=CommentVerb.ADD,
        comment_id=comment_id,
        post_id=media_id,
        parent_id=_id(value.get("parent_id")) or media_id,
        author_id=author_id,
        author_name=author_name,
        message=_text(value.get("text")),
        created_time=created,
        # Meta sends `live_comments` only while the live is on; its private reply may only go then too.
        source=IG_LIVE_SOURCE if field_name == "live_comments" else "webhook",
    )


def _referral(value: Any) -> Referral | None:
    ref = _dict(value)
    if not ref:
        return None
    return Referral(
        ref=_text(ref.get("ref"), 1000),
        source=_text(ref.get("source"), 80),
        type=_text(ref.get("type"), 80),
        ad_id=_id(ref.get("ad_id")),
    )


def _parse_messaging(item: Any, page_id: str, channel: Channel, standby: bool) -> InboundEvent:
    if not isinstance(item, dict):
        return IgnoredEvent(page_id=page_id, channel=channel, reason="messaging item is not an object")
    sender_id = _id(_dict(item.get("sender")).get("id"))
    recipient_id = _id(_dict(item.get("recipient")).get("id"))
    timestamp = _epoch_ms(item.get("timestamp"))
    if sender_id is None or recipient_id is None or timestamp is None:
        return IgnoredEvent(page_id=page_id, channel=channel, reason="messaging item without sender, recipient or time")
    base = {
        "page_id": page_id,
        "channel": channel,
        "sender_id": sender_id,
        "recipient_id": recipient_id,
        "timestamp": timestamp,
        "standby": standby,
    }
    if "message" in item:
        return _parse_message(_dict(item.get("message")), base)
    if "postback" in item:
        postback = _dict(item.get("postback"))
        payload = _text(postback.get("payload"), 1000)
        if payload is None:
            return IgnoredEvent(page_id=page_id, channel=channel, reason="postback without payload")
        return PostbackEvent(
            **base,
            payload=payload,
            title=_text(postback.get("title"), 200),
            referral=_referral(postback.get("referral")),
            mid=_id(postback.get("mid")),
        )
    if "referral" in item:
        referral = _referral(item.get("referral"))
        if referral is None:
            return IgnoredEvent(page_id=page_id, channel=channel, reason="referral without content")
        return ReferralEvent(**base, referral=referral)
    if "reaction" in item:
        reaction = _dict(item.get("reaction"))
        mid = _id(reaction.get("mid"))
        if mid is None:
            return IgnoredEvent(page_id=page_id, channel=channel, reason="reaction without mid")
        return ReactionEvent(
            **base,
            mid=mid,
            reaction=_text(reaction.get("reaction"), 40),
            action=_text(reaction.get("action"), 40) or "react",
        )
    if "delivery" in item:
        delivery = _dict(item.get("delivery"))
        watermark = _epoch_ms(delivery.get("watermark"))
        if watermark is None:
            return IgnoredEvent(page_id=page_id, channel=channel, reason="delivery without watermark")
        mids = tuple(m for m in (_id(x) for x in _list(delivery.get("mids"))) if m)
        return DeliveryEvent(**base, watermark=watermark, mids=mids)
    if "read" in item:
        read = _dict(item.get("read"))
        watermark = _epoch_ms(read.get("watermark"))
        mid = _id(read.get("mid"))
        if watermark is None and mid is None:
            return IgnoredEvent(page_id=page_id, channel=channel, reason="read without watermark")
        return ReadEvent(**base, watermark=watermark if watermark is not None else timestamp, mid=mid)
    known = sorted(k for k in item if k not in {"sender", "recipient", "timestamp"})
    return IgnoredEvent(
        page_id=page_id, channel=channel, reason="messaging kind not handled", detail=_detail(",".join(known))
    )


def _parse_message(message: dict[str, Any], base: dict[str, Any]) -> InboundEvent:
    mid = _id(message.get("mid"))
    if mid is None:
        return IgnoredEvent(page_id=base["page_id"], channel=base["channel"], reason="message without mid")
    if message.get("is_deleted") is True:
        return IgnoredEvent(page_id=base["page_id"], channel=base["channel"], reason="message unsent", detail=mid)
    attachments = []
    for raw in _list(message.get("attachments")):
        att = _dict(raw)
        kind = _text(att.get("type"), 40)
        if kind is None:
            continue
        payload = _dict(att.get("payload"))
        attachments.append(
            Attachment(
                type=kind,
                url=_text(payload.get("url"), 4000),
                # A template's (a button template the Page sent, echoed) is its text: what the shopper read.
                title=_text(att.get("title") or payload.get("title"), 200)
                or (_text(payload.get("text"), 2000) if kind == "template" else None),
            )
        )
    app_id = message.get("app_id")
    return MessageEvent(
        **base,
        mid=mid,
        text=_text(message.get("text")),
        quick_reply_payload=_text(_dict(message.get("quick_reply")).get("payload"), 1000),
        attachments=tuple(attachments),
        reply_to_mid=_id(_dict(message.get("reply_to")).get("mid")),
        is_echo=message.get("is_echo") is True,
        app_id=_id(app_id),
        metadata=_text(message.get("metadata"), 1000),
    )
