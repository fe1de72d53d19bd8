"""Comments and visitor posts: private replies to them, public replies under them, hiding them.

Graph: a private reply is a Send API call with `recipient: {comment_id}` or `{post_id}` (one per comment,
within 7 days); `POST /{comment_id}/comments` is the Page's public reply; `POST /{comment_id}` with
`is_hidden` hides or shows a comment. Control: `/_emulator/comments` and `/_emulator/posts` register what
Meta would know (the webhook player and live comments register them too) and list them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.emulator.control import control_body, created_time, known_page, text
from bot.emulator.errors import already_replied, invalid, outside_window, unavailable
from bot.emulator.messaging_rules import PRIVATE_REPLY_WINDOW_S, is_text
from bot.emulator.params import bool_param
from bot.emulator.state import EmulatorState, FeedObject, message_id
from bot.emulator.webhooks import WebhookPlayer

__all__ = ["Comments"]


class Comments:
    """The comment surface over the shared state; echoes of private replies go out through `webhooks`."""

    def __init__(self, state: EmulatorState, webhooks: WebhookPlayer) -> None:
        self.state = state
        self.webhooks = webhooks

    # --- Graph side -----------------------------------------------------------------------------------

    def private_reply(self, target: FeedObject, message: Any, sender_action: str | None) -> dict[str, Any]:
        """The Send API's answer to a message for `recipient: {comment_id | post_id}` (checks already done)."""
        if sender_action is not None:
            raise invalid("param sender_action cannot be sent as a private reply")
        if target.author_id is not None and (target.page_id, target.author_id) in self.state.blocked:
            raise unavailable()
        if target.private_reply_mid is not None:
            # Meta's answer to a second private reply (tests/data/meta/graph_error_10900_already_replied.json).
            raise already_replied()
        if self.state.now() - target.created_time > PRIVATE_REPLY_WINDOW_S:
            raise outside_window()
        mid = message_id()
        # Checked and marked with no await in between: two racing replies cannot both pass.
        target.private_reply_mid = mid
        if target.author_id is not None:
            self.webhooks.schedule_echo(target.page_id, target.author_id, message, mid)
        # Meta does not document whether recipient_id comes back for private replies (docs/meta-platform.md §8).
        return {"recipient_id": target.author_id or "", "message_id": mid}

    def _feed_object(self, object_id: str) -> FeedObject | None:
        comments, posts = self.state.comments, self.state.posts
        if object_id in comments:
            return comments[object_id]
        if object_id in posts:
            return posts[object_id]
        video = self.state.live_videos.get(object_id)
        if video is not None:  # a live video takes comments too (the pinned text of a live sale)
            return FeedObject(object_id, video.page_id, video.post_id or object_id, None, self.state.now())
        # A post only seen as the parent of comments: enough to comment on it as the Page.
        for comment in comments.values():
            if comment.post_id == object_id:
                return FeedObject(object_id, comment.page_id, object_id, None, comment.created_time)
        return None

    def public_reply(self, object_id: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        """`POST /{object_id}/comments`: the Page comments under a comment or a post."""
        target = self.state.owned(self._feed_object(object_id), object_id, "POST", args, call)
        message = args.get("message")
        if not (is_text(message) or args.get("attachment_url") or args.get("attachment_id")):
            raise invalid("Missing message or attachment")
        if object_id == target.post_id or object_id not in self.state.comments:
            post_object = object_id.rsplit("_", 1)[-1]  # on a post ("{page}_{post}") or a live video
        else:
            post_object = object_id.split("_", 1)[0] if "_" in object_id else target.post_id.rsplit("_", 1)[-1]
        new_id = f"{post_object}_{next(self.state.object_ids)}"
        target.replies.append(new_id)
        # The reply is a comment by the Page; it can be hidden like any other (not idempotent, like Meta).
        reply = FeedObject(new_id, target.page_id, target.post_id, target.page_id, self.state.now())
        reply.message = message if is_text(message) else None
        self.state.comments[new_id] = reply
        return {"id": new_id}

    def update_comment(self, object_id: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        """`POST /{comment_id}` with `is_hidden`."""
        comment = self.state.owned(self.state.comments.get(object_id), object_id, "POST", args, call)
        hidden = bool_param(args.get("is_hidden"))
        if hidden is None:
            raise invalid("param is_hidden must be true or false")
        comment.hidden = hidden
        return {"success": True}

    # --- control routes -------------------------------------------------------------------------------

    async def get_comments(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "comments": [c.to_dict() for c in self.state.comments.values()],
                "posts": [p.to_dict() for p in self.state.posts.values()],
            }
        )

    async def post_comment(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id, comment_id = known_page(data, self.state), text(data, "comment_id")
        post_id = text(data, "post_id", required=False) or (comment_id.split("_", 1)[0] if "_" in comment_id else "")
        author_id = text(data, "author_id", required=False)
        comment = FeedObject(comment_id, page_id, post_id, author_id, created_time(data, self.state.now()))
        self.state.comments[comment_id] = comment
        return web.json_response(comment.to_dict())

    async def post_post(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id, post_id = known_page(data, self.state), text(data, "post_id")
        author_id = text(data, "author_id", required=False)
        post = FeedObject(post_id, page_id, post_id, author_id, created_time(data, self.state.now()))
        self.state.posts[post_id] = post
        return web.json_response(post.to_dict())
