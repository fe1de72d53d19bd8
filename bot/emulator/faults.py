"""What makes the emulator's Graph answers fail or change with time, as Meta's would.

Injected faults (`/_emulator/faults`: the next N calls, a seeded share of them, or every call for
`duration_s` seconds of the emulator's clock, fail with a 5xx, a rate limit, a timeout, an outside-window
or blocked refusal, an expired token), the Send API rate limit per Page, and the emulator's clock
(`/_emulator/clock`), which the messaging windows and timed faults are measured by.

Meta's Page-wide answers (docs/meta-platform.md, "Sending under pressure"): `throttle` (a rate-limit code,
80006 by default, with the `X-Business-Use-Case-Usage`, `X-App-Usage` and `X-Page-Usage` headers saying
when access returns), `page_restricted` (10/1893063), `abusive` (368), `permission` (200). With
`scope: "page"` and a `page_id` such a fault hits only that Page's Send API calls. `timeout_after_delivery`
lets the call do its work, then holds the answer past the client's timeout (a send that reached Meta
whose answer was lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import time
from collections import deque
from typing import Any

from aiohttp import web

from bot.emulator.control import ControlError, control_body, known_page, number, text
from bot.emulator.errors import (
    THROTTLE_CODES,
    abusive,
    expired_token,
    outside_window,
    page_restricted,
    permission_denied,
    rate_limited,
    server_error,
    temporary,
    throttled,
    unavailable,
)
from bot.emulator.state import EmulatorState, Fault

__all__ = ["DEFAULT_TIMEOUT_DELAY_S", "FAULT_KINDS", "Faults"]

FAULT_KINDS = (
    "server_error",
    "temporary",
    "rate_limit",
    "timeout",
    "outside_window",
    "blocked",
    "expired_token",
    "throttle",
    "page_restricted",
    "abusive",
    "permission",
    "timeout_after_delivery",
)
DEFAULT_TIMEOUT_DELAY_S = 30.0
DEFAULT_THROTTLE_CODE = 80006  # Messenger's business use case throttle


class Faults:
    """Injected faults, the Send API rate limit and the clock, over the shared state."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._fault_ids = itertools.count(1)

    # --- Graph side -----------------------------------------------------------------------------------

    def take(self, path: str, page_id: str | None = None) -> Fault | None:
        """The fault that hits a call to `path` (about `page_id`), if any (a counted fault is used up by it)."""
        now = self.state.now()
        # A timed fault is over once the emulator's clock passed its end.
        self.state.faults[:] = [f for f in self.state.faults if f.until is None or f.until > now]
        for fault in self.state.faults:
            if fault.path_contains and fault.path_contains not in path:
                continue
            if fault.scope == "page" and (page_id != fault.page_id or not path.endswith("/messages")):
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.state.faults.remove(fault)
                return fault
            if fault.rng.random() < fault.share:
                return fault
        return None

    async def apply(self, fault: Fault, call: dict[str, Any]) -> web.Response:
        if fault.kind == "timeout":
            # Emulator choice: a bare 504 once the delay is over (a gateway giving up). Recorded before waiting:
            # the client usually gives up first and the handler is then cancelled.
            call["status"], call["response"] = 504, {"fault": "timeout", "delay_s": fault.delay_s}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.state.closing.wait(), fault.delay_s)
            return web.Response(status=504, text="Gateway Timeout")
        if fault.kind == "server_error" and fault.status != 500:
            # A bare 5xx without Meta's JSON, as a proxy or load balancer in front of Graph would answer.
            return web.Response(
                status=fault.status, text="Service Unavailable" if fault.status == 503 else "Bad Gateway"
            )
        if fault.kind == "throttle":
            return throttled(fault.code or DEFAULT_THROTTLE_CODE, self.usage_headers(fault)).response()
        error = {
            "server_error": server_error,
            "temporary": temporary,
            "rate_limit": rate_limited,
            "outside_window": outside_window,
            "blocked": unavailable,
            "expired_token": expired_token,
            "page_restricted": page_restricted,
            "abusive": abusive,
            "permission": permission_denied,
        }[fault.kind]()
        return error.response()

    async def hold_answer(self, fault: Fault, call: dict[str, Any]) -> web.Response:
        """`timeout_after_delivery`: the call did its work; its answer never comes before the client gives up."""
        call["status"], call["delivered"] = 504, call.get("response")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.state.closing.wait(), fault.delay_s)
        return web.Response(status=504, text="Gateway Timeout")

    def usage_headers(self, fault: Fault) -> dict[str, str]:
        """The usage headers of a throttling refusal, as Meta documents them (Graph API "Rate Limiting").

        `X-Business-Use-Case-Usage` is keyed by the business object (the Page) with a list of use cases,
        percentages and `estimated_time_to_regain_access` in minutes (rounded up here); `X-App-Usage` and
        `X-Page-Usage` carry the app's and the Page's percentages.
        """
        left_s = max(0.0, (fault.until - self.state.now()) if fault.until is not None else 60.0)
        minutes = math.ceil(left_s / 60)
        full = {"call_count": 100, "total_cputime": 42, "total_time": 57}
        some = {"call_count": 12, "total_cputime": 4, "total_time": 6}
        page_id = fault.page_id or next(iter(self.state.config.pages), "0")
        business = {page_id: [{"type": "messenger", **full, "estimated_time_to_regain_access": minutes}]}
        app_usage = full if fault.scope == "app" else some
        page_usage = {**full, "estimated_time_to_regain_access": minutes}
        return {
            "X-Business-Use-Case-Usage": json.dumps(business, separators=(",", ":")),
            "X-App-Usage": json.dumps(app_usage, separators=(",", ":")),
            "X-Page-Usage": json.dumps(page_usage, separators=(",", ":")),
        }

    def count_send(self, page_id: str) -> None:
        """Sliding one-second window per Page over every Send API call that passed the token check.

        Refused calls count too (Meta counts calls, not successes), so a client that keeps hammering stays
        limited until it backs off for a second; calls refused before the token check or by an injected
        fault do not count.
        """
        stamps = self.state.sends.setdefault(page_id, deque())
        moment = time.monotonic()
        while stamps and stamps[0] <= moment - 1.0:
            stamps.popleft()
        stamps.append(moment)
        if len(stamps) > self.state.config.messages_per_second:
            raise rate_limited()

    # --- control routes -------------------------------------------------------------------------------

    async def get_faults(self, _request: web.Request) -> web.Response:
        return web.json_response([f.to_dict() for f in self.state.faults])

    async def post_fault(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        kind = text(data, "kind")
        if kind not in FAULT_KINDS:
            raise ControlError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        count, share = data.get("next"), data.get("share")
        if count is not None and share is not None:
            raise ControlError("give next or share, not both")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ControlError("next must be a whole number of at least 1")
        share_value = 1.0 if share is None else number(data, "share")
        if not 0.0 < share_value <= 1.0:
            raise ControlError("share must be above 0 and at most 1")
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ControlError("seed must be a whole number")
        delay_s = number(data, "delay_s") if data.get("delay_s") is not None else DEFAULT_TIMEOUT_DELAY_S
        if delay_s < 0:
            raise ControlError("delay_s must not be negative")
        status = data.get("status", 500)
        if kind == "server_error" and status not in (500, 502, 503):
            raise ControlError("status must be 500 (Meta's JSON code 2), 502 or 503 (bare)")
        path_contains = text(data, "path_contains", required=False)
        until = None
        if data.get("duration_s") is not None:
            duration_s = number(data, "duration_s")
            if duration_s <= 0:
                raise ControlError("duration_s must be above 0")
            if count is not None or share is not None:
                raise ControlError("give duration_s, next or share, not two of them")
            until = self.state.now() + duration_s
        code = data.get("code")
        if kind == "throttle":
            code = DEFAULT_THROTTLE_CODE if code is None else code
            if isinstance(code, bool) or code not in THROTTLE_CODES:
                raise ControlError("code must be one of 4, 17, 32, 613 or 80000–80014")
        elif code is not None:
            raise ControlError("code is only for kind throttle")
        scope = data.get("scope", "app")
        if scope not in ("app", "page"):
            raise ControlError("scope must be app or page")
        page_id = known_page(data, self.state) if scope == "page" else None
        fault = Fault(
            id=next(self._fault_ids),
            kind=kind,
            remaining=count,
            share=share_value,
            path_contains=path_contains,
            delay_s=delay_s,
            status=status if kind == "server_error" else 400,
            rng=random.Random(seed),
            code=code,
            until=until,
            scope=scope,
            page_id=page_id,
        )
        self.state.faults.append(fault)
        return web.json_response(fault.to_dict())

    async def delete_faults(self, _request: web.Request) -> web.Response:
        self.state.faults.clear()
        return web.json_response({"cleared": True})

    async def get_clock(self, _request: web.Request) -> web.Response:
        return web.json_response({"offset_s": self.state.clock_offset, "now": self.state.now()})

    async def post_clock(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        self.state.clock_offset = number(data, "offset_s")
        return web.json_response({"offset_s": self.state.clock_offset, "now": self.state.now()})
