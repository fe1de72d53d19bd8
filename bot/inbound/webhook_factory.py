"""Build webhook deliveries the way Meta sends them. Pure.

Used by `plusone simulate`, the tests, the benchmarks and (later) the Graph emulator's webhook player,
so everything that imitates Meta imitates it the same way. Bodies are encoded like Meta's: compact JSON
with non-ASCII escaped as \\uXXXX, signed over those exact bytes.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from bot.inbound.signature import sign_body

_counter = itertools.count(1)


def _next_id() -> int:
    return int(time.time() * 1000) * 1000 + next(_counter) % 1000


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()


def signed(payload: dict[str, Any] | bytes, app_secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a signed delivery."""
    body = payload if isinstance(payload, bytes) else encode(payload)
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign_body(body, app_secret)}


def page_delivery(entries: list[dict[str, Any]], obj: str = "page") -> dict[str, Any]:
    return {"object": obj, "entry": entries}


def comment_change(
    *,
    page_id: str,
    post_id: str,
    message: str | None,
    user_id: str,
    user_name: str = "Shopper",
    comment_id: str | None = None,
    verb: str = "add",
    parent_id: str | None = None,
    created_time: int | None = None,
) -> dict[str, Any]:
    """One `feed` change for a comment; `post_id` is the post's own id (the `{page}_{post}` form is built)."""
    full_post_id = post_id if "_" in post_id else f"{page_id}_{post_id}"
    object_id = full_post_id.split("_", 1)[1]
    value: dict[str, Any] = {
        "item": "comment",
        "verb": verb,
        "comment_id": comment_id or f"{object_id}_{_next_id()}",
        "post_id": full_post_id,
        "parent_id": parent_id or full_post_id,
        "from": {"id": user_id, "name": user_name},
    }
    if verb != "remove":
        value["created_time"] = created_time if created_time is not None else int(time.time())
        value["message"] = message or ""
    return {"field": "feed", "value": value}


def comment_delivery(*, page_id: str, **kwargs: Any) -> dict[str, Any]:
    change = comment_change(page_id=page_id, **kwargs)
    return page_delivery([{"id": page_id, "time": int(time.time()), "changes": [change]}])


def message_item(
    *,
    page_id: str,
    psid: str,
    text: str | None = None,
    mid: str | None = None,
    timestamp: int | None = None,
    quick_reply: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    echo: bool = False,
    app_id: str | None = None,
    metadata: str | None = None,
) -> dict[str, Any]:
    ts = timestamp if timestamp is not None else int(time.time() * 1000)
    message: dict[str, Any] = {"mid": mid or f"m_{_next_id()}"}
    if text is not None:
        message["text"] = text
    if quick_reply is not None:
        message["quick_reply"] = {"payload": quick_reply}
    if attachments:
        message["attachments"] = attachments
    if echo:
        message["is_echo"] = True
        if app_id is not None:
            message["app_id"] = int(app_id) if app_id.isdigit() else app_id
        if metadata is not None:
            message["metadata"] = metadata
    sender, recipient = (page_id, psid) if echo else (psid, page_id)
    return {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": ts, "message": message}


def messaging_delivery(page_id: str, items: list[dict[str, Any]], obj: str = "page") -> dict[str, Any]:
    # Meta puts one messaging item per entry; several entries may share one delivery.
    return page_delivery(
        [
            {"id": page_id, "time": item.get("timestamp", int(time.time() * 1000)), "messaging": [item]}
            for item in items
        ],
        obj,
    )


def message_delivery(*, page_id: str, psid: str, **kwargs: Any) -> dict[str, Any]:
    return messaging_delivery(page_id, [message_item(page_id=page_id, psid=psid, **kwargs)])


def postback_item(
    *,
    page_id: str,
    psid: str,
    payload: str,
    title: str | None = None,
    ref: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    postback: dict[str, Any] = {"payload": payload}
    if title:
        postback["title"] = title
    if ref:
        postback["referral"] = {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}
    ts = timestamp if timestamp is not None else int(time.time() * 1000)
    return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": ts, "postback": postback}


def referral_item(*, page_id: str, psid: str, ref: str, timestamp: int | None = None) -> dict[str, Any]:
    ts = timestamp if timestamp is not None else int(time.time() * 1000)
    return {
        "sender": {"id": psid},
        "recipient": {"id": page_id},
        "timestamp": ts,
        "referral": {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"},
    }


def live_video_delivery(*, page_id: str, video_id: str, status: str) -> dict[str, Any]:
    """A `live_videos` change, as Meta sends it: `{"id", "status"}` with the status in lower case (`live`,
    `live_stopped`, `vod`, `scheduled_live`...: `bot.inbound.live_status`)."""
    change = {"field": "live_videos", "value": {"id": video_id, "status": status}}
    return page_delivery([{"id": page_id, "time": int(time.time()), "changes": [change]}])


def template_status_delivery(
    *, page_id: str, template_id: str, name: str, language: str, event: str, reason: str | None = None
) -> dict[str, Any]:
    """A `message_template_status_update` change: Meta reviewed a template of the Page (APPROVED, REJECTED...)."""
    value = {
        "event": event,
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "reason": reason or "NONE",
    }
    change = {"field": "message_template_status_update", "value": value}
    return page_delivery([{"id": page_id, "time": int(time.time()), "changes": [change]}])
