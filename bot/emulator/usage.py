"""How much of Meta's rate limits the app and each Page have used, as the usage headers of every answer.

Meta puts `X-App-Usage` on Graph answers, and `X-Page-Usage` and `X-Business-Use-Case-Usage` on those made
with a Page token (docs/meta-platform.md, "Graph client"): JSON objects of percentages (`call_count`,
`total_cputime`, `total_time`), the business one keyed by the business object id (here the Page) with the
use case `type` and `estimated_time_to_regain_access` in minutes. The emulator counts calls over Meta's
sliding windows on its own clock (one hour for the app, 24 hours for the Page and for Messenger) against
the limits in `EmulatorConfig`. Emulator choice: each call costs the same time, so the two time figures
follow `call_count`. A header already on an answer (a throttling fault that names its own figures) is kept.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.emulator.state import EmulatorState

__all__ = ["CALL_KEY", "Usage"]

APP_WINDOW_S = 3600.0  # Meta: app-level limits over the past hour
CALL_KEY = web.RequestKey("plusone_emulator_call", dict)  # a Graph request's recorded call, set by its router
PAGE_WINDOW_S = 86400.0  # Meta: Page-level and Messenger limits over the past 24 hours


def _percent(calls: int, limit: int) -> int:
    return calls * 100 // max(limit, 1)


def _figures(percent: int) -> dict[str, int]:
    return {"call_count": percent, "total_cputime": percent, "total_time": percent}


class Usage:
    """Counts Graph calls per app, Page and Page's Messenger sends; answers carry the figures."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.reset()

    def reset(self) -> None:
        self._app: deque[float] = deque()
        self._pages: dict[str, deque[float]] = {}
        self._messenger: dict[str, deque[float]] = {}

    @staticmethod
    def _count(stamps: deque[float], now: float, window_s: float) -> int:
        while stamps and stamps[0] <= now - window_s:
            stamps.popleft()
        return len(stamps)

    def headers(self, call: dict[str, Any]) -> dict[str, str]:
        """Count this call, then the usage headers its answer carries."""
        now, config = self.state.now(), self.state.config
        self._app.append(now)
        app = _percent(self._count(self._app, now, APP_WINDOW_S), config.app_calls_per_hour)
        headers = {"X-App-Usage": json.dumps(_figures(app))}
        page_id = call.get("page_id")
        if not page_id or page_id not in config.pages:
            return headers
        page_calls = self._pages.setdefault(page_id, deque())
        page_calls.append(now)
        page = _percent(self._count(page_calls, now, PAGE_WINDOW_S), config.page_calls_per_day)
        headers["X-Page-Usage"] = json.dumps(_figures(page))
        if str(call.get("path", "")).rstrip("/").endswith("/messages"):
            sends = self._messenger.setdefault(page_id, deque())
            sends.append(now)
            messenger = _percent(self._count(sends, now, PAGE_WINDOW_S), config.messenger_calls_per_day)
            business = {"type": "messenger", **_figures(messenger), "estimated_time_to_regain_access": 0}
            headers["X-Business-Use-Case-Usage"] = json.dumps({page_id: [business]})
        return headers

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        call = request.get(CALL_KEY)
        if call is None or response.prepared:
            return response  # a control route, or a stream whose headers are already sent
        for name, value in self.headers(call).items():
            response.headers.setdefault(name, value)
        return response
