"""The webhook player: signs Meta-shaped webhooks and POSTs them to our server, as Meta would.

It plays what a shopper does (`/_emulator/webhooks/*`: a comment, a message, a postback, a referral, any
raw payload), sends the echo of each message the Page sends, retries a failed delivery after each of
`webhook_retry_delays`, and records every delivery. From each payload it plays it learns what Meta would
know: the shopper's last activity (which opens the messaging window), comments and visitor posts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from bot.emulator.control import ControlError, control_body, created_time, known_page, text
from bot.emulator.params import id_param
from bot.emulator.state import EmulatorState, FeedObject
from bot.inbound import webhook_factory as wf

__all__ = ["WebhookPlayer"]

log = logging.getLogger("plusone.emulator")


class WebhookPlayer:
    """Deliveries toward our server's /webhook; `session` is open while the application runs."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()  # echoes on their way
        # What Meta learns from an `object: "instagram"` delivery (bot.emulator.instagram sets it).
        self.instagram_learn: Callable[[dict[str, Any]], None] | None = None
        self._delivery_seq = itertools.count(1)

    # --- what Meta learns from the webhooks it sends --------------------------------------------------

    def learn(self, payload: Any) -> None:
        """Take what Meta would know from a webhook it sends: shopper activity, comments, visitor posts."""
        if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
            return
        if payload.get("object") == "instagram":
            if self.instagram_learn is not None:
                self.instagram_learn(payload)
            return
        for entry in payload["entry"]:
            if not isinstance(entry, dict):
                continue
            page_id = id_param(entry.get("id"))
            for item in entry.get("messaging") or []:
                if isinstance(item, dict) and page_id is not None:
                    self._learn_messaging(page_id, item)
            for change in entry.get("changes") or []:
                if isinstance(change, dict) and change.get("field") == "feed" and page_id is not None:
                    self._learn_feed(page_id, change.get("value"))

    def _learn_messaging(self, page_id: str, item: dict[str, Any]) -> None:
        message = item.get("message")
        if isinstance(message, dict) and message.get("is_echo"):
            return
        # What opens the 24-hour window: the shopper's message, postback, referral or reaction (not reads).
        if not any(key in item for key in ("message", "postback", "referral", "reaction")):
            return
        sender = item.get("sender")
        psid = id_param(sender.get("id")) if isinstance(sender, dict) else None
        if psid is None or psid == page_id:
            return
        stamp = item.get("timestamp")
        at = stamp / 1000 if isinstance(stamp, int | float) and not isinstance(stamp, bool) else self.state.now()
        key = (page_id, psid)
        self.state.activity[key] = max(at, self.state.activity.get(key, at))

    def _learn_feed(self, page_id: str, value: Any) -> None:
        if not isinstance(value, dict):
            return
        verb, item = value.get("verb"), value.get("item")
        sender = value.get("from")
        author = id_param(sender.get("id")) if isinstance(sender, dict) else None
        created = value.get("created_time")
        created_at = float(created) if isinstance(created, int | float) and not isinstance(created, bool) else None
        post_id = id_param(value.get("post_id")) or ""
        comments, posts = self.state.comments, self.state.posts
        if item == "comment" and (comment_id := id_param(value.get("comment_id"))) is not None:
            if verb == "remove":
                comments.pop(comment_id, None)
            elif verb in ("add", "edited"):
                known = comments.get(comment_id)
                if known is None:
                    when = created_at if created_at is not None else self.state.now()
                    comments[comment_id] = FeedObject(comment_id, page_id, post_id, author, when)
                else:
                    known.author_id = author or known.author_id
        elif item in ("post", "status", "photo", "video") and verb == "add" and post_id and author != page_id:
            when = created_at if created_at is not None else self.state.now()
            posts.setdefault(post_id, FeedObject(post_id, page_id, post_id, author, when))

    # --- delivering -----------------------------------------------------------------------------------

    async def deliver(self, payload: dict[str, Any], kind: str, retry_delays: tuple[float, ...] = ()) -> dict[str, Any]:
        """Sign and POST one delivery to our server; retried after each delay while it fails."""
        config = self.state.config
        url = config.webhook_url
        if not url or self.session is None:
            raise ControlError("no webhook_url configured")
        body, headers = wf.signed(payload, config.app_secret)
        record: dict[str, Any] = {
            "seq": next(self._delivery_seq),
            "at": self.state.now(),
            "kind": kind,
            "url": url,
            "attempts": 0,
            "status": None,
            "error": None,
            "payload": payload,
        }
        self.state.deliveries.append(record)
        for delay in (0.0, *retry_delays):
            if delay:
                await asyncio.sleep(delay)
            record["attempts"] += 1
            try:
                async with self.session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    record["status"], record["error"] = resp.status, None
            except (aiohttp.ClientError, TimeoutError) as exc:
                record["status"], record["error"] = None, f"{type(exc).__name__}: {exc}"
                continue
            if 200 <= resp.status < 300:
                break
        if record["status"] is None or record["status"] >= 300:
            log.warning("webhook %s to %s failed after %d attempts: %s", kind, url, record["attempts"], record)
        return record

    def schedule_echo(self, page_id: str, psid: str, message: dict[str, Any], mid: str, obj: str = "page") -> None:
        """The `message_echoes` webhook of a message the Page sent, delivered in the background. For Instagram
        (`obj="instagram"`, `page_id` the account): the echo inside `messages`, as Instagram sends it."""
        config = self.state.config
        if not (config.send_echoes and config.webhook_url and self.session is not None):
            return
        attachment = message.get("attachment")
        item = wf.message_item(
            page_id=page_id,
            psid=psid,
            text=message.get("text"),
            mid=mid,
            timestamp=int(self.state.now() * 1000),
            attachments=[attachment] if isinstance(attachment, dict) else None,
            echo=True,
            app_id=config.app_id,
            metadata=message.get("metadata"),
        )
        delivery = self.deliver(wf.messaging_delivery(page_id, [item], obj=obj), "echo", config.webhook_retry_delays)
        task = asyncio.create_task(delivery)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def play(self, payload: dict[str, Any], kind: str, **extra: Any) -> web.Response:
        """Deliver a payload a control route made, and answer the control call with how it went."""
        if not self.state.config.webhook_url:
            raise ControlError("no webhook_url configured")
        # Learned before delivering: a server that answers inside the webhook already finds the window open.
        self.learn(payload)
        record = await self.deliver(payload, kind)
        body = {"status": record["status"], **extra, "payload": payload}
        if record["error"] is not None:
            body["error"] = record["error"]
            return web.json_response(body, status=502)
        return web.json_response(body)

    # --- control routes -------------------------------------------------------------------------------

    async def get_deliveries(self, request: web.Request) -> web.Response:
        kind = request.query.get("kind")
        return web.json_response([d for d in self.state.deliveries if not kind or d["kind"] == kind])

    async def play_comment(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id = known_page(data, self.state)
        verb = text(data, "verb", required=False) or "add"
        message = data.get("message")
        if verb != "remove" and not isinstance(message, str):
            raise ControlError("message is required (a string)")
        payload = wf.comment_delivery(
            page_id=page_id,
            post_id=text(data, "post_id"),
            message=message,
            user_id=text(data, "user_id"),
            user_name=text(data, "user_name", required=False) or "Shopper",
            comment_id=text(data, "comment_id", required=False),
            verb=verb,
            created_time=int(created_time(data, self.state.now())),
        )
        comment_id = payload["entry"][0]["changes"][0]["value"]["comment_id"]
        return await self.play(payload, "comment", comment_id=comment_id)

    async def play_message(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id, psid = known_page(data, self.state), text(data, "psid")
        message = data.get("text")
        if not isinstance(message, str):
            raise ControlError("text is required (a string)")
        item = wf.message_item(
            page_id=page_id,
            psid=psid,
            text=message,
            mid=text(data, "mid", required=False),
            timestamp=int(self.state.now() * 1000),
            quick_reply=text(data, "quick_reply", required=False),
        )
        return await self.play(wf.messaging_delivery(page_id, [item]), "message", mid=item["message"]["mid"])

    async def play_postback(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id, psid = known_page(data, self.state), text(data, "psid")
        item = wf.postback_item(
            page_id=page_id,
            psid=psid,
            payload=text(data, "payload"),
            title=text(data, "title", required=False),
            ref=text(data, "ref", required=False),
            timestamp=int(self.state.now() * 1000),
        )
        return await self.play(wf.messaging_delivery(page_id, [item]), "postback")

    async def play_referral(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id, psid = known_page(data, self.state), text(data, "psid")
        item = wf.referral_item(
            page_id=page_id, psid=psid, ref=text(data, "ref"), timestamp=int(self.state.now() * 1000)
        )
        return await self.play(wf.messaging_delivery(page_id, [item]), "referral")

    async def play_raw(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        payload = data.get("payload")
        if not isinstance(payload, dict):
            raise ControlError("payload is required (a JSON object)")
        return await self.play(payload, "raw")
