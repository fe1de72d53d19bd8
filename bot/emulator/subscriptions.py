"""The app's own webhook subscriptions, `GET|POST /{app-id}/subscriptions`, as Meta plays them.

Meta delivers a Page field only when the app subscribes to it at the app's level (object `page`, here)
and the Page subscribes the app to it (`/{page-id}/subscribed_apps`, bot.emulator.pages). This edge
needs the app access token `{app-id}|{app-secret}`; a Page token is refused (code 15). Setting the
callback makes Meta verify it first (`GET <callback>?hub.mode=subscribe&hub.challenge=...&hub.verify_token=...`,
docs/meta-platform.md §1); a callback that does not echo the challenge fails the POST with code 2200.
Answers follow tests/data/meta/app_subscriptions_get.json and app_subscriptions_post.json.

Control: `/_emulator/app_subscriptions` DELETE drops one object's subscription, as an admin can in the
app dashboard.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any

import aiohttp
from aiohttp import web

from bot.emulator.control import control_body, text
from bot.emulator.errors import GraphError, invalid, unsupported
from bot.emulator.params import maybe_json
from bot.emulator.state import EmulatorState
from bot.emulator.webhooks import WebhookPlayer

__all__ = ["AppSubscriptions", "app_token_required"]

OBJECTS = frozenset({"page", "instagram", "user", "permissions", "application"})
_FIELD = re.compile(r"[a-z_]+")


def app_token_required() -> GraphError:
    # Wording as integrations report it (bottender messaging-apis #267: "relies on app access_token").
    return GraphError(15, "(#15) This method must be called with an app access_token.")


class AppSubscriptions:
    """The app-level subscriptions over the shared state (`state.app_subscriptions`: object -> entry)."""

    def __init__(self, state: EmulatorState, webhooks: WebhookPlayer) -> None:
        self.state = state
        self.webhooks = webhooks

    def _authenticate(self, app_id: str, args: dict[str, Any], call: dict[str, Any]) -> None:
        config = self.state.config
        if app_id != config.app_id:
            raise unsupported("get", app_id)
        token = args.get("access_token")
        expected = f"{config.app_id}|{config.app_secret}"
        if not isinstance(token, str) or not hmac.compare_digest(token, expected):
            if isinstance(token, str) and token in self.state.tokens:
                raise app_token_required()
            raise GraphError(190, "Invalid OAuth access token.")
        call["page_id"] = None

    async def subscriptions(self, method: str, app_id: str, args: dict[str, Any], call: dict[str, Any]) -> Any:
        self._authenticate(app_id, args, call)
        if method == "GET":
            return {"data": [dict(entry) for entry in self.state.app_subscriptions.values()]}
        if method == "DELETE":
            target = args.get("object")
            if target is None:
                self.state.app_subscriptions.clear()
            else:
                self.state.app_subscriptions.pop(str(target), None)
            return {"success": True}
        if method != "POST":
            raise unsupported(method, app_id)
        target = args.get("object")
        if target not in OBJECTS:
            raise invalid("param object must be one of {" + ", ".join(sorted(OBJECTS)) + "}")
        raw = args.get("fields")
        if isinstance(raw, str):
            raw = maybe_json(raw) if raw.startswith("[") else raw.split(",")
        fields = [str(f).strip() for f in raw] if isinstance(raw, list) else []
        fields = [f for f in fields if f]
        if not fields or any(not _FIELD.fullmatch(f) for f in fields):
            raise invalid("param fields must be a list of field names")
        callback = args.get("callback_url")
        if not isinstance(callback, str) or not callback.startswith(("http://", "https://")):
            raise invalid("param callback_url must be a valid URL")
        verify_token = args.get("verify_token")
        await self._verify_callback(callback, verify_token if isinstance(verify_token, str) else "")
        version = next((p for p in str(call.get("path", "")).split("/") if re.fullmatch(r"v\d+\.\d+", p)), "v26.0")
        entry = self.state.app_subscriptions.get(target)
        # Meta adds the fields posted to the ones already there (each keeps the version it was added with).
        kept = [f for f in entry["fields"] if f["name"] not in fields] if entry else []
        self.state.app_subscriptions[target] = {
            "object": target,
            "callback_url": callback,
            "active": True,
            "fields": kept + [{"name": f, "version": version} for f in dict.fromkeys(fields)],
        }
        return {"success": True}

    async def _verify_callback(self, callback: str, verify_token: str) -> None:
        """Meta's verification request; anything but the challenge echoed back with a 200 fails the POST."""
        challenge = str(secrets.randbelow(10**9) + 10**9)
        query = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
        session = self.webhooks.session
        try:
            if session is None:
                raise aiohttp.ClientError("the emulator is not running")
            async with session.get(callback, params=query) as resp:
                body = (await resp.text()).strip()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GraphError(2200, f"(#2200) callback verification failed: {type(exc).__name__}") from None
        if status != 200:
            raise GraphError(2200, f"(#2200) callback verification failed: Received HTTP code {status}")
        if body != challenge:
            raise GraphError(2200, "(#2200) callback verification failed: The URL couldn't be validated.")

    # --- control routes -------------------------------------------------------------------------------

    async def delete_app_subscription(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        target = text(data, "object", required=False) or "page"
        removed = self.state.app_subscriptions.pop(target, None) is not None
        return web.json_response({"object": target, "removed": removed})
