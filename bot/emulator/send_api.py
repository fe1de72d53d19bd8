"""The Send API, `POST /{page_id|me}/messages`, with Meta's messaging rules; and the shopper's side of them.

A message to a shopper (`recipient: {id}`) goes through only inside the 24-hour window their last
activity opened, or a tag's window; a blocked shopper is unavailable (551); each Page may send
`messages_per_second`. Private replies (`recipient: {comment_id | post_id}`) are handed to `Comments`;
utility messages (`messaging_type=UTILITY`, outside the window too) to `Templates`.
Control: `/_emulator/activity` sets a shopper's last activity, `/_emulator/block` blocks or unblocks them.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from bot.emulator.comments import Comments
from bot.emulator.control import control_body, flag, known_page, number, text
from bot.emulator.errors import invalid, no_human_agent_permission, outside_window, unavailable
from bot.emulator.faults import Faults
from bot.emulator.messaging_rules import (
    MESSAGING_TYPES,
    NOTIFICATION_TYPES,
    RETIRED_TAGS,
    SENDER_ACTIONS,
    STANDARD_WINDOW_S,
    TAG_WINDOWS,
    check_message,
)
from bot.emulator.params import id_param, object_param
from bot.emulator.state import EmulatorState, message_id
from bot.emulator.templates import Templates
from bot.emulator.webhooks import WebhookPlayer

__all__ = ["SendApi"]


class SendApi:
    """The Send API over the shared state: rate limit from `faults`, private replies by `comments`, echoes."""

    def __init__(
        self,
        state: EmulatorState,
        faults: Faults,
        comments: Comments,
        webhooks: WebhookPlayer,
        templates: Templates | None = None,
    ) -> None:
        self.state = state
        self.faults = faults
        self.comments = comments
        self.webhooks = webhooks
        self.templates = templates or Templates(state, webhooks)

    # --- Graph side -----------------------------------------------------------------------------------

    def send_message(self, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        page_id = state.page_of(ref, args, call, "POST")
        self.faults.count_send(page_id)
        # Meta's reference marks messaging_type required, but its own samples omit it: treated as RESPONSE.
        messaging_type = args.get("messaging_type") or "RESPONSE"
        if messaging_type not in MESSAGING_TYPES:
            raise invalid(f"param messaging_type must be one of {{{', '.join(MESSAGING_TYPES)}}}")
        tag = args.get("tag") or None
        if tag is not None:
            if tag in RETIRED_TAGS:
                raise invalid(
                    f"The message tag {tag} is no longer supported (retired on April 27, 2026). Use Utility "
                    "Templates or the Marketing Messages API instead."
                )
            if tag not in TAG_WINDOWS:
                raise invalid(f"param tag must be one of {{{', '.join(TAG_WINDOWS)}}}")
            if tag == "HUMAN_AGENT" and not state.config.human_agent_permission:
                raise no_human_agent_permission()
        elif messaging_type == "MESSAGE_TAG":
            raise invalid("param tag is required when messaging_type is MESSAGE_TAG")
        if args.get("notification_type") not in (None, "", *NOTIFICATION_TYPES):
            raise invalid(f"param notification_type must be one of {sorted(NOTIFICATION_TYPES)}")
        recipient = object_param(args, "recipient")
        if not recipient:
            raise invalid("param recipient must be non-empty.")
        message = object_param(args, "message")
        sender_action = args.get("sender_action") or None
        if sender_action is not None:
            if sender_action not in SENDER_ACTIONS:
                raise invalid(f"param sender_action must be one of {sorted(SENDER_ACTIONS)}")
            if message is not None:
                raise invalid("param sender_action cannot be sent together with message")
        elif messaging_type == "UTILITY":
            if not isinstance(message, dict):
                raise invalid("param message must be a JSON object")
        else:
            check_message(message)

        if (comment_id := id_param(recipient.get("comment_id"))) is not None:
            target = state.comments.get(comment_id)
            if target is None or target.page_id != page_id:
                raise invalid("Invalid comment_id parameter", 2018292)
            return self.comments.private_reply(target, message, sender_action)
        if (post_id := id_param(recipient.get("post_id"))) is not None:
            target = state.posts.get(post_id)
            if target is None or target.page_id != page_id:
                # Emulator choice: mirrors the comment_id refusal; Meta's payload for posts is unverified.
                raise invalid("Invalid post_id parameter", 2018292)
            return self.comments.private_reply(target, message, sender_action)
        psid = id_param(recipient.get("id"))
        if psid is None:
            if "user_ref" in recipient:
                raise invalid("recipient.user_ref is not supported by the PlusOne Graph emulator")
            raise invalid("param recipient must have id, comment_id or post_id")
        if (page_id, psid) in state.blocked:
            raise unavailable()
        if messaging_type == "UTILITY":
            if sender_action is not None:
                raise invalid("param sender_action cannot be sent with messaging_type UTILITY")
            assert message is not None
            return self.templates.send(page_id, psid, message)
        last = state.activity.get((page_id, psid))
        age = math.inf if last is None else state.now() - last
        window = TAG_WINDOWS[tag] if messaging_type == "MESSAGE_TAG" and tag else STANDARD_WINDOW_S
        if age > window:
            raise outside_window()
        if sender_action is not None:
            return {"recipient_id": psid}
        mid = message_id()
        self.webhooks.schedule_echo(page_id, psid, message, mid)
        return {"recipient_id": psid, "message_id": mid}

    # --- control routes -------------------------------------------------------------------------------

    async def post_activity(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id, psid = known_page(data, self.state), text(data, "psid")
        at = number(data, "at") if data.get("at") is not None else self.state.now()
        self.state.activity[(page_id, psid)] = at
        return web.json_response({"page_id": page_id, "psid": psid, "at": at})

    async def post_block(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id, psid = known_page(data, self.state), text(data, "psid")
        blocked = flag(data, "blocked", default=True)
        (self.state.blocked.add if blocked else self.state.blocked.discard)((page_id, psid))
        return web.json_response({"page_id": page_id, "psid": psid, "blocked": blocked})
