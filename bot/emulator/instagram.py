"""Instagram as Meta plays it for an app with Facebook Login (Instagram Messaging via the Messenger Platform).

Each emulated Page may have a linked Instagram professional account (`EmulatedPage.instagram_account_id`); the
Page's token acts for it. Webhooks come with `object: "instagram"` and `entry.id` the account's id: comments
(`comments`, and `live_comments` only while the live is on) as `changes[]`, Direct messages, their echoes
(inside `messages`, `is_echo`) and `messaging_seen` as `messaging[]` (docs/meta-platform.md §6).

Graph side:
- `POST /{page-id}/messages` to an Instagram-scoped id (IGSID) inside the 24-hour window its own message
  opened (HUMAN_AGENT: 7 days); outside it Meta answers `10/2534022`, Instagram's outside-window code.
- `POST /{page-id}/messages` with `recipient.comment_id` of an Instagram comment: the private reply, one per
  comment, within 7 days, and for a live's comment only while that live is live (Instagram Private Replies,
  2 July 2026); about 750 an hour per account.
- `POST /{ig-comment-id}/replies` with `message`: the account's public reply under a comment.
Control: `/_emulator/instagram/media` (a post, reel or live, and whether the live is on),
`/_emulator/instagram/comment` (a shopper comments on a media), `/_emulator/instagram/message` (a shopper's
Direct message), `/_emulator/instagram/seen` (the shopper read our messages).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.emulator.control import ControlError, control_body, created_time, flag, text
from bot.emulator.errors import GraphError, invalid
from bot.emulator.faults import Faults
from bot.emulator.messaging_rules import PRIVATE_REPLY_WINDOW_S, STANDARD_WINDOW_S, TAG_WINDOWS, check_message, is_text
from bot.emulator.params import id_param, object_param
from bot.emulator.state import EmulatorState, FeedObject, message_id
from bot.emulator.webhooks import WebhookPlayer
from bot.inbound import webhook_factory as wf

__all__ = ["Instagram", "InstagramMedia"]

MEDIA_PRODUCT_TYPES = ("FEED", "REELS", "STORY", "AD", "LIVE")
# "750 calls per hour per Facebook Page for private replies to comments on Instagram posts and reels"
# (Messenger Platform rate limits).
PRIVATE_REPLIES_PER_HOUR = 750


def outside_window_ig() -> GraphError:
    # Instagram's outside-window refusal (docs/meta-platform.md §4: "10/2018278 ... (IG: 10/2534022)").
    return GraphError(10, "(#10) This message is sent outside of allowed window.", 2534022)


def already_replied() -> GraphError:
    # The Send API's answer to a second private reply to one comment (Send API reference, "Added later").
    return GraphError(10900, "(#10900) Activity already replied to")


def instagram_throttled() -> GraphError:
    # The Instagram business use case throttle (Graph API rate limiting: 80002 is Instagram's).
    return GraphError(
        80002, "There have been too many calls to this Instagram account. Wait a bit and try again.", status=400
    )


@dataclass
class InstagramMedia:
    """A post, reel, story or live of a linked Instagram account; a live is `live` while it broadcasts."""

    media_id: str
    account_id: str
    page_id: str
    product_type: str = "FEED"
    live: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.media_id,
            "account_id": self.account_id,
            "page_id": self.page_id,
            "media_product_type": self.product_type,
            "live": self.live,
        }


class Instagram:
    """The Instagram surface over the shared state (its own records live here: they start empty on reset)."""

    def __init__(self, state: EmulatorState, faults: Faults, webhooks: WebhookPlayer) -> None:
        self.state = state
        self.faults = faults
        self.webhooks = webhooks
        # The account of each Page, and the Page of each account, as the configuration links them.
        self.account_of = {
            page_id: page.instagram_account_id
            for page_id, page in state.config.pages.items()
            if page.instagram_account_id
        }
        self.page_of_account = {account: page for page, account in self.account_of.items()}
        self.media: dict[str, InstagramMedia] = {}
        self.comments: dict[str, str] = {}  # Instagram comment id -> its media id (the comment is in state.comments)
        self.users: set[tuple[str, str]] = set()  # (page id, IGSID) of people who wrote or commented
        self.replies_sent: dict[str, deque[float]] = {}  # account id -> times of private replies in the last hour
        webhooks.instagram_learn = self.learn

    def reset(self) -> None:
        self.media.clear()
        self.comments.clear()
        self.users.clear()
        self.replies_sent.clear()

    # --- what Meta learns from the webhooks it sends ---------------------------------------------------

    def learn(self, payload: dict[str, Any]) -> None:
        """An `object: "instagram"` delivery: who wrote (their window opens), which comments exist."""
        for entry in payload.get("entry") or []:
            if not isinstance(entry, dict):
                continue
            account = id_param(entry.get("id"))
            page_id = self.page_of_account.get(account or "")
            if page_id is None:
                continue
            for item in entry.get("messaging") or []:
                message = item.get("message") if isinstance(item, dict) else None
                if not isinstance(message, dict) or message.get("is_echo"):
                    continue
                sender = id_param((item.get("sender") or {}).get("id"))
                if sender is None or sender == account:
                    continue
                stamp = item.get("timestamp")
                at = (
                    stamp / 1000 if isinstance(stamp, int | float) and not isinstance(stamp, bool) else self.state.now()
                )
                self.users.add((page_id, sender))
                key = (page_id, sender)
                self.state.activity[key] = max(at, self.state.activity.get(key, at))
            for change in entry.get("changes") or []:
                if isinstance(change, dict) and change.get("field") in ("comments", "live_comments"):
                    self._learn_comment(page_id, change.get("value"))

    def _learn_comment(self, page_id: str, value: Any) -> None:
        if not isinstance(value, dict):
            return
        comment_id = id_param(value.get("id"))
        media_id = id_param((value.get("media") or {}).get("id"))
        author = id_param((value.get("from") or {}).get("id"))
        if comment_id is None or media_id is None:
            return
        if comment_id not in self.state.comments:
            self.state.comments[comment_id] = FeedObject(comment_id, page_id, media_id, author, self.state.now())
        self.comments[comment_id] = media_id
        if author is not None:
            self.users.add((page_id, author))

    # --- Graph side -----------------------------------------------------------------------------------

    def handles_send(self, args: dict[str, Any]) -> bool:
        """Whether a `POST /{page}/messages` is for Instagram: to one of its comments or its people."""
        try:
            recipient = object_param(args, "recipient")
        except GraphError:
            return False
        if not isinstance(recipient, dict):
            return False
        comment_id = id_param(recipient.get("comment_id"))
        if comment_id is not None:
            return comment_id in self.comments
        igsid = id_param(recipient.get("id"))
        return igsid is not None and any(user == igsid for _, user in self.users)

    def send_message(self, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        page_id = state.page_of(ref, args, call, "POST")
        account = self.account_of.get(page_id)
        if account is None:
            raise invalid("This Page has no linked Instagram account")
        self.faults.count_send(page_id)
        messaging_type = args.get("messaging_type") or "RESPONSE"
        tag = args.get("tag") or None
        if messaging_type == "UTILITY":
            # Emulator choice: utility templates are a Messenger feature; Instagram refuses them.
            raise invalid("param messaging_type UTILITY is not supported for Instagram")
        if tag is not None and tag != "HUMAN_AGENT":
            raise invalid("param tag must be HUMAN_AGENT for Instagram")  # the only tag Instagram takes
        recipient = object_param(args, "recipient")
        message = object_param(args, "message")
        check_message(message)
        comment_id = id_param(recipient.get("comment_id"))
        if comment_id is not None:
            return self._private_reply(page_id, account, comment_id, message)
        igsid = id_param(recipient.get("id"))
        assert igsid is not None
        if (page_id, igsid) in state.blocked:
            raise GraphError(551, "This person isn't available right now.", 1545041)
        last = state.activity.get((page_id, igsid))
        age = math.inf if last is None else state.now() - last
        window = TAG_WINDOWS["HUMAN_AGENT"] if tag == "HUMAN_AGENT" else STANDARD_WINDOW_S
        if age > window:
            raise outside_window_ig()
        mid = message_id()
        self._echo(page_id, account, igsid, message, mid)
        return {"recipient_id": igsid, "message_id": mid}

    def _private_reply(self, page_id: str, account: str, comment_id: str, message: dict[str, Any]) -> dict[str, Any]:
        target = self.state.comments.get(comment_id)
        if target is None or target.page_id != page_id:
            raise invalid("Invalid comment_id parameter", 2018292)
        if target.private_reply_mid is not None:
            raise already_replied()
        media = self.media.get(self.comments.get(comment_id, ""))
        if media is not None and media.product_type == "LIVE" and not media.live:
            # "for Instagram Live ... a private reply can only be sent during the live broadcast"; Meta does not
            # document the refusal's code. Emulator choice: Instagram's outside-window refusal.
            raise outside_window_ig()
        if self.state.now() - target.created_time > PRIVATE_REPLY_WINDOW_S:
            raise outside_window_ig()
        sent = self.replies_sent.setdefault(account, deque())
        moment = time.monotonic()
        while sent and sent[0] <= moment - 3600:
            sent.popleft()
        if len(sent) >= PRIVATE_REPLIES_PER_HOUR:
            raise instagram_throttled()
        sent.append(moment)
        mid = message_id()
        target.private_reply_mid = mid  # checked and marked with no await in between
        if target.author_id is not None:
            self._echo(page_id, account, target.author_id, message, mid)
        return {"recipient_id": target.author_id or "", "message_id": mid}

    def public_reply(self, comment_id: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        """`POST /{ig-comment-id}/replies`: the account answers under the comment."""
        target = self.state.owned(self.state.comments.get(comment_id), comment_id, "POST", args, call)
        if comment_id not in self.comments:
            raise invalid(f"Object {comment_id} is not an Instagram comment")
        if not is_text(args.get("message")):
            raise invalid("param message must be non-empty.")
        new_id = str(next(self.state.object_ids))
        account = self.account_of[target.page_id]
        target.replies.append(new_id)
        self.state.comments[new_id] = FeedObject(new_id, target.page_id, target.post_id, account, self.state.now())
        self.comments[new_id] = target.post_id
        return {"id": new_id}

    def _echo(self, page_id: str, account: str, igsid: str, message: dict[str, Any], mid: str) -> None:
        """Instagram's echo of what the account sent: inside `messages`, `is_echo` (no message_echoes field)."""
        self.webhooks.schedule_echo(account, igsid, message, mid, obj="instagram")

    # --- control routes -------------------------------------------------------------------------------

    def _account(self, data: dict[str, Any]) -> tuple[str, str]:
        account = text(data, "account_id")
        page_id = self.page_of_account.get(account)
        if page_id is None:
            known = ", ".join(self.page_of_account) or "none"
            raise ControlError(f"unknown Instagram account_id {account!r} (accounts: {known})")
        return account, page_id

    async def post_media(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        account, page_id = self._account(data)
        media_id = text(data, "media_id")
        product_type = text(data, "media_product_type", required=False) or "FEED"
        if product_type not in MEDIA_PRODUCT_TYPES:
            raise ControlError(f"media_product_type must be one of {', '.join(MEDIA_PRODUCT_TYPES)}")
        live = flag(data, "live", default=product_type == "LIVE")
        media = InstagramMedia(media_id, account, page_id, product_type, live and product_type == "LIVE")
        self.media[media_id] = media
        return web.json_response(media.to_dict())

    async def post_comment(self, request: web.Request) -> web.Response:
        """A shopper comments on a media: the `comments` webhook, or `live_comments` on a live that is on."""
        data = await control_body(request)
        account, page_id = self._account(data)
        media_id, igsid = text(data, "media_id"), text(data, "igsid")
        message = data.get("text")
        if not isinstance(message, str):
            raise ControlError("text is required (a string)")
        media = self.media.get(media_id) or InstagramMedia(media_id, account, page_id)
        self.media.setdefault(media_id, media)
        if media.product_type == "LIVE" and not media.live:
            # "Notifications for Comments on Live media are only sent during the live broadcast."
            raise ControlError(f"live {media_id} is not on: Meta sends no live_comments for it")
        comment_id = text(data, "comment_id", required=False) or str(next(self.state.object_ids))
        value: dict[str, Any] = {
            "from": {"id": igsid, "username": text(data, "username", required=False) or "shopper"},
            "media": {"id": media_id, "media_product_type": media.product_type},
            "id": comment_id,
            "text": message,
        }
        parent_id = text(data, "parent_id", required=False)
        if parent_id:
            value["parent_id"] = parent_id
        field = "live_comments" if media.product_type == "LIVE" else "comments"
        at = created_time(data, self.state.now())
        payload = wf.page_delivery(
            [{"id": account, "time": int(at), "changes": [{"field": field, "value": value}]}], "instagram"
        )
        self.learn(payload)
        self.state.comments[comment_id].created_time = at
        return await self.webhooks.play(payload, field, comment_id=comment_id)

    async def post_message(self, request: web.Request) -> web.Response:
        """A shopper's Direct message to the account (opens its 24-hour window)."""
        data = await control_body(request)
        account, _page_id = self._account(data)
        igsid = text(data, "igsid")
        message = data.get("text")
        if not isinstance(message, str):
            raise ControlError("text is required (a string)")
        item = wf.message_item(
            page_id=account,
            psid=igsid,
            text=message,
            mid=text(data, "mid", required=False),
            timestamp=int(self.state.now() * 1000),
            quick_reply=text(data, "quick_reply", required=False),
        )
        payload = wf.messaging_delivery(account, [item], obj="instagram")
        return await self.webhooks.play(payload, "message", mid=item["message"]["mid"])

    async def post_seen(self, request: web.Request) -> web.Response:
        """The shopper saw a message: Instagram's `messaging_seen`, naming the message (`read.mid`)."""
        data = await control_body(request)
        account, _page_id = self._account(data)
        igsid, mid = text(data, "igsid"), text(data, "mid")
        item = {
            "sender": {"id": igsid},
            "recipient": {"id": account},
            "timestamp": int(self.state.now() * 1000),
            "read": {"mid": mid},
        }
        return await self.webhooks.play(wf.messaging_delivery(account, [item], obj="instagram"), "seen")

    async def get_media(self, _request: web.Request) -> web.Response:
        return web.json_response([m.to_dict() for m in self.media.values()])
