"""A local Graph API for tests and the demo (issue 3): answers like Meta, enforces Meta's rules, records calls.

`create_emulator_app(config)` is an aiohttp application with in-memory state (not pure). It serves:

- Graph routes, under any version prefix (`/v26.0/...`) or none: `POST /{page_id|me}/messages` (Send API,
  private replies), `POST /{comment_id}/comments` (public reply), `POST /{comment_id}` (`is_hidden`),
  `GET /{page_id|me}` (`fields=name,username`), `GET|POST|DELETE /{page_id}/subscribed_apps`. Parameters
  come form-encoded (python-facebook-api: nested values are JSON strings inside form fields) or as a JSON
  body, with `access_token` in the body or the query. Errors use Meta's envelope
  `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`.
- Control routes under `/_emulator/` (JSON in, JSON out, 400 with a reason on bad input): recorded calls,
  injected faults, the clock, shopper activity, blocks, comments, subscriptions, and a webhook player that
  signs and delivers Meta-shaped webhooks to our server (and learns the shopper's activity from them).
- Live videos (issue 6): `GET /{video_id}/live_comments` (the Live Comments Server-Sent Events stream of
  streaming-graph.facebook.com: `data: {json}` events and `: ping` keep-alives) and `GET /{video_id}/comments`
  (`since`/`until`, `order`, `filter`, `limit`, cursor paging). Controls start and end a video (with its
  `live_videos` webhook), post a live comment to any of the webhook, the stream and the comments edge, and
  drop open streams.

`GraphEmulator` runs the app on a port for tests and the in-process demo and mirrors the control routes.
Where Meta's exact behaviour is unknown the choice is marked "Emulator choice" in a comment.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import math
import random
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from bot.inbound import webhook_factory as wf

__all__ = [
    "DEMO_APP_ID",
    "DEMO_PAGE_ID",
    "DEMO_PAGE_NAME",
    "DEMO_PAGE_TOKEN",
    "DEMO_PAGE_USERNAME",
    "EMULATOR",
    "FAULT_KINDS",
    "EmulatedPage",
    "EmulatorConfig",
    "EmulatorError",
    "GraphEmulator",
    "GraphError",
    "check_message",
    "create_emulator_app",
    "demo_config",
]

log = logging.getLogger("plusone.emulator")

DEMO_PAGE_ID = "1000000000001"
DEMO_PAGE_TOKEN = "demo-page-token"
DEMO_PAGE_NAME = "PlusOne Demo Shop"
DEMO_PAGE_USERNAME = "plusonedemo"
DEMO_APP_ID = "555000555"

DAY_S = 24 * 3600.0
STANDARD_WINDOW_S = DAY_S
HUMAN_AGENT_WINDOW_S = 7 * DAY_S
# Meta: CUSTOMER_FEEDBACK is "only with the Customer Feedback template, within 7 days" (template not checked).
CUSTOMER_FEEDBACK_WINDOW_S = 7 * DAY_S
PRIVATE_REPLY_WINDOW_S = 7 * DAY_S

MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
TAG_WINDOWS = {"HUMAN_AGENT": HUMAN_AGENT_WINDOW_S, "CUSTOMER_FEEDBACK": CUSTOMER_FEEDBACK_WINDOW_S}
# Retired on 27 April 2026: "all API requests containing [them] will receive error code 100".
RETIRED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})
NOTIFICATION_TYPES = frozenset({"REGULAR", "SILENT_PUSH", "NO_PUSH"})
ATTACHMENT_TYPES = frozenset({"audio", "file", "image", "video", "template"})
BUTTON_TYPES = frozenset({"web_url", "postback", "phone_number", "account_link", "account_unlink", "game_play"})
QUICK_REPLY_TYPES = frozenset({"text", "user_phone_number", "user_email"})
PAGE_FIELDS = frozenset({"id", "name", "username", "link"})

# Meta's documented limits (Send API reference and template pages).
MAX_TEXT = 2000
MAX_METADATA = 1000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_PAYLOAD = 1000
MAX_BUTTON_TITLE = 20
MAX_BUTTON_TEXT = 640
MAX_GENERIC_ELEMENTS = 10
MAX_ELEMENT_TEXT = 80
MAX_RECEIPT_ELEMENTS = 100

FAULT_KINDS = (
    "server_error",
    "temporary",
    "rate_limit",
    "timeout",
    "outside_window",
    "blocked",
    "expired_token",
)
DEFAULT_TIMEOUT_DELAY_S = 30.0

_VERSION = re.compile(r"^v\d+\.\d+$")
_REDACTED = "REDACTED"
_SECRET_PARAMS = ("access_token", "appsecret_proof")


# --- configuration ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EmulatedPage:
    """A Facebook Page the emulator knows: its Page access token and public names."""

    token: str
    name: str = DEMO_PAGE_NAME
    username: str = ""
    subscribed_fields: tuple[str, ...] = ()  # the app's webhook subscription at start; empty = unsubscribed


@dataclass
class EmulatorConfig:
    pages: dict[str, EmulatedPage]
    app_id: str = DEMO_APP_ID
    app_secret: str = ""  # checks appsecret_proof and signs the webhooks the emulator delivers
    webhook_url: str | None = None  # our server's /webhook
    send_echoes: bool = True
    messages_per_second: int = 300  # per Page, Send API calls (Meta: 300/s for text messages)
    verify_appsecret_proof: bool = True  # a wrong proof is refused (code 100)
    # Meta's "Require App Secret" app setting, off by default: only then is a missing proof refused.
    require_appsecret_proof: bool = False
    app_name: str = "PlusOne"
    # Meta retries failed deliveries for hours; the emulator keeps the idea on a shorter scale.
    webhook_retry_delays: tuple[float, ...] = (1.0, 4.0, 15.0)
    webhook_timeout_s: float = 10.0
    max_records: int = 10_000  # recorded calls and deliveries kept (oldest dropped first)
    # Keep-alive cadence of live comment streams. Emulator choice: Meta documents `: ping` lines, not how often.
    sse_ping_s: float = 5.0


def demo_config(app_secret: str, webhook_url: str | None, *, app_id: str = DEMO_APP_ID) -> EmulatorConfig:
    """The one demo Page `plusone serve --demo` and `plusone emulator` use by default."""
    page = EmulatedPage(DEMO_PAGE_TOKEN, DEMO_PAGE_NAME, DEMO_PAGE_USERNAME)
    return EmulatorConfig(pages={DEMO_PAGE_ID: page}, app_id=app_id, app_secret=app_secret, webhook_url=webhook_url)


# --- Graph errors -----------------------------------------------------------------------------------------


class GraphError(Exception):
    """An error the emulator answers with Meta's envelope."""

    def __init__(self, code: int, message: str, subcode: int | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.status = status

    def envelope(self) -> dict[str, Any]:
        # Meta uses other types too (GraphMethodException for some 100s); clients classify by code, and the
        # sample envelope (graph_error_response_example.json) says OAuthException.
        error: dict[str, Any] = {"message": self.message, "type": "OAuthException", "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(8)
        return {"error": error}

    def response(self) -> web.Response:
        return web.json_response(self.envelope(), status=self.status)


def _invalid_token() -> GraphError:
    # Emulator choice: Meta answers a *missing* token with code 104 ("An access token is required to request
    # this resource."); the emulator folds missing, unknown and other-Page tokens into 190 as issue 3 asks.
    return GraphError(190, "Invalid OAuth access token.")


def _expired_token() -> GraphError:
    return GraphError(190, "Error validating access token: Session has expired", 463)


def _outside_window() -> GraphError:
    return GraphError(10, "(#10) This message is sent outside of allowed window.", 2018278)


def _unavailable() -> GraphError:
    return GraphError(551, "This person isn't available right now.", 1545041)


def _rate_limited() -> GraphError:
    return GraphError(613, "(#613) Calls to this API have exceeded the rate limit.")


def _temporary() -> GraphError:
    # Emulator choice: HTTP 503 with a JSON body, so clients see a 5xx that still carries Meta's code 2.
    return GraphError(2, "Service temporarily unavailable", status=503)


def _server_error() -> GraphError:
    return GraphError(2, "An unexpected error has occurred. Please retry your request later.", status=500)


def _invalid(message: str, subcode: int | None = None) -> GraphError:
    # The "(#100) ..." wording of parameter errors other than those quoted in docs/meta-platform.md is the emulator's.
    return GraphError(100, f"(#100) {message}", subcode)


def _unsupported(method: str, object_id: str) -> GraphError:
    return GraphError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api",
        33,
    )


# --- message validation (pure) ----------------------------------------------------------------------------


def _is_text(value: Any, limit: int | None = None) -> bool:
    return isinstance(value, str) and bool(value) and (limit is None or len(value) <= limit)


def _check_buttons(buttons: Any, where: str, minimum: int) -> None:
    if not isinstance(buttons, list) or not minimum <= len(buttons) <= 3:
        raise _invalid(f"param {where}[buttons] must have between {minimum} and 3 buttons")
    for i, button in enumerate(buttons):
        at = f"{where}[buttons][{i}]"
        if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
            raise _invalid(f"param {at}[type] must be one of {sorted(BUTTON_TYPES)}")
        kind = button["type"]
        if kind in ("web_url", "postback", "phone_number", "game_play") and not _is_text(
            button.get("title"), MAX_BUTTON_TITLE
        ):
            raise _invalid(f"param {at}[title] is required and must be at most {MAX_BUTTON_TITLE} characters")
        if kind in ("web_url", "account_link") and not _is_text(button.get("url")):
            raise _invalid(f"param {at}[url] is required")
        if kind in ("postback", "phone_number") and not _is_text(button.get("payload"), MAX_PAYLOAD):
            raise _invalid(f"param {at}[payload] is required and must be at most {MAX_PAYLOAD} characters")


def _check_template(payload: dict[str, Any]) -> None:
    kind = payload.get("template_type")
    if not _is_text(kind):
        raise _invalid("param message[attachment][payload][template_type] is required")
    where = "message[attachment][payload]"
    if kind == "button":
        if not _is_text(payload.get("text"), MAX_BUTTON_TEXT):
            raise _invalid(f"param {where}[text] is required and must be at most {MAX_BUTTON_TEXT} characters")
        _check_buttons(payload.get("buttons"), where, minimum=1)
    elif kind == "generic":
        elements = payload.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_GENERIC_ELEMENTS:
            raise _invalid(f"param {where}[elements] must have between 1 and {MAX_GENERIC_ELEMENTS} elements")
        for i, element in enumerate(elements):
            at = f"{where}[elements][{i}]"
            if not isinstance(element, dict) or not _is_text(element.get("title"), MAX_ELEMENT_TEXT):
                raise _invalid(f"param {at}[title] is required and must be at most {MAX_ELEMENT_TEXT} characters")
            subtitle = element.get("subtitle")
            if subtitle is not None and not (isinstance(subtitle, str) and len(subtitle) <= MAX_ELEMENT_TEXT):
                raise _invalid(f"param {at}[subtitle] must be at most {MAX_ELEMENT_TEXT} characters")
            if element.get("buttons") is not None:
                _check_buttons(element["buttons"], at, minimum=0)
    elif kind == "receipt":
        for name in ("recipient_name", "order_number", "currency", "payment_method"):
            if not _is_text(payload.get(name)):
                raise _invalid(f"param {where}[{name}] is required")
        summary = payload.get("summary")
        if not isinstance(summary, dict) or "total_cost" not in summary:
            raise _invalid(f"param {where}[summary][total_cost] is required")
        elements = payload.get("elements", [])
        if not isinstance(elements, list) or len(elements) > MAX_RECEIPT_ELEMENTS:
            raise _invalid(f"param {where}[elements] must have at most {MAX_RECEIPT_ELEMENTS} elements")
    # Other template types (media, customer_feedback, utility templates...) are accepted as they are.


def _check_quick_replies(quick_replies: Any) -> None:
    if not isinstance(quick_replies, list) or not 1 <= len(quick_replies) <= MAX_QUICK_REPLIES:
        raise _invalid(f"param message[quick_replies] must have between 1 and {MAX_QUICK_REPLIES} elements")
    for i, reply in enumerate(quick_replies):
        at = f"message[quick_replies][{i}]"
        if not isinstance(reply, dict) or reply.get("content_type") not in QUICK_REPLY_TYPES:
            raise _invalid(f"param {at}[content_type] must be one of {sorted(QUICK_REPLY_TYPES)}")
        if reply["content_type"] != "text":
            continue
        if not _is_text(reply.get("title"), MAX_QUICK_REPLY_TITLE):
            raise _invalid(f"param {at}[title] is required and must be at most {MAX_QUICK_REPLY_TITLE} characters")
        if not _is_text(reply.get("payload"), MAX_PAYLOAD):
            raise _invalid(f"param {at}[payload] is required and must be at most {MAX_PAYLOAD} characters")


def check_message(message: Any) -> None:
    """Refuse a Send API `message` the way Meta does (code 100); the limits are Meta's documented ones."""
    if not isinstance(message, dict):
        raise _invalid("param message must be a JSON object")
    text, attachment = message.get("text"), message.get("attachment")
    if text is None and attachment is None:
        raise _invalid("param message must have text or an attachment")
    if text is not None and attachment is not None:
        # Emulator choice: Meta's reference lists them as alternatives; the exact refusal is unverified.
        raise _invalid("param message must have text or an attachment, not both")
    if text is not None:
        if not _is_text(text):
            raise _invalid("param message[text] must be a non-empty string")
        # Counted in Unicode code points (a Chinese character is one); Meta says "less than 2000 characters".
        if len(text) > MAX_TEXT:
            raise _invalid(f"Length of param message[text] must be less than or equal to {MAX_TEXT}")
    if attachment is not None:
        if not isinstance(attachment, dict) or attachment.get("type") not in ATTACHMENT_TYPES:
            raise _invalid(f"param message[attachment][type] must be one of {sorted(ATTACHMENT_TYPES)}")
        payload = attachment.get("payload")
        if not isinstance(payload, dict):
            raise _invalid("param message[attachment][payload] must be a JSON object")
        if attachment["type"] == "template":
            _check_template(payload)
        elif not (_is_text(payload.get("url")) or payload.get("attachment_id")):
            raise _invalid("param message[attachment][payload] needs a url or an attachment_id")
    if message.get("quick_replies") is not None:
        _check_quick_replies(message["quick_replies"])
    metadata = message.get("metadata")
    if metadata is not None and not (isinstance(metadata, str) and len(metadata) <= MAX_METADATA):
        raise _invalid(f"param message[metadata] must be a string of at most {MAX_METADATA} characters")


# --- request parsing --------------------------------------------------------------------------------------


def _maybe_json(value: str) -> Any:
    if value[:1] in ("{", "["):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _redact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (_REDACTED if k in _SECRET_PARAMS else v) for k, v in values.items()}


async def _read_graph_request(request: web.Request) -> tuple[dict[str, Any], dict[str, str], Any]:
    """(args to act on, params as strings for the record, the body parsed for the record)."""
    params: dict[str, str] = dict(request.query)
    args: dict[str, Any] = dict(params)
    body: Any = None
    if request.method != "GET" and request.can_read_body:
        if request.content_type == "application/json":
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise _invalid("The request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise _invalid("The request body must be a JSON object")
            args.update(body)
            params.update({k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in body.items()})
        else:
            form = await request.post()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            args.update(fields)
            params.update(fields)
            body = {k: _maybe_json(v) for k, v in fields.items()}
    if "access_token" not in args:
        # Meta also takes the token as `Authorization: Bearer|OAuth <token>`.
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "oauth") and token.strip():
            args["access_token"] = token.strip()
    return args, _redact(params), _redact(body) if isinstance(body, dict) else body


def _object_param(args: dict[str, Any], name: str) -> Any:
    """A nested parameter: a JSON object in a JSON body, or a JSON string in a form field."""
    value = args.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _invalid(f"param {name} must be a JSON object") from None
    if value is not None and not isinstance(value, dict):
        raise _invalid(f"param {name} must be a JSON object")
    return value


def _id_param(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def _bool_param(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


# --- state ------------------------------------------------------------------------------------------------


@dataclass
class _FeedObject:
    """A comment or a visitor post the emulator knows about (private replies are keyed by it)."""

    object_id: str
    page_id: str
    post_id: str
    author_id: str | None
    created_time: float
    hidden: bool = False
    private_reply_mid: str | None = None
    replies: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.object_id,
            "page_id": self.page_id,
            "post_id": self.post_id,
            "author_id": self.author_id,
            "created_time": self.created_time,
            "is_hidden": self.hidden,
            "private_reply_message_id": self.private_reply_mid,
            "replies": list(self.replies),
        }


@dataclass
class _Fault:
    id: int
    kind: str
    remaining: int | None  # the next N matching calls; None = a share of them
    share: float
    path_contains: str | None
    delay_s: float
    status: int
    rng: random.Random

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "next": self.remaining,
            "share": None if self.remaining is not None else self.share,
            "path_contains": self.path_contains,
            "delay_s": self.delay_s,
            "status": self.status,
        }


LIVE_STATUSES = ("live", "live_stopped", "vod")
LIVE_TARGETS = ("webhook", "stream", "comments")
COMMENT_RATES = ("one_per_two_seconds", "ten_per_second", "one_hundred_per_second")
LIVE_FILTERS = ("filter_low_quality", "no_filter")
COMMENT_ORDERS = ("chronological", "reverse_chronological")
COMMENT_FILTERS = ("toplevel", "stream")
MAX_COMMENTS_LIMIT = 100  # Emulator choice: Meta caps most edges' `limit` around 100


def graph_time(epoch_s: float) -> str:
    """Meta's time format in Graph answers and live comment events: `2022-08-31T09:09:39+0000`."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


@dataclass
class _LiveStream:
    """One open Live Comments connection: events waiting to be written, and how it should end."""

    fields: frozenset[str]
    pending: deque[bytes] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    end: str | None = None  # "end": finish the response cleanly; "abort": cut the connection

    def push(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.wake.set()

    def close(self, how: str) -> None:
        self.end = self.end or how
        self.wake.set()


@dataclass
class _LiveVideo:
    """A Page's live video: its status, its comments (as the comments edge lists them) and open streams."""

    video_id: str
    page_id: str
    status: str
    created_time: float
    description: str = ""
    comments: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (created, as the edge lists it)
    streams: list[_LiveStream] = field(default_factory=list)

    @property
    def post_id(self) -> str:
        # What feed webhooks name as the post of a comment on the video (see tests of comment_orders).
        return f"{self.page_id}_{self.video_id}"

    def end_streams(self, how: str) -> int:
        for stream in self.streams:
            stream.close(how)
        return len(self.streams)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.video_id,
            "page_id": self.page_id,
            "status": self.status,
            "comments": len(self.comments),
            "open_streams": len(self.streams),
        }


class _ControlError(Exception):
    """Bad input to a control route: answered 400 with the reason."""


class _Emulator:
    """The emulator's state and handlers; one per application."""

    def __init__(self, config: EmulatorConfig) -> None:
        if not config.pages:
            raise ValueError("the emulator needs at least one page")
        self.config = config
        self.tokens = {page.token: page_id for page_id, page in config.pages.items()}
        if len(self.tokens) != len(config.pages):
            raise ValueError("each page needs its own token")
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.closing = asyncio.Event()
        self._call_seq = itertools.count(1)
        self._delivery_seq = itertools.count(1)
        self._fault_ids = itertools.count(1)
        self._object_ids = itertools.count(int(time.time() * 1000) * 1000)
        self.reset()

    def reset(self) -> None:
        self.calls: deque[dict[str, Any]] = deque(maxlen=self.config.max_records)
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=self.config.max_records)
        self.faults: list[_Fault] = []
        self.activity: dict[tuple[str, str], float] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.expired: set[str] = set()
        self.comments: dict[str, _FeedObject] = {}
        self.posts: dict[str, _FeedObject] = {}
        self.subscriptions = {
            page_id: list(page.subscribed_fields)
            for page_id, page in self.config.pages.items()
            if page.subscribed_fields
        }
        self.clock_offset = 0.0
        self._sends: dict[str, deque[float]] = {}
        for video in getattr(self, "live_videos", {}).values():
            video.end_streams("end")
        self.live_videos: dict[str, _LiveVideo] = {}

    def now(self) -> float:
        """The emulator's clock: real time shifted by the control offset (window rules use it)."""
        return time.time() + self.clock_offset

    # --- Graph routes ---------------------------------------------------------------------------------

    async def handle_graph(self, request: web.Request) -> web.StreamResponse:
        call: dict[str, Any] = {
            "seq": next(self._call_seq),
            "at": self.now(),
            "method": request.method,
            "path": request.path,
            "page_id": None,
            "params": {},
            "body": None,
            "status": None,
            "response": None,
        }
        self.calls.append(call)
        response = await self._answer(request, call)
        if call["status"] is None:
            call["status"] = response.status
            if isinstance(response, web.Response) and response.text is not None:
                call["response"] = (
                    _maybe_json(response.text) if response.content_type == "application/json" else (response.text)
                )
        log.debug("%s %s -> %s", request.method, request.path, call["status"])
        return response

    async def _answer(self, request: web.Request, call: dict[str, Any]) -> web.StreamResponse:
        try:
            parts = [p for p in request.path.split("/") if p]
            if parts and _VERSION.match(parts[0]):
                parts = parts[1:]
            args, call["params"], call["body"] = await _read_graph_request(request)
            call["page_id"] = self._page_hint(parts, args)
            fault = self._take_fault(request.path)
            if fault is not None:
                return await self._apply_fault(fault, call)
            if request.method == "GET" and len(parts) == 2 and parts[1] == "live_comments":
                return await self._live_comments_stream(request, parts[0], args, call)
            if request.method == "GET" and len(parts) == 2 and parts[1] == "comments":
                return web.json_response(self._list_comments(parts[0], args, call, request.url))
            return web.json_response(self._route(request.method, parts, args, call))
        except GraphError as exc:
            return exc.response()
        except Exception:
            # An emulator bug still answers in Meta's envelope (code 1, "unknown error") and is logged.
            log.exception("emulator failed on %s %s", request.method, request.path)
            return GraphError(1, "An unknown error occurred", status=500).response()

    def _page_hint(self, parts: list[str], args: dict[str, Any]) -> str | None:
        """The Page a call is about, for the record, before any check (handlers confirm it)."""
        ref = parts[0] if parts else ""
        if ref == "me":
            token = args.get("access_token")
            return self.tokens.get(token) if isinstance(token, str) else None
        if ref in self.config.pages:
            return ref
        target = self.comments.get(ref) or self.posts.get(ref) or self.live_videos.get(ref)
        return target.page_id if target is not None else None

    def _route(self, method: str, parts: list[str], args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        if len(parts) == 2 and parts[1] == "messages" and method == "POST":
            return self._send_message(parts[0], args, call)
        if len(parts) == 2 and parts[1] == "subscribed_apps":
            return self._subscribed_apps(method, parts[0], args, call)
        if len(parts) == 2 and parts[1] == "comments" and method == "GET":
            return self._list_comments(parts[0], args, call)
        if len(parts) == 2 and parts[1] == "comments" and method == "POST":
            return self._public_reply(parts[0], args, call)
        if len(parts) == 1 and method == "GET":
            return self._page_info(parts[0], args, call)
        if len(parts) == 1 and method == "POST":
            return self._update_comment(parts[0], args, call)
        self._authenticate(args)
        raise _unsupported(method, parts[0] if parts else "")

    def _authenticate(self, args: dict[str, Any]) -> str:
        """The id of the Page whose token the call carries, after the token and appsecret_proof checks."""
        token = args.get("access_token")
        page_id = self.tokens.get(token) if isinstance(token, str) else None
        if page_id is None:
            raise _invalid_token()
        if page_id in self.expired:
            raise _expired_token()
        proof = args.get("appsecret_proof")
        if self.config.verify_appsecret_proof and self.config.app_secret:
            if proof is None or proof == "":
                if self.config.require_appsecret_proof:
                    # Emulator choice of wording; Meta's refusal is a code 100 when the app requires the proof.
                    raise _invalid("API calls from the server require an appsecret_proof argument")
            else:
                expected = hmac.new(self.config.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
                if not isinstance(proof, str) or not hmac.compare_digest(expected, proof.lower()):
                    raise GraphError(100, "Invalid appsecret_proof provided in the API argument")
        return page_id

    def _page_of(self, ref: str, args: dict[str, Any], call: dict[str, Any], method: str) -> str:
        """The Page a `/{page_id|me}/...` call is about; its token must be that Page's."""
        token_page = self._authenticate(args)
        page_id = token_page if ref == "me" else ref
        if page_id not in self.config.pages:
            raise _unsupported(method, ref)
        call["page_id"] = page_id
        if page_id != token_page:
            # Emulator choice: Meta may answer another Page's token with a permission error (10/200 family).
            raise _invalid_token()
        return page_id

    def _count_send(self, page_id: str) -> None:
        """Sliding one-second window per Page over every Send API call that passed the token check.

        Refused calls count too (Meta counts calls, not successes), so a client that keeps hammering stays
        limited until it backs off for a second; calls refused before the token check or by an injected
        fault do not count.
        """
        stamps = self._sends.setdefault(page_id, deque())
        moment = time.monotonic()
        while stamps and stamps[0] <= moment - 1.0:
            stamps.popleft()
        stamps.append(moment)
        if len(stamps) > self.config.messages_per_second:
            raise _rate_limited()

    def _send_message(self, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        page_id = self._page_of(ref, args, call, "POST")
        self._count_send(page_id)
        # Meta's reference marks messaging_type required, but its own samples omit it: treated as RESPONSE.
        messaging_type = args.get("messaging_type") or "RESPONSE"
        if messaging_type not in MESSAGING_TYPES:
            raise _invalid(f"param messaging_type must be one of {{{', '.join(MESSAGING_TYPES)}}}")
        tag = args.get("tag") or None
        if tag is not None:
            if tag in RETIRED_TAGS:
                raise _invalid(
                    f"The message tag {tag} is no longer supported (retired on April 27, 2026). Use Utility "
                    "Templates or the Marketing Messages API instead."
                )
            if tag not in TAG_WINDOWS:
                raise _invalid(f"param tag must be one of {{{', '.join(TAG_WINDOWS)}}}")
        elif messaging_type == "MESSAGE_TAG":
            raise _invalid("param tag is required when messaging_type is MESSAGE_TAG")
        if args.get("notification_type") not in (None, "", *NOTIFICATION_TYPES):
            raise _invalid(f"param notification_type must be one of {sorted(NOTIFICATION_TYPES)}")
        recipient = _object_param(args, "recipient")
        if not recipient:
            raise _invalid("param recipient must be non-empty.")
        message = _object_param(args, "message")
        sender_action = args.get("sender_action") or None
        if sender_action is not None:
            if sender_action not in SENDER_ACTIONS:
                raise _invalid(f"param sender_action must be one of {sorted(SENDER_ACTIONS)}")
            if message is not None:
                raise _invalid("param sender_action cannot be sent together with message")
        else:
            check_message(message)

        if (comment_id := _id_param(recipient.get("comment_id"))) is not None:
            target = self.comments.get(comment_id)
            if target is None or target.page_id != page_id:
                raise _invalid("Invalid comment_id parameter", 2018292)
            return self._private_reply(target, message, sender_action)
        if (post_id := _id_param(recipient.get("post_id"))) is not None:
            target = self.posts.get(post_id)
            if target is None or target.page_id != page_id:
                # Emulator choice: mirrors the comment_id refusal; Meta's payload for posts is unverified.
                raise _invalid("Invalid post_id parameter", 2018292)
            return self._private_reply(target, message, sender_action)
        psid = _id_param(recipient.get("id"))
        if psid is None:
            if "user_ref" in recipient:
                raise _invalid("recipient.user_ref is not supported by the PlusOne Graph emulator")
            raise _invalid("param recipient must have id, comment_id or post_id")
        if (page_id, psid) in self.blocked:
            raise _unavailable()
        last = self.activity.get((page_id, psid))
        age = math.inf if last is None else self.now() - last
        window = TAG_WINDOWS[tag] if messaging_type == "MESSAGE_TAG" and tag else STANDARD_WINDOW_S
        if age > window:
            raise _outside_window()
        if sender_action is not None:
            return {"recipient_id": psid}
        mid = self._message_id()
        self._schedule_echo(page_id, psid, message, mid)
        return {"recipient_id": psid, "message_id": mid}

    def _private_reply(self, target: _FeedObject, message: Any, sender_action: str | None) -> dict[str, Any]:
        if sender_action is not None:
            raise _invalid("param sender_action cannot be sent as a private reply")
        if target.author_id is not None and (target.page_id, target.author_id) in self.blocked:
            raise _unavailable()
        if target.private_reply_mid is not None:
            # Emulator choice: Meta documents "only one message" per comment but not the refusal's payload;
            # 10/2018336 is the emulator's code so clients can tell it apart from an outside-window refusal.
            raise GraphError(10, "(#10) Only one private reply is allowed per comment", 2018336)
        if self.now() - target.created_time > PRIVATE_REPLY_WINDOW_S:
            raise _outside_window()
        mid = self._message_id()
        # Checked and marked with no await in between: two racing replies cannot both pass.
        target.private_reply_mid = mid
        if target.author_id is not None:
            self._schedule_echo(target.page_id, target.author_id, message, mid)
        # Meta does not document whether recipient_id comes back for private replies (docs/meta-platform.md §8).
        return {"recipient_id": target.author_id or "", "message_id": mid}

    def _message_id(self) -> str:
        return "m_" + secrets.token_urlsafe(30)

    def _feed_object(self, object_id: str) -> _FeedObject | None:
        if object_id in self.comments:
            return self.comments[object_id]
        if object_id in self.posts:
            return self.posts[object_id]
        # A post only seen as the parent of comments: enough to comment on it as the Page.
        for comment in self.comments.values():
            if comment.post_id == object_id:
                return _FeedObject(object_id, comment.page_id, object_id, None, comment.created_time)
        return None

    def _public_reply(self, object_id: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        token_page = self._authenticate(args)
        target = self._feed_object(object_id)
        if target is None:
            raise _unsupported("POST", object_id)
        call["page_id"] = target.page_id
        if target.page_id != token_page:
            raise _invalid_token()
        message = args.get("message")
        if not (_is_text(message) or args.get("attachment_url") or args.get("attachment_id")):
            raise _invalid("Missing message or attachment")
        post_object = object_id.split("_", 1)[0] if "_" in object_id else target.post_id.rsplit("_", 1)[-1]
        new_id = f"{post_object}_{next(self._object_ids)}"
        target.replies.append(new_id)
        # The reply is a comment by the Page; it can be hidden like any other (not idempotent, like Meta).
        self.comments[new_id] = _FeedObject(new_id, target.page_id, target.post_id, target.page_id, self.now())
        return {"id": new_id}

    def _update_comment(self, object_id: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        token_page = self._authenticate(args)
        comment = self.comments.get(object_id)
        if comment is None:
            raise _unsupported("POST", object_id)
        call["page_id"] = comment.page_id
        if comment.page_id != token_page:
            raise _invalid_token()
        hidden = _bool_param(args.get("is_hidden"))
        if hidden is None:
            raise _invalid("param is_hidden must be true or false")
        comment.hidden = hidden
        return {"success": True}

    def _page_info(self, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        page_id = self._page_of(ref, args, call, "GET")
        page = self.config.pages[page_id]
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
                raise _invalid(f"Tried accessing nonexisting field ({name}) on node type (Page)")
            # Meta leaves out fields that have no value (a Page without a username).
            if values[name]:
                result[name] = values[name]
        result["id"] = page_id
        return result

    def _subscribed_apps(self, method: str, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        page_id = self._page_of(ref, args, call, method)
        if method == "GET":
            fields = self.subscriptions.get(page_id)
            if not fields:
                return {"data": []}
            # Emulator choice: Meta's entries also carry category and link; clients read id and subscribed_fields.
            return {"data": [{"id": self.config.app_id, "name": self.config.app_name, "subscribed_fields": fields}]}
        if method == "DELETE":
            self.subscriptions.pop(page_id, None)
            return {"success": True}
        if method != "POST":
            raise _unsupported(method, ref)
        raw = args.get("subscribed_fields")
        if isinstance(raw, str):
            raw = _maybe_json(raw) if raw.startswith("[") else raw.split(",")
        fields = [str(f).strip() for f in raw] if isinstance(raw, list) else []
        fields = [f for f in fields if f]
        if not fields:
            raise _invalid("The parameter subscribed_fields is required")
        # Emulator choice: any well-formed field name is taken; Meta checks them against its list.
        bad = [f for f in fields if not re.fullmatch(r"[a-z_]+", f)]
        if bad:
            raise _invalid(f"param subscribed_fields has an invalid field: {bad[0]}")
        self.subscriptions[page_id] = list(dict.fromkeys(fields))
        return {"success": True}

    # --- live videos ----------------------------------------------------------------------------------

    def _live_video_of(self, video_id: str, args: dict[str, Any], call: dict[str, Any]) -> _LiveVideo:
        token_page = self._authenticate(args)
        video = self.live_videos.get(video_id)
        if video is None:
            # Emulator choice: only live videos list comments or stream them here; other objects are unknown.
            raise _unsupported("GET", video_id)
        call["page_id"] = video.page_id
        if video.page_id != token_page:
            raise _invalid_token()
        return video

    def _list_comments(self, video_id: str, args: dict[str, Any], call: dict[str, Any], url: Any) -> dict[str, Any]:
        """`GET /{video_id}/comments`, as Meta pages it: cursors on every page, `next` while more remain."""
        video = self._live_video_of(video_id, args, call)
        order = args.get("order") or "chronological"
        if order not in COMMENT_ORDERS:
            raise _invalid(f"param order must be one of {{{', '.join(COMMENT_ORDERS)}}}")
        kind = args.get("filter") or "toplevel"
        if kind not in COMMENT_FILTERS:
            raise _invalid(f"param filter must be one of {{{', '.join(COMMENT_FILTERS)}}}")
        since, until = _time_param(args, "since"), _time_param(args, "until")
        raw_limit = args.get("limit") or 25
        try:
            limit = min(int(raw_limit), MAX_COMMENTS_LIMIT)
        except (TypeError, ValueError):
            raise _invalid("param limit must be a number") from None
        if limit < 1:
            raise _invalid("param limit must be at least 1")
        wanted = _wanted_fields(args.get("fields")) or frozenset({"created_time", "from", "message"})
        items = [
            comment
            for at, comment in video.comments
            if (kind == "stream" or "parent" not in comment)
            and (since is None or int(at) >= since)
            and (until is None or int(at) <= until)
        ]
        if order == "reverse_chronological":
            items.reverse()
        ids = [c["id"] for c in items]
        start, stop = 0, len(items)
        if args.get("after"):
            start = _cursor_position(ids, args["after"], "after") + 1
        if args.get("before"):
            stop = _cursor_position(ids, args["before"], "before")
            start = max(0, stop - limit) if not args.get("after") else start
        page = items[start : min(stop, start + limit)]
        body: dict[str, Any] = {"data": [_select_fields(c, wanted) for c in page]}
        if page:
            paging: dict[str, Any] = {"cursors": {"before": _cursor(page[0]["id"]), "after": _cursor(page[-1]["id"])}}
            if start + len(page) < stop:
                query = {k: v for k, v in args.items() if k != "before"}
                query["after"] = paging["cursors"]["after"]
                paging["next"] = str(url.with_query(query))
            body["paging"] = paging
        return body

    async def _live_comments_stream(
        self, request: web.Request, video_id: str, args: dict[str, Any], call: dict[str, Any]
    ) -> web.StreamResponse:
        """`GET /{video_id}/live_comments` on streaming-graph: comments made while connected, as SSE events."""
        video = self._live_video_of(video_id, args, call)
        if args.get("comment_rate") not in (None, "", *COMMENT_RATES):
            raise _invalid(f"param comment_rate must be one of {{{', '.join(COMMENT_RATES)}}}")
        if args.get("live_filter") not in (None, "", *LIVE_FILTERS):
            raise _invalid(f"param live_filter must be one of {{{', '.join(LIVE_FILTERS)}}}")
        if video.status != "live":
            # Emulator choice: Meta does not document its answer for a video that is not broadcasting.
            raise _invalid(f"Live video {video_id} is not broadcasting")
        # The library's default fields; Meta's sample event also carries id, created_time and object.
        stream = _LiveStream(fields=_wanted_fields(args.get("fields")) or frozenset({"from", "message"}))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        call["status"], call["response"] = 200, "text/event-stream"
        video.streams.append(stream)
        try:
            while True:
                while stream.pending:
                    await response.write(stream.pending.popleft())
                if stream.end is not None or self.closing.is_set():
                    break
                stream.wake.clear()
                try:
                    await asyncio.wait_for(stream.wake.wait(), self.config.sse_ping_s)
                except TimeoutError:
                    await response.write(b": ping\n\n")
        except (ConnectionError, RuntimeError):
            return response  # the client went away
        finally:
            video.streams.remove(stream)
        if stream.end == "abort" and request.transport is not None:
            # A network drop: the connection is cut with no end-of-stream, as a reset would.
            request.transport.abort()
            return response
        await response.write_eof()
        return response

    def _live_event(self, video: _LiveVideo, comment: dict[str, Any], fields: frozenset[str]) -> bytes:
        event: dict[str, Any] = {"id": comment["id"], "created_time": comment["created_time"]}
        event.update({k: comment[k] for k in ("from", "message", "parent") if k in fields and k in comment})
        updated = graph_time(self.now())
        event["object"] = {"description": video.description, "updated_time": updated, "id": video.video_id}
        return b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"

    # --- faults ---------------------------------------------------------------------------------------

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self.faults:
            if fault.path_contains and fault.path_contains not in path:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
            if fault.rng.random() < fault.share:
                return fault
        return None

    async def _apply_fault(self, fault: _Fault, call: dict[str, Any]) -> web.Response:
        if fault.kind == "timeout":
            # Emulator choice: a bare 504 once the delay is over (a gateway giving up). Recorded before waiting:
            # the client usually gives up first and the handler is then cancelled.
            call["status"], call["response"] = 504, {"fault": "timeout", "delay_s": fault.delay_s}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), fault.delay_s)
            return web.Response(status=504, text="Gateway Timeout")
        if fault.kind == "server_error" and fault.status != 500:
            # A bare 5xx without Meta's JSON, as a proxy or load balancer in front of Graph would answer.
            return web.Response(
                status=fault.status, text="Service Unavailable" if fault.status == 503 else "Bad Gateway"
            )
        error = {
            "server_error": _server_error,
            "temporary": _temporary,
            "rate_limit": _rate_limited,
            "outside_window": _outside_window,
            "blocked": _unavailable,
            "expired_token": _expired_token,
        }[fault.kind]()
        return error.response()

    # --- webhooks toward our server -------------------------------------------------------------------

    def learn(self, payload: Any) -> None:
        """Take what Meta would know from a webhook it sends: shopper activity, comments, visitor posts."""
        if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
            return
        for entry in payload["entry"]:
            if not isinstance(entry, dict):
                continue
            page_id = _id_param(entry.get("id"))
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
        psid = _id_param(sender.get("id")) if isinstance(sender, dict) else None
        if psid is None or psid == page_id:
            return
        stamp = item.get("timestamp")
        at = stamp / 1000 if isinstance(stamp, int | float) and not isinstance(stamp, bool) else self.now()
        key = (page_id, psid)
        self.activity[key] = max(at, self.activity.get(key, at))

    def _learn_feed(self, page_id: str, value: Any) -> None:
        if not isinstance(value, dict):
            return
        verb, item = value.get("verb"), value.get("item")
        sender = value.get("from")
        author = _id_param(sender.get("id")) if isinstance(sender, dict) else None
        created = value.get("created_time")
        created_time = float(created) if isinstance(created, int | float) and not isinstance(created, bool) else None
        post_id = _id_param(value.get("post_id")) or ""
        if item == "comment" and (comment_id := _id_param(value.get("comment_id"))) is not None:
            if verb == "remove":
                self.comments.pop(comment_id, None)
            elif verb in ("add", "edited"):
                known = self.comments.get(comment_id)
                if known is None:
                    when = created_time if created_time is not None else self.now()
                    self.comments[comment_id] = _FeedObject(comment_id, page_id, post_id, author, when)
                else:
                    known.author_id = author or known.author_id
        elif item in ("post", "status", "photo", "video") and verb == "add" and post_id and author != page_id:
            when = created_time if created_time is not None else self.now()
            self.posts.setdefault(post_id, _FeedObject(post_id, page_id, post_id, author, when))

    async def deliver(self, payload: dict[str, Any], kind: str, retry_delays: tuple[float, ...] = ()) -> dict[str, Any]:
        """Sign and POST one delivery to our server; retried after each delay while it fails."""
        url = self.config.webhook_url
        if not url or self.session is None:
            raise _ControlError("no webhook_url configured")
        body, headers = wf.signed(payload, self.config.app_secret)
        record: dict[str, Any] = {
            "seq": next(self._delivery_seq),
            "at": self.now(),
            "kind": kind,
            "url": url,
            "attempts": 0,
            "status": None,
            "error": None,
            "payload": payload,
        }
        self.deliveries.append(record)
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

    def _schedule_echo(self, page_id: str, psid: str, message: dict[str, Any], mid: str) -> None:
        if not (self.config.send_echoes and self.config.webhook_url and self.session is not None):
            return
        attachment = message.get("attachment")
        item = wf.message_item(
            page_id=page_id,
            psid=psid,
            text=message.get("text"),
            mid=mid,
            timestamp=int(self.now() * 1000),
            attachments=[attachment] if isinstance(attachment, dict) else None,
            echo=True,
            app_id=self.config.app_id,
            metadata=message.get("metadata"),
        )
        delivery = self.deliver(wf.messaging_delivery(page_id, [item]), "echo", self.config.webhook_retry_delays)
        task = asyncio.create_task(delivery)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- control routes -------------------------------------------------------------------------------

    def _page(self, data: dict[str, Any]) -> str:
        page_id = _text(data, "page_id")
        if page_id not in self.config.pages:
            raise _ControlError(f"unknown page_id {page_id!r} (pages: {', '.join(self.config.pages)})")
        return page_id

    async def get_calls(self, request: web.Request) -> web.Response:
        needle = request.query.get("path_contains")
        calls = [c for c in self.calls if not needle or needle in c["path"]]
        return web.json_response(calls)

    async def delete_calls(self, _request: web.Request) -> web.Response:
        self.calls.clear()
        return web.json_response({"cleared": True})

    async def get_deliveries(self, request: web.Request) -> web.Response:
        kind = request.query.get("kind")
        return web.json_response([d for d in self.deliveries if not kind or d["kind"] == kind])

    async def get_faults(self, _request: web.Request) -> web.Response:
        return web.json_response([f.to_dict() for f in self.faults])

    async def post_fault(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        kind = _text(data, "kind")
        if kind not in FAULT_KINDS:
            raise _ControlError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        count, share = data.get("next"), data.get("share")
        if count is not None and share is not None:
            raise _ControlError("give next or share, not both")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise _ControlError("next must be a whole number of at least 1")
        share_value = 1.0 if share is None else _number(data, "share")
        if not 0.0 < share_value <= 1.0:
            raise _ControlError("share must be above 0 and at most 1")
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise _ControlError("seed must be a whole number")
        delay_s = _number(data, "delay_s") if data.get("delay_s") is not None else DEFAULT_TIMEOUT_DELAY_S
        if delay_s < 0:
            raise _ControlError("delay_s must not be negative")
        status = data.get("status", 500)
        if kind == "server_error" and status not in (500, 502, 503):
            raise _ControlError("status must be 500 (Meta's JSON code 2), 502 or 503 (bare)")
        path_contains = _text(data, "path_contains", required=False)
        fault = _Fault(
            id=next(self._fault_ids),
            kind=kind,
            remaining=count,
            share=share_value,
            path_contains=path_contains,
            delay_s=delay_s,
            status=status if kind == "server_error" else 400,
            rng=random.Random(seed),
        )
        self.faults.append(fault)
        return web.json_response(fault.to_dict())

    async def delete_faults(self, _request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({"cleared": True})

    async def post_activity(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id, psid = self._page(data), _text(data, "psid")
        at = _number(data, "at") if data.get("at") is not None else self.now()
        self.activity[(page_id, psid)] = at
        return web.json_response({"page_id": page_id, "psid": psid, "at": at})

    async def post_block(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id, psid = self._page(data), _text(data, "psid")
        blocked = _flag(data, "blocked", default=True)
        (self.blocked.add if blocked else self.blocked.discard)((page_id, psid))
        return web.json_response({"page_id": page_id, "psid": psid, "blocked": blocked})

    async def get_clock(self, _request: web.Request) -> web.Response:
        return web.json_response({"offset_s": self.clock_offset, "now": self.now()})

    async def post_clock(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        self.clock_offset = _number(data, "offset_s")
        return web.json_response({"offset_s": self.clock_offset, "now": self.now()})

    async def get_comments(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "comments": [c.to_dict() for c in self.comments.values()],
                "posts": [p.to_dict() for p in self.posts.values()],
            }
        )

    async def post_comment(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id, comment_id = self._page(data), _text(data, "comment_id")
        post_id = _text(data, "post_id", required=False) or (comment_id.split("_", 1)[0] if "_" in comment_id else "")
        comment = _FeedObject(
            comment_id, page_id, post_id, _text(data, "author_id", required=False), self._created_time(data)
        )
        self.comments[comment_id] = comment
        return web.json_response(comment.to_dict())

    async def post_post(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id, post_id = self._page(data), _text(data, "post_id")
        post = _FeedObject(
            post_id, page_id, post_id, _text(data, "author_id", required=False), self._created_time(data)
        )
        self.posts[post_id] = post
        return web.json_response(post.to_dict())

    def _created_time(self, data: dict[str, Any]) -> float:
        value = data.get("created_time")
        if value is None:
            return self.now()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                raise _ControlError("created_time must be epoch seconds or an ISO 8601 time") from None
        return _number(data, "created_time")

    async def post_unsubscribe(self, request: web.Request) -> web.Response:
        # Meta drops (disables) the subscription of an app whose webhook keeps failing.
        page_id = self._page(await _control_body(request))
        self.subscriptions.pop(page_id, None)
        return web.json_response({"page_id": page_id, "subscribed": False})

    async def post_token(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id = self._page(data)
        expired = _flag(data, "expired", default=True)
        (self.expired.add if expired else self.expired.discard)(page_id)
        return web.json_response({"page_id": page_id, "expired": expired})

    async def post_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _play(self, payload: dict[str, Any], kind: str, **extra: Any) -> web.Response:
        if not self.config.webhook_url:
            raise _ControlError("no webhook_url configured")
        # Learned before delivering: a server that answers inside the webhook already finds the window open.
        self.learn(payload)
        record = await self.deliver(payload, kind)
        body = {"status": record["status"], **extra, "payload": payload}
        if record["error"] is not None:
            body["error"] = record["error"]
            return web.json_response(body, status=502)
        return web.json_response(body)

    async def play_comment(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id = self._page(data)
        verb = _text(data, "verb", required=False) or "add"
        message = data.get("message")
        if verb != "remove" and not isinstance(message, str):
            raise _ControlError("message is required (a string)")
        payload = wf.comment_delivery(
            page_id=page_id,
            post_id=_text(data, "post_id"),
            message=message,
            user_id=_text(data, "user_id"),
            user_name=_text(data, "user_name", required=False) or "Shopper",
            comment_id=_text(data, "comment_id", required=False),
            verb=verb,
            created_time=int(self._created_time(data)),
        )
        comment_id = payload["entry"][0]["changes"][0]["value"]["comment_id"]
        return await self._play(payload, "comment", comment_id=comment_id)

    async def play_message(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id, psid = self._page(data), _text(data, "psid")
        text = data.get("text")
        if not isinstance(text, str):
            raise _ControlError("text is required (a string)")
        item = wf.message_item(
            page_id=page_id,
            psid=psid,
            text=text,
            mid=_text(data, "mid", required=False),
            timestamp=int(self.now() * 1000),
            quick_reply=_text(data, "quick_reply", required=False),
        )
        return await self._play(wf.messaging_delivery(page_id, [item]), "message", mid=item["message"]["mid"])

    async def play_postback(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id, psid = self._page(data), _text(data, "psid")
        item = wf.postback_item(
            page_id=page_id,
            psid=psid,
            payload=_text(data, "payload"),
            title=_text(data, "title", required=False),
            ref=_text(data, "ref", required=False),
            timestamp=int(self.now() * 1000),
        )
        return await self._play(wf.messaging_delivery(page_id, [item]), "postback")

    async def play_referral(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        page_id, psid = self._page(data), _text(data, "psid")
        item = wf.referral_item(page_id=page_id, psid=psid, ref=_text(data, "ref"), timestamp=int(self.now() * 1000))
        return await self._play(wf.messaging_delivery(page_id, [item]), "referral")

    async def play_raw(self, request: web.Request) -> web.Response:
        data = await _control_body(request)
        payload = data.get("payload")
        if not isinstance(payload, dict):
            raise _ControlError("payload is required (a JSON object)")
        return await self._play(payload, "raw")

    async def get_live_videos(self, _request: web.Request) -> web.Response:
        return web.json_response([video.to_dict() for video in self.live_videos.values()])

    async def post_live_video(self, request: web.Request) -> web.Response:
        """Start (or end) a live video; a change of status is announced by the `live_videos` webhook."""
        data = await _control_body(request)
        page_id = self._page(data)
        video_id = _text(data, "video_id", required=False) or str(next(self._object_ids))
        status = _text(data, "status", required=False) or "live"
        if status not in LIVE_STATUSES:
            raise _ControlError(f"status must be one of {', '.join(LIVE_STATUSES)}")
        webhook = _flag(data, "webhook", default=True)
        video = self.live_videos.get(video_id)
        if video is not None and video.page_id != page_id:
            raise _ControlError(f"live video {video_id} belongs to Page {video.page_id}")
        changed = video is None or video.status != status
        if video is None:
            description = _text(data, "description", required=False) or ""
            video = _LiveVideo(video_id, page_id, status, self.now(), description)
            self.live_videos[video_id] = video
        video.status = status
        if status != "live":
            video.end_streams("end")  # Emulator choice: Meta's behaviour at the end of a broadcast is undocumented
        if webhook and changed:
            delivery = wf.live_video_delivery(page_id=page_id, video_id=video_id, status=status)
            return await self._play(delivery, "live_video", video=video.to_dict())
        return web.json_response({"video": video.to_dict()})

    async def post_live_comment(self, request: web.Request) -> web.Response:
        """A viewer comments on a live video; `to` says which of Meta's channels carry it."""
        data = await _control_body(request)
        video_id = _text(data, "video_id")
        video = self.live_videos.get(video_id)
        if video is None:
            raise _ControlError(f"unknown live video {video_id!r}: start it with POST /_emulator/live_videos")
        user_id = _text(data, "user_id")
        user_name = _text(data, "user_name", required=False) or "Shopper"
        message = data.get("message")
        if not isinstance(message, str):
            raise _ControlError("message is required (a string)")
        targets = data.get("to", list(LIVE_TARGETS))
        if not isinstance(targets, list) or not targets or any(t not in LIVE_TARGETS for t in targets):
            raise _ControlError(f"to must be a non-empty list of {', '.join(LIVE_TARGETS)}")
        comment_id = _text(data, "comment_id", required=False) or f"{video_id}_{next(self._object_ids)}"
        parent_id = _text(data, "parent_id", required=False)
        created = self._created_time(data)
        # Meta knows the comment whichever way we hear of it: private and public replies work on it.
        known = self.comments.setdefault(
            comment_id, _FeedObject(comment_id, video.page_id, video.post_id, user_id, created)
        )
        known.author_id = user_id
        comment: dict[str, Any] = {
            "id": comment_id,
            "created_time": graph_time(created),
            "from": {"name": user_name, "id": user_id},
            "message": message,
        }
        if parent_id:
            comment["parent"] = {"id": parent_id}
        result: dict[str, Any] = {"comment_id": comment_id, "comments_edge": False, "streams": 0}
        if "comments" in targets:
            video.comments = [(at, c) for at, c in video.comments if c["id"] != comment_id]
            video.comments.append((created, comment))
            video.comments.sort(key=lambda item: item[0])
            result["comments_edge"] = True
        if "stream" in targets and video.status == "live":
            for stream in video.streams:
                stream.push(self._live_event(video, comment, stream.fields))
            result["streams"] = len(video.streams)
        if "webhook" in targets:
            payload = wf.comment_delivery(
                page_id=video.page_id,
                post_id=video.post_id,
                message=message,
                user_id=user_id,
                user_name=user_name,
                comment_id=comment_id,
                parent_id=parent_id,
                created_time=int(created),
            )
            return await self._play(payload, "comment", **result)
        return web.json_response(result)

    async def post_drop_streams(self, request: web.Request) -> web.Response:
        """Cut (`how: abort`, the default) or cleanly end (`how: end`) every open stream of a live video."""
        data = await _control_body(request)
        video_id = _text(data, "video_id")
        video = self.live_videos.get(video_id)
        if video is None:
            raise _ControlError(f"unknown live video {video_id!r}")
        how = _text(data, "how", required=False) or "abort"
        if how not in ("abort", "end"):
            raise _ControlError("how must be abort or end")
        return web.json_response({"video_id": video_id, "dropped": video.end_streams(how)})

    async def unknown_control(self, request: web.Request) -> web.Response:
        return web.json_response({"error": f"no emulator endpoint {request.method} {request.path}"}, status=404)


EMULATOR = web.AppKey("graph_emulator", _Emulator)


# --- Graph parameter helpers ------------------------------------------------------------------------------


def _wanted_fields(raw: Any) -> frozenset[str] | None:
    """`created_time,from{name,id},message` → the top-level names; None when no fields are asked for."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    flat = raw
    while "{" in flat:
        reduced = re.sub(r"\{[^{}]*\}", "", flat)
        if reduced == flat:
            break
        flat = reduced
    return frozenset(f.strip() for f in flat.split(",") if f.strip())


def _select_fields(comment: dict[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    return {"id": comment["id"], **{k: v for k, v in comment.items() if k in wanted}}


def _time_param(args: dict[str, Any], name: str) -> int | None:
    """`since` / `until`: a Unix time or an ISO 8601 time (Meta also takes strtotime strings)."""
    value = args.get(name)
    if value is None or value == "":
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        raise _invalid(f"param {name} must be a Unix time or an ISO 8601 time") from None


def _cursor(comment_id: str) -> str:
    return base64.urlsafe_b64encode(comment_id.encode()).decode().rstrip("=")


def _cursor_position(ids: list[str], cursor: Any, name: str) -> int:
    try:
        text = str(cursor)
        comment_id = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        return ids.index(comment_id)
    except (ValueError, UnicodeDecodeError):
        raise _invalid(f"param {name} is not a valid cursor") from None


# --- control input helpers --------------------------------------------------------------------------------


async def _control_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise _ControlError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _ControlError("the body must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> Any:
    """A non-empty string field (JSON numbers are taken as ids); None when absent and not required."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise _ControlError(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _ControlError(f"{name} must be a string")
    return str(value)


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _ControlError(f"{name} must be a number")
    return float(value)


def _flag(data: dict[str, Any], name: str, *, default: bool) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise _ControlError(f"{name} must be true or false")
    return value


@web.middleware
async def _control_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except _ControlError as exc:
        return web.json_response({"error": str(exc)}, status=400)


# --- the application --------------------------------------------------------------------------------------


def create_emulator_app(config: EmulatorConfig) -> web.Application:
    """The emulator as an aiohttp application (state in memory, lost on restart)."""
    emulator = _Emulator(config)
    app = web.Application(middlewares=[_control_errors])
    app[EMULATOR] = emulator

    async def http_ctx(_app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=config.webhook_timeout_s)
        emulator.session = aiohttp.ClientSession(timeout=timeout)
        yield
        emulator.closing.set()
        tasks = list(emulator.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await emulator.session.close()
        emulator.session = None

    async def on_shutdown(_app: web.Application) -> None:
        # Ends held "timeout" faults and open live comment streams so shutting down does not wait for them.
        emulator.closing.set()
        for video in emulator.live_videos.values():
            video.end_streams("end")

    app.cleanup_ctx.append(http_ctx)
    app.on_shutdown.append(on_shutdown)

    e = emulator
    control: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
        ("GET", "/_emulator/calls", e.get_calls),
        ("DELETE", "/_emulator/calls", e.delete_calls),
        ("GET", "/_emulator/deliveries", e.get_deliveries),
        ("GET", "/_emulator/faults", e.get_faults),
        ("POST", "/_emulator/faults", e.post_fault),
        ("DELETE", "/_emulator/faults", e.delete_faults),
        ("POST", "/_emulator/activity", e.post_activity),
        ("POST", "/_emulator/block", e.post_block),
        ("GET", "/_emulator/clock", e.get_clock),
        ("POST", "/_emulator/clock", e.post_clock),
        ("GET", "/_emulator/comments", e.get_comments),
        ("POST", "/_emulator/comments", e.post_comment),
        ("POST", "/_emulator/posts", e.post_post),
        ("POST", "/_emulator/unsubscribe", e.post_unsubscribe),
        ("POST", "/_emulator/token", e.post_token),
        ("POST", "/_emulator/reset", e.post_reset),
        ("POST", "/_emulator/webhooks/comment", e.play_comment),
        ("POST", "/_emulator/webhooks/message", e.play_message),
        ("POST", "/_emulator/webhooks/postback", e.play_postback),
        ("POST", "/_emulator/webhooks/referral", e.play_referral),
        ("POST", "/_emulator/webhooks/raw", e.play_raw),
        ("GET", "/_emulator/live_videos", e.get_live_videos),
        ("POST", "/_emulator/live_videos", e.post_live_video),
        ("POST", "/_emulator/live_comments", e.post_live_comment),
        ("POST", "/_emulator/live_streams/drop", e.post_drop_streams),
    ]
    for method, path, handler in control:
        app.router.add_route(method, path, handler)
    app.router.add_route("*", "/_emulator/{tail:.*}", e.unknown_control)
    for method in ("GET", "POST", "DELETE"):
        app.router.add_route(method, "/{tail:.*}", e.handle_graph)
    return app


# --- in-process helper ------------------------------------------------------------------------------------


class EmulatorError(Exception):
    """A control call the emulator refused."""


class GraphEmulator:
    """Runs the emulator on a port (tests, the demo) and calls its control routes.

    async with GraphEmulator(config) as emulator:   # or: base_url = await emulator.start()
        GraphAPI(..., base_url=emulator.base_url)
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.app = create_emulator_app(config)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.base_url = ""

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
    ) -> dict[str, Any]:
        """Fail the next `count` matching Graph calls, or a `share` of them (every one when neither is given)."""
        body = {
            "kind": kind,
            "next": count,
            "share": share,
            "seed": seed,
            "path_contains": path_contains,
            "delay_s": delay_s,
            "status": status,
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

    async def expire_token(self, page_id: str, expired: bool = True) -> dict[str, Any]:
        return await self._control("POST", "token", {"page_id": page_id, "expired": expired})

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
        self, page_id: str, video_id: str | None = None, *, status: str = "live", webhook: bool = True
    ) -> dict[str, Any]:
        """Start a live video (or set its status); its `live_videos` webhook goes out unless `webhook=False`."""
        body = {"page_id": page_id, "video_id": video_id, "status": status, "webhook": webhook}
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
