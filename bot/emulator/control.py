"""The `/_emulator/*` control routes' common ground, and the client tests and the demo call them with.

Server side: reading a control body (JSON in; a bad field is a `ControlError`, answered 400 with the
reason by the `control_errors` middleware). Each surface module registers its own control routes.
Client side: `ControlClient`, one method per control route; `GraphEmulator` (bot.emulator.app) is one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.emulator.state import EmulatorState

__all__ = [
    "ControlClient",
    "ControlError",
    "EmulatorError",
    "control_body",
    "control_errors",
    "created_time",
    "flag",
    "known_page",
    "number",
    "text",
]


class ControlError(Exception):
    """Bad input to a control route: answered 400 with the reason."""


class EmulatorError(Exception):
    """A control call the emulator refused."""


# --- control input helpers --------------------------------------------------------------------------------


async def control_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ControlError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ControlError("the body must be a JSON object")
    return data


def text(data: dict[str, Any], name: str, *, required: bool = True) -> Any:
    """A non-empty string field (JSON numbers are taken as ids); None when absent and not required."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ControlError(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ControlError(f"{name} must be a string")
    return str(value)


def number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ControlError(f"{name} must be a number")
    return float(value)


def flag(data: dict[str, Any], name: str, *, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ControlError(f"{name} must be true or false")
    return value


def known_page(data: dict[str, Any], state: EmulatorState) -> str:
    """The `page_id` field, which must name one of the emulated Pages."""
    page_id = text(data, "page_id")
    if page_id not in state.config.pages:
        raise ControlError(f"unknown page_id {page_id!r} (pages: {', '.join(state.config.pages)})")
    return page_id


def created_time(data: dict[str, Any], now: float) -> float:
    """The `created_time` field: epoch seconds or an ISO 8601 time; `now` when absent."""
    value = data.get("created_time")
    if value is None:
        return now
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            raise ControlError("created_time must be epoch seconds or an ISO 8601 time") from None
    return number(data, "created_time")


@web.middleware
async def control_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ControlError as exc:
        return web.json_response({"error": str(exc)}, status=400)


# --- the control client -----------------------------------------------------------------------------------


class ControlClient:
    """Calls the control routes of an emulator at `base_url` through `_session` (both set once it runs)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

    async def _control(self, method: str, path: str, body: dict[str, Any] | None = None, **query: str) -> Any:
        if self._session is None:
            raise EmulatorError("the emulator is not started")
        url = self.base_url + "_emulator/" + path
        async with self._session.request(method, url, json=body, params=query or None) as resp:
            data = await resp.json(content_type=None)
            # 502 from the webhook player means our server could not be reached: the answer says why.
            if resp.status >= 400 and resp.status != 502:
                raise EmulatorError(f"{method} {path}: {resp.status} {data.get('error', data)}")
            return data

    async def calls(self, path_contains: str | None = None) -> list[dict[str, Any]]:
        query = {"path_contains": path_contains} if path_contains else {}
        return await self._control("GET", "calls", **query)

    async def clear_calls(self) -> None:
        await self._control("DELETE", "calls")

    async def deliveries(self, kind: str | None = None) -> list[dict[str, Any]]:
        return await self._control("GET", "deliveries", **({"kind": kind} if kind else {}))

    async def set_fault(
        self,
        kind: str,
        *,
        count: int | None = None,
        share: float | None = None,
        seed: int | None = None,
        path_contains: str | None = None,
        delay_s: float | None = None,
        status: int | None = None,
        code: int | None = None,
        duration_s: float | None = None,
        scope: str | None = None,
        page_id: str | None = None,
    ) -> dict[str, Any]:
        """Fail the next `count` matching Graph calls, or a `share` of them, or every one for `duration_s`
        seconds of the emulator's clock (every one for ever when none is given); `scope="page"` with a
        `page_id`: only that Page's Send API calls."""
        body = {
            "kind": kind,
            "next": count,
            "share": share,
            "seed": seed,
            "path_contains": path_contains,
            "delay_s": delay_s,
            "status": status,
            "code": code,
            "duration_s": duration_s,
            "scope": scope,
            "page_id": page_id,
        }
        return await self._control("POST", "faults", {k: v for k, v in body.items() if v is not None})

    async def faults(self) -> list[dict[str, Any]]:
        return await self._control("GET", "faults")

    async def clear_faults(self) -> None:
        await self._control("DELETE", "faults")

    async def open_window(self, page_id: str, psid: str, at: float | None = None) -> dict[str, Any]:
        """Set the shopper's last activity (default: the emulator's now)."""
        body: dict[str, Any] = {"page_id": page_id, "psid": psid}
        if at is not None:
            body["at"] = at
        return await self._control("POST", "activity", body)

    async def block(self, page_id: str, psid: str, blocked: bool = True) -> dict[str, Any]:
        return await self._control("POST", "block", {"page_id": page_id, "psid": psid, "blocked": blocked})

    async def set_clock_offset(self, offset_s: float) -> dict[str, Any]:
        return await self._control("POST", "clock", {"offset_s": offset_s})

    async def register_comment(
        self,
        page_id: str,
        comment_id: str,
        *,
        post_id: str | None = None,
        author_id: str | None = None,
        created_time: float | None = None,
    ) -> dict[str, Any]:
        body = {"page_id": page_id, "comment_id": comment_id, "post_id": post_id, "author_id": author_id}
        if created_time is not None:
            body["created_time"] = created_time
        return await self._control("POST", "comments", {k: v for k, v in body.items() if v is not None})

    async def register_post(
        self, page_id: str, post_id: str, *, author_id: str | None = None, created_time: float | None = None
    ) -> dict[str, Any]:
        body = {"page_id": page_id, "post_id": post_id, "author_id": author_id, "created_time": created_time}
        return await self._control("POST", "posts", {k: v for k, v in body.items() if v is not None})

    async def comments(self) -> dict[str, Any]:
        return await self._control("GET", "comments")

    async def unsubscribe(self, page_id: str) -> dict[str, Any]:
        return await self._control("POST", "unsubscribe", {"page_id": page_id})

    async def subscribe_other_app(self, page_id: str, app_id: str, fields: list[str]) -> dict[str, Any]:
        """Another app subscribes to the Page (Meta lists it beside ours in `subscribed_apps`)."""
        return await self._control("POST", "page_apps", {"page_id": page_id, "app_id": app_id, "fields": fields})

    async def drop_app_subscription(self, target: str = "page") -> dict[str, Any]:
        """The app's own subscription to `target` (object) removed, as in the app dashboard."""
        return await self._control("DELETE", "app_subscriptions", {"object": target})

    async def open_mme(self, page_id: str, psid: str, ref: str, *, text: str | None = None) -> dict[str, Any]:
        """A person opens `m.me/<page>?ref=<ref>` and does what Meta lets them (bot.emulator.profile)."""
        body = {"page_id": page_id, "psid": psid, "ref": ref, "text": text}
        return await self._control("POST", "mme", {k: v for k, v in body.items() if v is not None})

    async def describe_person(
        self, page_id: str, psid: str, first_name: str, last_name: str = "", profile_pic: str = ""
    ) -> dict[str, Any]:
        """What the User Profile API tells of this shopper (once they have written to the Page)."""
        body = {"page_id": page_id, "psid": psid, "first_name": first_name}
        body |= {k: v for k, v in (("last_name", last_name), ("profile_pic", profile_pic)) if v}
        return await self._control("POST", "people", body)

    async def messenger_profiles(self) -> dict[str, Any]:
        return await self._control("GET", "profiles")

    async def expire_token(self, page_id: str, expired: bool = True) -> dict[str, Any]:
        return await self._control("POST", "token", {"page_id": page_id, "expired": expired})

    async def templates(self) -> list[dict[str, Any]]:
        return await self._control("GET", "templates")

    async def review_template(
        self,
        status: str,
        *,
        template_id: str | None = None,
        page_id: str | None = None,
        name: str | None = None,
        language: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Meta's review of a template (APPROVED, REJECTED...); its webhook is delivered before this returns."""
        body = {"status": status, "id": template_id, "page_id": page_id, "name": name, "language": language}
        if reason is not None:
            body["reason"] = reason
        return await self._control("POST", "templates/review", body)

    async def reset(self) -> None:
        await self._control("POST", "reset")

    async def deliver_comment(
        self,
        page_id: str,
        post_id: str,
        user_id: str,
        message: str,
        *,
        user_name: str = "Shopper",
        comment_id: str | None = None,
        verb: str | None = None,
        created_time: float | None = None,
    ) -> dict[str, Any]:
        body = {
            "page_id": page_id,
            "post_id": post_id,
            "user_id": user_id,
            "user_name": user_name,
            "message": message,
            "comment_id": comment_id,
            "verb": verb,
            "created_time": created_time,
        }
        return await self._control("POST", "webhooks/comment", {k: v for k, v in body.items() if v is not None})

    async def deliver_message(
        self, page_id: str, psid: str, text: str, *, quick_reply: str | None = None
    ) -> dict[str, Any]:
        body = {"page_id": page_id, "psid": psid, "text": text, "quick_reply": quick_reply}
        return await self._control("POST", "webhooks/message", {k: v for k, v in body.items() if v is not None})

    async def deliver_postback(
        self, page_id: str, psid: str, payload: str, *, ref: str | None = None
    ) -> dict[str, Any]:
        body = {"page_id": page_id, "psid": psid, "payload": payload, "ref": ref}
        return await self._control("POST", "webhooks/postback", {k: v for k, v in body.items() if v is not None})

    async def deliver_referral(self, page_id: str, psid: str, ref: str) -> dict[str, Any]:
        return await self._control("POST", "webhooks/referral", {"page_id": page_id, "psid": psid, "ref": ref})

    async def deliver_raw(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._control("POST", "webhooks/raw", {"payload": payload})

    async def live_video(
        self,
        page_id: str,
        video_id: str | None = None,
        *,
        status: str = "live",
        webhook: bool = True,
        post_id: str | None = None,
    ) -> dict[str, Any]:
        """Start a live video (or set its status: any of Meta's, `scheduled_live`, `LIVE_NOW`, `vod`...); its
        `live_videos` webhook goes out unless `webhook=False`. `post_id` names a new video's post (else Meta's
        way: an id of its own)."""
        body = {"page_id": page_id, "video_id": video_id, "status": status, "webhook": webhook, "post_id": post_id}
        return await self._control("POST", "live_videos", {k: v for k, v in body.items() if v is not None})

    async def live_videos(self) -> list[dict[str, Any]]:
        return await self._control("GET", "live_videos")

    async def live_comment(
        self,
        video_id: str,
        user_id: str,
        message: str,
        *,
        to: tuple[str, ...] = ("webhook", "stream", "comments"),
        user_name: str = "Viewer",
        comment_id: str | None = None,
        parent_id: str | None = None,
        created_time: float | None = None,
    ) -> dict[str, Any]:
        """A viewer comments on a live video; `to` picks Meta's channels that carry it."""
        body = {
            "video_id": video_id,
            "user_id": user_id,
            "user_name": user_name,
            "message": message,
            "to": list(to),
            "comment_id": comment_id,
            "parent_id": parent_id,
            "created_time": created_time,
        }
        return await self._control("POST", "live_comments", {k: v for k, v in body.items() if v is not None})

    async def drop_live_streams(self, video_id: str, how: str = "abort") -> int:
        """Cut every open live comment stream of the video; returns how many there were."""
        reply = await self._control("POST", "live_streams/drop", {"video_id": video_id, "how": how})
        return int(reply["dropped"])

    # --- Instagram (bot.emulator.instagram) ---------------------------------------------------------------

    async def instagram_media(
        self, account_id: str, media_id: str, *, media_product_type: str = "FEED", live: bool | None = None
    ) -> dict[str, Any]:
        """A post, reel or live of the linked Instagram account; `live=False` ends a live."""
        body = {"account_id": account_id, "media_id": media_id, "media_product_type": media_product_type, "live": live}
        return await self._control("POST", "instagram/media", {k: v for k, v in body.items() if v is not None})

    async def instagram_comment(
        self,
        account_id: str,
        media_id: str,
        igsid: str,
        text: str,
        *,
        username: str = "shopper",
        comment_id: str | None = None,
        parent_id: str | None = None,
        created_time: float | None = None,
    ) -> dict[str, Any]:
        """A shopper comments on an Instagram media: Meta's `comments` (or `live_comments`) webhook."""
        body = {
            "account_id": account_id,
            "media_id": media_id,
            "igsid": igsid,
            "text": text,
            "username": username,
            "comment_id": comment_id,
            "parent_id": parent_id,
            "created_time": created_time,
        }
        return await self._control("POST", "instagram/comment", {k: v for k, v in body.items() if v is not None})

    async def instagram_message(
        self, account_id: str, igsid: str, text: str, *, quick_reply: str | None = None, mid: str | None = None
    ) -> dict[str, Any]:
        """A shopper's Instagram Direct message to the account."""
        body = {"account_id": account_id, "igsid": igsid, "text": text, "quick_reply": quick_reply, "mid": mid}
        return await self._control("POST", "instagram/message", {k: v for k, v in body.items() if v is not None})

    async def instagram_seen(self, account_id: str, igsid: str, mid: str) -> dict[str, Any]:
        return await self._control("POST", "instagram/seen", {"account_id": account_id, "igsid": igsid, "mid": mid})
