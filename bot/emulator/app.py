"""A local Graph API for tests and the demo (issue 3): answers like Meta, enforces Meta's rules, records calls.

`create_emulator_app(config)` assembles the emulator as an aiohttp application with in-memory state (not
pure); `GraphEmulator` runs it on a port for tests and the in-process demo and calls its control routes.
Each Meta surface has its module, sharing one `EmulatorState` (bot.emulator.state):

- `send_api`: `POST /{page_id|me}/messages` (Send API) with Meta's messaging rules (`messaging_rules`);
- `comments`: private replies, `POST /{comment_id}/comments` (public reply), `POST /{comment_id}` (`is_hidden`);
- `pages`: `GET /{page_id|me}` (`fields=name,username`), `GET|POST|DELETE /{page_id}/subscribed_apps`;
- `profile`: `GET|POST|DELETE /{page_id|me}/messenger_profile` (Get Started, greeting, ice breakers, menu),
  and what it changes for a person opening an m.me link (`/_emulator/mme`);
- `subscriptions`: the app's own level, `GET|POST|DELETE /{app_id}/subscriptions` (app access token);
- `templates`: `GET|POST /{page_id}/message_templates`, utility messages and their review (issue 17);
- `live` (issue 6): `GET /{video_id}/live_comments` (Server-Sent Events) and `GET /{video_id}/comments`;
- `instagram` (issue 18): the Page's linked Instagram account: its webhooks (`object: "instagram"`), Send API
  calls to its people and comments (Instagram's rules), `POST /{ig-comment-id}/replies`;
- `faults`: injected faults, the Send API rate limit, the clock;
- `tokens`: `GET /oauth/access_token` (long-lived user tokens), `GET /{user-id|me}/accounts` (Page tokens);
- `usage`: the usage headers (`X-App-Usage`, `X-Page-Usage`, `X-Business-Use-Case-Usage`) on every answer;
- `webhooks`: the player that signs and delivers Meta-shaped webhooks to our server (and learns from them).

Graph routes answer under any version prefix (`/v26.0/...`) or none. Parameters come form-encoded (nested
values as JSON strings inside form fields, as Graph takes them) or as a JSON body (the Send API), with
`access_token` in the body or the query (`params`). Errors use Meta's envelope (`errors`). Control routes
under `/_emulator/` take JSON and answer JSON, 400 with a reason on bad input (`control`); the table of
them is below. Where Meta's exact behaviour is unknown the choice is marked "Emulator choice" in a comment.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from bot.emulator.comments import Comments
from bot.emulator.config import EmulatorConfig
from bot.emulator.control import ControlClient, control_errors
from bot.emulator.errors import GraphError, unsupported
from bot.emulator.faults import Faults
from bot.emulator.instagram import Instagram
from bot.emulator.live import Live
from bot.emulator.pages import Pages
from bot.emulator.params import maybe_json, read_graph_request
from bot.emulator.persistence import StateFile
from bot.emulator.profile import MessengerProfile
from bot.emulator.send_api import SendApi
from bot.emulator.state import EmulatorState
from bot.emulator.subscriptions import AppSubscriptions
from bot.emulator.templates import Templates
from bot.emulator.tokens import Tokens
from bot.emulator.usage import CALL_KEY, Usage
from bot.emulator.webhooks import WebhookPlayer

__all__ = ["EMULATOR", "Emulator", "GraphEmulator", "create_emulator_app"]

log = logging.getLogger("plusone.emulator")

_VERSION = re.compile(r"^v\d+\.\d+$")


class Emulator:
    """One application's emulator: the shared state, a collaborator per Meta surface, and the Graph router."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.state = EmulatorState(config)
        self.faults = Faults(self.state)
        self.webhooks = WebhookPlayer(self.state)
        self.comments = Comments(self.state, self.webhooks)
        self.templates = Templates(self.state, self.webhooks)
        self.send_api = SendApi(self.state, self.faults, self.comments, self.webhooks, self.templates)
        self.pages = Pages(self.state)
        self.live = Live(self.state, self.webhooks)
        self.usage = Usage(self.state)
        self.tokens = Tokens(self.state)
        self.instagram = Instagram(self.state, self.faults, self.webhooks)
        self.app_subscriptions = AppSubscriptions(self.state, self.webhooks)
        self.profile = MessengerProfile(self.state, self.webhooks)
        self._call_seq = itertools.count(1)

    # --- Graph routes ---------------------------------------------------------------------------------

    async def handle_graph(self, request: web.Request) -> web.StreamResponse:
        """Every Graph call: recorded, then answered by the surface its path names."""
        call: dict[str, Any] = {
            "seq": next(self._call_seq),
            "at": self.state.now(),
            "method": request.method,
            "path": request.path,
            "page_id": None,
            "params": {},
            "body": None,
            "status": None,
            "response": None,
        }
        self.state.calls.append(call)
        request[CALL_KEY] = call  # for the usage headers' middleware
        response = await self._answer(request, call)
        if call["status"] is None:
            call["status"] = response.status
            if isinstance(response, web.Response) and response.text is not None:
                call["response"] = (
                    maybe_json(response.text) if response.content_type == "application/json" else (response.text)
                )
        log.debug("%s %s -> %s", request.method, request.path, call["status"])
        return response

    async def _answer(self, request: web.Request, call: dict[str, Any]) -> web.StreamResponse:
        try:
            parts = [p for p in request.path.split("/") if p]
            if parts and _VERSION.match(parts[0]):
                parts = parts[1:]
            args, call["params"], call["body"] = await read_graph_request(request)
            call["page_id"] = self._page_hint(parts, args)
            fault = self.faults.take(request.path, call["page_id"])
            if fault is not None and fault.kind == "timeout_after_delivery":
                # The call does its work (a private reply is recorded), then its answer is lost.
                try:
                    call["response"] = self._route(request.method, parts, args, call)
                except GraphError as exc:
                    return exc.response()
                return await self.faults.hold_answer(fault, call)
            if fault is not None:
                return await self.faults.apply(fault, call)
            if self.tokens.handles(request.method, parts, args):
                return web.json_response(self.tokens.answer(parts, args, call))
            if request.method == "GET" and len(parts) == 2 and parts[1] == "live_comments":
                return await self.live.live_comments_stream(request, parts[0], args, call)
            if request.method == "GET" and len(parts) == 2 and parts[1] == "comments":
                return web.json_response(self.live.list_comments(parts[0], args, call, request.url))
            if len(parts) == 2 and parts[1] == "subscriptions":  # the app's level (it verifies the callback)
                answer = await self.app_subscriptions.subscriptions(request.method, parts[0], args, call)
                return web.json_response(answer)
            return web.json_response(self._route(request.method, parts, args, call))
        except GraphError as exc:
            return exc.response()
        except Exception:
            # An emulator bug still answers in Meta's envelope (code 1, "unknown error") and is logged.
            log.exception("emulator failed on %s %s", request.method, request.path)
            return GraphError(1, "An unknown error occurred", status=500).response()

    def _page_hint(self, parts: list[str], args: dict[str, Any]) -> str | None:
        """The Page a call is about, for the record, before any check (handlers confirm it)."""
        state = self.state
        ref = parts[0] if parts else ""
        if ref == "me":
            token = args.get("access_token")
            return state.tokens.get(token) if isinstance(token, str) else None
        if ref in state.config.pages:
            return ref
        target = state.comments.get(ref) or state.posts.get(ref) or state.live_videos.get(ref)
        return target.page_id if target is not None else None

    def _route(self, method: str, parts: list[str], args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        # `GET /{video_id}/comments` and `/live_comments` are answered by `_answer` before this.
        if len(parts) == 2 and parts[1] == "messages" and method == "POST" and self.instagram.handles_send(args):
            return self.instagram.send_message(parts[0], args, call)
        if len(parts) == 2 and parts[1] == "messages" and method == "POST":
            return self.send_api.send_message(parts[0], args, call)
        if len(parts) == 2 and parts[1] == "replies" and method == "POST":
            return self.instagram.public_reply(parts[0], args, call)
        if len(parts) == 2 and parts[1] == "message_templates":
            return self.templates.message_templates(method, parts[0], args, call)
        if len(parts) == 2 and parts[1] == "messenger_profile":
            return self.profile.messenger_profile(method, parts[0], args, call)
        if len(parts) == 2 and parts[1] == "subscribed_apps":
            return self.pages.subscribed_apps(method, parts[0], args, call)
        if len(parts) == 2 and parts[1] == "comments" and method == "POST":
            return self.comments.public_reply(parts[0], args, call)
        if len(parts) == 1 and method == "GET" and parts[0] in self.state.live_videos:
            return self.live.video_info(parts[0], args, call)
        if len(parts) == 1 and method == "GET" and self.profile.is_person(parts[0]):
            return self.profile.user_profile(parts[0], args, call)
        if len(parts) == 1 and method == "GET":
            return self.pages.page_info(parts[0], args, call)
        if len(parts) == 1 and method == "POST":
            return self.comments.update_comment(parts[0], args, call)
        self.state.authenticate(args)
        raise unsupported(method, parts[0] if parts else "")

    # --- control routes of the emulator as a whole ----------------------------------------------------

    async def get_calls(self, request: web.Request) -> web.Response:
        needle = request.query.get("path_contains")
        calls = [c for c in self.state.calls if not needle or needle in c["path"]]
        return web.json_response(calls)

    async def delete_calls(self, _request: web.Request) -> web.Response:
        self.state.calls.clear()
        return web.json_response({"cleared": True})

    async def post_reset(self, _request: web.Request) -> web.Response:
        self.state.reset()
        self.usage.reset()
        self.instagram.reset()
        return web.json_response({"reset": True})

    async def unknown_control(self, request: web.Request) -> web.Response:
        return web.json_response({"error": f"no emulator endpoint {request.method} {request.path}"}, status=404)


EMULATOR = web.AppKey("graph_emulator", Emulator)


# --- the application --------------------------------------------------------------------------------------


def create_emulator_app(config: EmulatorConfig) -> web.Application:
    """The emulator as an aiohttp application (state in memory; kept in `config.state_file` if set)."""
    emulator = Emulator(config)
    state, webhooks = emulator.state, emulator.webhooks
    app = web.Application(middlewares=[control_errors, emulator.usage.middleware])
    app[EMULATOR] = emulator
    if config.state_file is not None:
        # First in, so last out: the final write sees what the shutdown of the others left.
        app.cleanup_ctx.append(StateFile(state, config.state_file, config.state_save_s).ctx)

    async def http_ctx(_app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=config.webhook_timeout_s)
        webhooks.session = aiohttp.ClientSession(timeout=timeout)
        yield
        state.closing.set()
        tasks = list(webhooks.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await webhooks.session.close()
        webhooks.session = None

    async def on_shutdown(_app: web.Application) -> None:
        # Ends held "timeout" faults and open live comment streams so shutting down does not wait for them.
        state.closing.set()
        for video in state.live_videos.values():
            video.end_streams("end")

    app.cleanup_ctx.append(http_ctx)
    app.on_shutdown.append(on_shutdown)

    e = emulator
    control: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
        ("GET", "/_emulator/calls", e.get_calls),
        ("DELETE", "/_emulator/calls", e.delete_calls),
        ("GET", "/_emulator/deliveries", e.webhooks.get_deliveries),
        ("GET", "/_emulator/faults", e.faults.get_faults),
        ("POST", "/_emulator/faults", e.faults.post_fault),
        ("DELETE", "/_emulator/faults", e.faults.delete_faults),
        ("POST", "/_emulator/activity", e.send_api.post_activity),
        ("POST", "/_emulator/block", e.send_api.post_block),
        ("GET", "/_emulator/clock", e.faults.get_clock),
        ("POST", "/_emulator/clock", e.faults.post_clock),
        ("GET", "/_emulator/comments", e.comments.get_comments),
        ("POST", "/_emulator/comments", e.comments.post_comment),
        ("POST", "/_emulator/posts", e.comments.post_post),
        ("POST", "/_emulator/unsubscribe", e.pages.post_unsubscribe),
        ("POST", "/_emulator/token", e.pages.post_token),
        ("POST", "/_emulator/page_apps", e.pages.post_page_app),
        ("POST", "/_emulator/mme", e.profile.post_mme),
        ("GET", "/_emulator/profiles", e.profile.get_profiles),
        ("POST", "/_emulator/people", e.profile.post_person),
        ("DELETE", "/_emulator/app_subscriptions", e.app_subscriptions.delete_app_subscription),
        ("POST", "/_emulator/reset", e.post_reset),
        ("GET", "/_emulator/templates", e.templates.get_templates),
        ("POST", "/_emulator/templates/review", e.templates.post_review),
        ("POST", "/_emulator/webhooks/comment", e.webhooks.play_comment),
        ("POST", "/_emulator/webhooks/message", e.webhooks.play_message),
        ("POST", "/_emulator/webhooks/postback", e.webhooks.play_postback),
        ("POST", "/_emulator/webhooks/referral", e.webhooks.play_referral),
        ("POST", "/_emulator/webhooks/raw", e.webhooks.play_raw),
        ("GET", "/_emulator/live_videos", e.live.get_live_videos),
        ("POST", "/_emulator/live_videos", e.live.post_live_video),
        ("POST", "/_emulator/live_comments", e.live.post_live_comment),
        ("POST", "/_emulator/live_streams/drop", e.live.post_drop_streams),
        ("GET", "/_emulator/instagram/media", e.instagram.get_media),
        ("POST", "/_emulator/instagram/media", e.instagram.post_media),
        ("POST", "/_emulator/instagram/comment", e.instagram.post_comment),
        ("POST", "/_emulator/instagram/message", e.instagram.post_message),
        ("POST", "/_emulator/instagram/seen", e.instagram.post_seen),
    ]
    for method, path, handler in control:
        app.router.add_route(method, path, handler)
    app.router.add_route("*", "/_emulator/{tail:.*}", e.unknown_control)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, "/{tail:.*}", e.handle_graph)
    return app


# --- in-process helper ------------------------------------------------------------------------------------


class GraphEmulator(ControlClient):
    """Runs the emulator on a port (tests, the demo) and calls its control routes (`ControlClient`).

    async with GraphEmulator(config) as emulator:   # or: base_url = await emulator.start()
        GraphAPI(..., base_url=emulator.base_url)
    """

    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__()
        self.config = config
        self.app = create_emulator_app(config)
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> GraphEmulator:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 = any free port); returns the base URL, ending with a slash."""
        # handler_cancellation: a held "timeout" fault ends when its client gives up.
        runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.base_url = f"http://{shown}:{bound_port}/"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self.base_url

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
