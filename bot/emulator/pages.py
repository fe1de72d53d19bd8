"""The Page itself: `GET /{page_id|me}` (`fields=name,username,link`) and the app's webhook subscription,
`GET|POST|DELETE /{page_id}/subscribed_apps`.

A Page lists every app it has subscribed, each with its own fields (tests/data/meta/page_subscribed_apps.json);
a POST or DELETE with a Page token changes only the calling app's entry.

Control: `/_emulator/unsubscribe` drops a Page's subscription as Meta does to a webhook that keeps
failing; `/_emulator/token` expires (or renews) a Page's access token; `/_emulator/page_apps` subscribes
another app (a chat plugin, an old integration) to a Page.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from bot.emulator.control import ControlError, control_body, flag, known_page, text
from bot.emulator.errors import invalid, unsupported
from bot.emulator.params import maybe_json
from bot.emulator.state import EmulatorState

__all__ = ["PAGE_FIELDS", "Pages"]

PAGE_FIELDS = frozenset({"id", "name", "username", "link"})


class Pages:
    """Page info, subscriptions and Page tokens over the shared state."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # --- Graph side -----------------------------------------------------------------------------------

    def page_info(self, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        page_id = self.state.page_of(ref, args, call, "GET")
        page = self.state.config.pages[page_id]
        raw = args.get("fields")
        wanted = [f.strip() for f in raw.split(",") if f.strip()] if isinstance(raw, str) and raw else ["name"]
        values = {
            "id": page_id,
            "name": page.name,
            "username": page.username,
            "link": f"https://www.facebook.com/{page.username or page_id}",
        }
        result: dict[str, Any] = {}
        for name in wanted:
            if name not in PAGE_FIELDS:
                raise invalid(f"Tried accessing nonexisting field ({name}) on node type (Page)")
            # Meta leaves out fields that have no value (a Page without a username).
            if values[name]:
                result[name] = values[name]
        result["id"] = page_id
        return result

    def subscribed_apps(self, method: str, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        page_id = self.state.page_of(ref, args, call, method)
        config, subscriptions = self.state.config, self.state.subscriptions
        if method == "GET":
            fields = subscriptions.get(page_id)
            others = [dict(app) for app in self.state.other_apps.get(page_id, [])]
            if not fields:
                return {"data": others}
            # Emulator choice: Meta's entries also carry category and link; clients read id and subscribed_fields.
            ours = {"id": config.app_id, "name": config.app_name, "subscribed_fields": fields}
            return {"data": [*others, ours]}
        if method == "DELETE":
            subscriptions.pop(page_id, None)
            return {"success": True}
        if method != "POST":
            raise unsupported(method, ref)
        raw = args.get("subscribed_fields")
        if isinstance(raw, str):
            raw = maybe_json(raw) if raw.startswith("[") else raw.split(",")
        fields = [str(f).strip() for f in raw] if isinstance(raw, list) else []
        fields = [f for f in fields if f]
        if not fields:
            raise invalid("The parameter subscribed_fields is required")
        # Emulator choice: any well-formed field name is taken; Meta checks them against its list.
        bad = [f for f in fields if not re.fullmatch(r"[a-z_]+", f)]
        if bad:
            raise invalid(f"param subscribed_fields has an invalid field: {bad[0]}")
        subscriptions[page_id] = list(dict.fromkeys(fields))
        return {"success": True}

    # --- control routes -------------------------------------------------------------------------------

    async def post_unsubscribe(self, request: web.Request) -> web.Response:
        # Meta drops (disables) the subscription of an app whose webhook keeps failing.
        page_id = known_page(await control_body(request), self.state)
        self.state.subscriptions.pop(page_id, None)
        return web.json_response({"page_id": page_id, "subscribed": False})

    async def post_token(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id = known_page(data, self.state)
        expired = flag(data, "expired", default=True)
        (self.state.expired.add if expired else self.state.expired.discard)(page_id)
        return web.json_response({"page_id": page_id, "expired": expired})

    async def post_page_app(self, request: web.Request) -> web.Response:
        """Another app subscribed to the Page with its own fields (Meta lists it beside ours)."""
        data = await control_body(request)
        page_id = known_page(data, self.state)
        app_id = text(data, "app_id")
        if app_id == self.state.config.app_id:
            raise ControlError("app_id must be another app's id (ours is set through subscribed_apps)")
        fields = data.get("fields")
        if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
            raise ControlError("fields must be a list of field names")
        entry = {"id": app_id, "name": text(data, "name", required=False) or "Other app", "subscribed_fields": fields}
        apps = [a for a in self.state.other_apps.get(page_id, []) if a["id"] != app_id]
        self.state.other_apps[page_id] = [*apps, entry]
        return web.json_response({"page_id": page_id, "app_id": app_id, "subscribed_fields": fields})
