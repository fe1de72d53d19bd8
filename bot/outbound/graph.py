"""The Graph adapter: the one module that calls Meta (Send API, private replies, comments, Page info,
webhook subscriptions), through python-facebook-api.

python-facebook-api is blocking (requests), so every call runs in a thread pool of its own, never on the
event loop; its built-in `time.sleep` on rate-limit headers is switched off (we pace sends ourselves with
a shared limiter in Redis). Its base URL and version come from settings, so tests and the demo talk to
the project's Graph emulator. Errors become a `GraphError` with a small classification (pure:
`classify_graph_error`) that the outbox acts on.

Live comment streams (`LiveCommentStream`, python-facebook-api's `ServerSentEventAPI`) hold a thread for as
long as they are open, so they get a small pool of their own and never starve the Send API's threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from pyfacebook import GraphAPI, ServerSentEventAPI
from pyfacebook.exceptions import FacebookError, LibraryError

log = logging.getLogger(__name__)


class GraphErrorClass(StrEnum):
    RETRY_LATER = "retry_later"  # 1, 2, 341, 5xx, timeouts: a passing fault; back off and try this message again
    THROTTLED = "throttled"  # 4, 17, 32, 613, 80000–80014: over a rate limit; pause the Page until access returns
    PAGE_RESTRICTED = "page_restricted"  # 10/1893063, 368: Meta stopped the Page sending; pause it, tell the owner
    ALREADY_SENT = "already_sent"  # 10900: the comment already has its private reply; the first one got there
    OUTSIDE_WINDOW = "outside_window"  # 10/2018278 and kin: the messaging window is closed
    UNAVAILABLE = "unavailable"  # 551, 10/2018108: the shopper cannot receive messages from the Page
    BAD_TOKEN = "bad_token"  # 190: the Page token is invalid or expired; pause the Page
    PERMISSION = "permission"  # 10, 200 family: the app lacks a permission or review; pause the Page, tell the owner
    INVALID_REQUEST = "invalid_request"  # 100 and anything else: our request is wrong; do not retry

    @property
    def retryable(self) -> bool:
        """Worth sending this same message again later (after a back-off, or once the Page's pause ends)."""
        return self in {GraphErrorClass.RETRY_LATER, GraphErrorClass.THROTTLED}

    @property
    def pauses_page(self) -> bool:
        """Says nothing about this one message and everything about the Page: stop all of its sending."""
        return self in {
            GraphErrorClass.THROTTLED,
            GraphErrorClass.PAGE_RESTRICTED,
            GraphErrorClass.BAD_TOKEN,
            GraphErrorClass.PERMISSION,
        }


_RETRY_CODES = frozenset({1, 2, 341})
# Meta's rate limits: application (4), user (17), Page (32), API-specific (613) and the business use case
# throttles 80000–80014 (80006 is Messenger's): see docs/meta-platform.md, "Throttling".
_THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
_ALREADY_SENT_CODES = frozenset({10900})
_PAGE_RESTRICTED_CODES = frozenset({368})
_PAGE_RESTRICTED_SUBCODES = frozenset({1893063})
_OUTSIDE_WINDOW_SUBCODES = frozenset({2018278, 2018065, 2534022})
_UNAVAILABLE_SUBCODES = frozenset({2018108, 1545041})


def classify_graph_error(
    code: int | None, subcode: int | None = None, http_status: int | None = None
) -> GraphErrorClass:
    """Meta's error code (and subcode, HTTP status) → what to do about it. Pure."""
    if code is None:
        if http_status == 429:
            return GraphErrorClass.THROTTLED
        retry = http_status is None or http_status >= 500
        return GraphErrorClass.RETRY_LATER if retry else GraphErrorClass.INVALID_REQUEST
    if code in _ALREADY_SENT_CODES:
        return GraphErrorClass.ALREADY_SENT
    if code in _THROTTLE_CODES:
        return GraphErrorClass.THROTTLED
    if code in _RETRY_CODES:
        return GraphErrorClass.RETRY_LATER
    if code in _PAGE_RESTRICTED_CODES or subcode in _PAGE_RESTRICTED_SUBCODES:
        return GraphErrorClass.PAGE_RESTRICTED
    if code in {102, 190}:
        return GraphErrorClass.BAD_TOKEN
    if code == 551 or subcode in _UNAVAILABLE_SUBCODES:
        return GraphErrorClass.UNAVAILABLE
    if subcode in _OUTSIDE_WINDOW_SUBCODES:
        return GraphErrorClass.OUTSIDE_WINDOW
    if code == 10 or 200 <= code <= 299:
        return GraphErrorClass.PERMISSION
    return GraphErrorClass.INVALID_REQUEST


@dataclass(frozen=True)
class GraphUsage:
    """How close the app, the Page and the business are to Meta's limits, from an answer's headers.

    `percent` is the highest of the percentages Meta reported (`call_count`, `total_cputime`,
    `total_time`, ...) across `X-App-Usage`, `X-Page-Usage` and every business of
    `X-Business-Use-Case-Usage`; `regain_access_s` is the longest `estimated_time_to_regain_access`
    (Meta gives minutes) or None when no header named one.
    """

    percent: float
    regain_access_s: float | None = None


def _usage_numbers(block: Any) -> tuple[float, float | None]:
    percent, regain = 0.0, None
    if not isinstance(block, dict):
        return percent, regain
    for key, value in block.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if key == "estimated_time_to_regain_access":
            regain = max(regain or 0.0, float(value) * 60.0)
        elif key != "type":
            percent = max(percent, float(value))
    return percent, regain


def parse_usage_headers(headers: Any) -> GraphUsage | None:
    """`X-App-Usage`, `X-Page-Usage`, `X-Business-Use-Case-Usage` (any case) → GraphUsage, or None. Pure.

    A header that is not the JSON Meta documents is ignored rather than failing the call it came with.
    """
    blocks: list[Any] = []
    for name in ("x-app-usage", "x-page-usage", "x-business-use-case-usage"):
        raw = None
        for key, value in (headers or {}).items():
            if str(key).lower() == name:
                raw = value
                break
        if not raw:
            continue
        try:
            parsed = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if name == "x-business-use-case-usage" and isinstance(parsed, dict):
            for entries in parsed.values():  # {business_id: [{type, call_count, ..., estimated_time_...}]}
                blocks += entries if isinstance(entries, list) else [entries]
        else:
            blocks.append(parsed)
    if not blocks:
        return None
    percent, regain = 0.0, None
    for block in blocks:
        p, r = _usage_numbers(block)
        percent = max(percent, p)
        if r is not None:
            regain = max(regain or 0.0, r)
    return GraphUsage(percent=percent, regain_access_s=regain)


class GraphError(Exception):
    """A failed Graph call, with Meta's own words kept for the merchant."""

    def __init__(
        self,
        error_class: GraphErrorClass,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        usage: GraphUsage | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.usage = usage  # the usage headers that came with the refusal (throttling says when it ends)

    def __str__(self) -> str:
        code = f"#{self.code}" + (f"/{self.subcode}" if self.subcode else "") if self.code is not None else "no code"
        return f"{self.error_class.value} ({code}): {self.message}"


@dataclass(frozen=True)
class SendResult:
    recipient_id: str | None
    message_id: str
    usage: GraphUsage | None = None  # from the answer's headers: the sender slows down as it nears 100%


@dataclass(frozen=True)
class TemplateInfo:
    """A message template of the Page as Meta lists it (`status`: Meta's word, APPROVED, PENDING...)."""

    id: str
    name: str
    language: str
    status: str
    reason: str | None = None


@dataclass(frozen=True)
class PageInfo:
    id: str
    name: str | None
    username: str | None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _to_graph_error(exc: Exception) -> GraphError:
    if isinstance(exc, FacebookError):
        code, subcode = _int_or_none(getattr(exc, "code", None)), _int_or_none(getattr(exc, "error_subcode", None))
        return GraphError(
            classify_graph_error(code, subcode),
            str(getattr(exc, "message", "Graph API error")),
            code=code,
            subcode=subcode,
            fbtrace_id=getattr(exc, "fbtrace_id", None),
        )
    if isinstance(exc, requests.Timeout):
        return GraphError(GraphErrorClass.RETRY_LATER, "Graph API did not answer in time")
    if isinstance(exc, requests.RequestException):
        return GraphError(GraphErrorClass.RETRY_LATER, f"Graph API unreachable: {type(exc).__name__}")
    if isinstance(exc, LibraryError | KeyError | ValueError):
        # A non-JSON answer (a proxy's 502 page, an empty 503): Meta is having a bad moment.
        return GraphError(GraphErrorClass.RETRY_LATER, "Graph API answered with something that is not JSON")
    raise exc


def _refusal(resp: requests.Response) -> GraphError:
    """A non-2xx answer to a streaming request → GraphError, classified like any other Graph error."""
    try:
        error = resp.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code, subcode = _int_or_none(error.get("code")), _int_or_none(error.get("error_subcode"))
    message = str(error.get("message") or f"HTTP {resp.status_code}")
    return GraphError(classify_graph_error(code, subcode, resp.status_code), message, code=code, subcode=subcode)


with warnings.catch_warnings():
    # The library warns that Meta deprecated Server-Sent Events (2023); Meta's Live Video API page still
    # offers the stream (docs/meta-platform.md §2), and we only use it as one source among three.
    warnings.simplefilter("ignore", DeprecationWarning)

    class _LiveCommentsSSE(ServerSentEventAPI):
        """The library's blocking SSE loop, with every line handed to a callback and reconnects left to us."""

        def __init__(self, on_line: Callable[[bytes], None], **kwargs: Any) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                super().__init__(**kwargs)
            self._on_line = on_line
            self._response: requests.Response | None = None
            self.session.hooks["response"].append(self._keep_response)

        def _keep_response(self, resp: requests.Response, *_args: Any, **_kwargs: Any) -> requests.Response:
            self._response = resp  # before its body is read: `abort` can then cut a read that blocks
            return resp

        def abort(self) -> None:
            """Stop now, not at the next line: shut the socket, which wakes the read blocked on it."""
            self.disconnect()
            raw = getattr(self._response, "raw", None)
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        def on_data(self, data: bytes) -> None:
            self._on_line(data)

        def on_keep_live(self) -> None:
            # Called for `: ping` and for blank lines alike; a blank line ends an SSE event, so pass one on.
            self._on_line(b"")

        def on_request_error(self, resp: requests.Response) -> None:
            # Raised rather than returned: the library would sleep and retry on its own, off our back-off.
            raise _refusal(resp)

        def on_closed(self, resp: requests.Response) -> None:
            # The server ended the stream (Meta: after 4 hours, or the broadcast ended); we decide what next.
            self.disconnect()


class LiveCommentStream:
    """One connection to `GET {stream_url}/{video_id}/live_comments`, read in a thread of the stream pool.

    `run()` returns when the server ends the stream and raises GraphError when it is refused or broken;
    reconnecting is the caller's choice. `close()` stops the reading thread at once (it may be called from
    the event loop while the thread waits for data).
    """

    def __init__(
        self,
        executor: ThreadPoolExecutor,
        api: _LiveCommentsSSE,
        video_id: str,
        comment_rate: str,
        fields: str,
    ) -> None:
        self._executor = executor
        self._api = api
        self.video_id = video_id
        self.comment_rate = comment_rate
        self.fields = fields

    async def run(self) -> None:
        def read() -> None:
            try:
                self._api.live_comments(self.video_id, comment_rate=self.comment_rate, fields=self.fields)
            except GraphError:
                raise
            except Exception as exc:
                raise _to_graph_error(exc) from exc
            finally:
                self._api.session.close()

        await asyncio.get_running_loop().run_in_executor(self._executor, read)

    def close(self) -> None:
        # Without this the thread would wait for Meta's next keep-alive (or the read timeout), and the
        # process would wait for the thread when it exits.
        self._api.abort()


class GraphClient:
    """Async facade over python-facebook-api for the Pages we hold tokens for."""

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        app_secret: str | None,
        page_tokens: dict[str, str],
        timeout: float = 20.0,
        threads: int = 16,
        stream_url: str | None = None,
        stream_threads: int = 8,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.stream_url = (stream_url or base_url).rstrip("/")
        self.version = version
        self.app_secret = app_secret
        self.page_tokens = dict(page_tokens)
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="graph")
        self._stream_executor = ThreadPoolExecutor(max_workers=stream_threads, thread_name_prefix="graph-sse")
        # requests.Session is not guaranteed thread-safe: one GraphAPI per thread and Page.
        self._local = threading.local()

    def has_page(self, page_id: str) -> bool:
        return page_id in self.page_tokens

    def _api(self, page_id: str) -> GraphAPI:
        apis: dict[str, GraphAPI] = self._local.__dict__.setdefault("apis", {})
        api = apis.get(page_id)
        if api is None:
            token = self.page_tokens.get(page_id)
            if token is None:
                raise GraphError(GraphErrorClass.BAD_TOKEN, f"no access token configured for Page {page_id}")
            api = GraphAPI(
                app_secret=self.app_secret,
                access_token=token,
                version=self.version,
                base_url=self.base_url,
                timeout=self.timeout,
                sleep_on_rate_limit=False,
                ignore_version_check=True,
            )
            apis[page_id] = api
        return api

    async def _call(self, page_id: str, method: str, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            api = self._api(page_id)
            try:
                return getattr(api, method)(*args, **kwargs)
            except GraphError:
                raise
            except Exception as exc:
                raise _to_graph_error(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def send_message(
        self,
        page_id: str,
        recipient: dict[str, str],
        message: dict[str, Any],
        *,
        messaging_type: str = "RESPONSE",
        tag: str | None = None,
    ) -> SendResult:
        """`POST /{page-id}/messages`: to a PSID (`{"id": psid}`) or a private reply (`{"comment_id": ...}`)."""
        data = {
            # python-facebook-api form-encodes `data`, so nested objects travel as JSON strings.
            "recipient": json.dumps(recipient, ensure_ascii=False),
            "message": json.dumps(message, ensure_ascii=False),
            "messaging_type": messaging_type,
        }
        if tag:
            data["tag"] = tag
        reply = await self._call(page_id, "post_object", object_id=page_id, connection="messages", data=data)
        message_id = reply.get("message_id") if isinstance(reply, dict) else None
        if not message_id:
            raise GraphError(GraphErrorClass.RETRY_LATER, f"Send API answered without a message_id: {reply!r}"[:300])
        return SendResult(recipient_id=reply.get("recipient_id"), message_id=str(message_id))

    async def send_private_reply(self, page_id: str, comment_id: str, message: dict[str, Any]) -> SendResult:
        return await self.send_message(page_id, {"comment_id": comment_id}, message)

    async def send_template(
        self, page_id: str, psid: str, name: str, language: str, params: list[str], metadata: str | None = None
    ) -> SendResult:
        """A utility message: the Page's approved template `name` in `language`, its `{{n}}` filled by `params`."""
        template = {
            "name": name,
            "language": {"code": language},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}],
        }
        message: dict[str, Any] = {"template": template}
        if metadata:
            message["metadata"] = metadata
        return await self.send_message(page_id, {"id": psid}, message, messaging_type="UTILITY")

    async def create_message_template(
        self, page_id: str, name: str, language: str, body: str, examples: list[str]
    ) -> TemplateInfo:
        """`POST /{page-id}/message_templates`: a utility template made on the Page, for Meta to review."""
        component: dict[str, Any] = {"type": "BODY", "text": body}
        if examples:
            component["example"] = {"body_text": [examples]}
        data = {
            "name": name,
            "language": language,
            "category": "UTILITY",
            "components": json.dumps([component], ensure_ascii=False),
        }
        reply = await self._call(page_id, "post_object", object_id=page_id, connection="message_templates", data=data)
        if not isinstance(reply, dict) or not reply.get("id"):
            raise GraphError(GraphErrorClass.RETRY_LATER, f"message_templates answered without an id: {reply!r}"[:300])
        return TemplateInfo(str(reply["id"]), name, language, str(reply.get("status") or "PENDING"))

    async def fetch_message_templates(self, page_id: str) -> list[TemplateInfo]:
        """`GET /{page-id}/message_templates`: the Page's templates with Meta's review of each."""
        reply = await self._call(
            page_id,
            "get_connection",
            object_id=page_id,
            connection="message_templates",
            fields="id,name,language,status,rejected_reason",
            limit=100,
        )
        templates: list[TemplateInfo] = []
        for item in reply.get("data", []) if isinstance(reply, dict) else []:
            if isinstance(item, dict) and item.get("id") and item.get("name"):
                reason = item.get("rejected_reason")
                templates.append(
                    TemplateInfo(
                        str(item["id"]),
                        str(item["name"]),
                        str(item.get("language") or ""),
                        str(item.get("status") or ""),
                        str(reason) if reason and reason != "NONE" else None,
                    )
                )
        return templates

    async def reply_to_comment(self, page_id: str, comment_id: str, text: str) -> str:
        """A public reply under the comment, as the Page. Returns the new comment's id."""
        reply = await self._call(
            page_id, "post_object", object_id=comment_id, connection="comments", data={"message": text}
        )
        return str(reply.get("id", ""))

    async def set_comment_hidden(self, page_id: str, comment_id: str, hidden: bool) -> None:
        await self._call(
            page_id, "post_object", object_id=comment_id, data={"is_hidden": "true" if hidden else "false"}
        )

    async def fetch_page_info(self, page_id: str) -> PageInfo:
        reply = await self._call(page_id, "get_object", object_id=page_id, fields="name,username")
        return PageInfo(id=str(reply.get("id", page_id)), name=reply.get("name"), username=reply.get("username"))

    async def fetch_subscribed_fields(self, page_id: str) -> list[str]:
        reply = await self._call(page_id, "get_connection", object_id=page_id, connection="subscribed_apps")
        fields: list[str] = []
        for app in reply.get("data", []) if isinstance(reply, dict) else []:
            fields += list(app.get("subscribed_fields", []))
        return fields

    async def subscribe(self, page_id: str, fields: list[str]) -> None:
        await self._call(
            page_id,
            "post_object",
            object_id=page_id,
            connection="subscribed_apps",
            data={"subscribed_fields": ",".join(fields)},
        )

    async def fetch_comments(self, page_id: str, object_id: str, **params: str | int) -> dict[str, Any]:
        """`GET /{object_id}/comments` with Meta's paging parameters; the raw page (`data`, `paging`)."""
        reply = await self._call(page_id, "get_connection", object_id=object_id, connection="comments", **params)
        return reply if isinstance(reply, dict) else {}

    def open_live_comments(
        self,
        page_id: str,
        video_id: str,
        on_line: Callable[[bytes], None],
        *,
        comment_rate: str,
        fields: str,
        read_timeout_s: float,
    ) -> LiveCommentStream:
        """A Live Comments stream whose lines are handed to `on_line` on the running event loop."""
        token = self.page_tokens.get(page_id)
        if token is None:
            raise GraphError(GraphErrorClass.BAD_TOKEN, f"no access token configured for Page {page_id}")
        loop = asyncio.get_running_loop()

        def hand_over(line: bytes) -> None:
            loop.call_soon_threadsafe(on_line, line)

        api = _LiveCommentsSSE(
            hand_over,
            access_token=token,
            base_url=self.stream_url,
            max_retries=1,
            timeout=(min(self.timeout, 10.0), read_timeout_s),  # type: ignore[arg-type]  # requests takes a pair
        )
        # Extra query parameters the library's signature lacks: the proof of our app secret (as GraphAPI adds
        # it), and `live_filter=no_filter`, since Meta otherwise drops "low quality" comments, and `A+1` is short.
        api.session.params = {"live_filter": "no_filter"}
        if self.app_secret:
            proof = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            api.session.params["appsecret_proof"] = proof
        return LiveCommentStream(self._stream_executor, api, video_id, comment_rate, fields)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._stream_executor.shutdown(wait=False, cancel_futures=True)

    async def fetch_page_subscriptions(self, page_id: str) -> dict[str, list[str]]:
        """`GET /{page-id}/subscribed_apps`: each subscribed app's id -> its fields (Meta lists every app's)."""
        reply = await self._call(page_id, "get_connection", object_id=page_id, connection="subscribed_apps")
        apps: dict[str, list[str]] = {}
        for app in reply.get("data", []) if isinstance(reply, dict) else []:
            if isinstance(app, dict) and app.get("id") is not None:
                apps[str(app["id"])] = [str(f) for f in app.get("subscribed_fields", [])]
        return apps

    async def fetch_app_subscriptions(self, app_id: str) -> list[dict[str, Any]]:
        """`GET /{app-id}/subscriptions` (needs this client to hold the app token under `app_id`): each
        object's entry as Meta gives it (`object`, `callback_url`, `active`, `fields[{name, version}]`)."""
        reply = await self._call(app_id, "get_connection", object_id=app_id, connection="subscriptions")
        data = reply.get("data", []) if isinstance(reply, dict) else []
        return [entry for entry in data if isinstance(entry, dict)]

    async def subscribe_app(
        self, app_id: str, object_type: str, callback_url: str, fields: list[str], verify_token: str
    ) -> None:
        """`POST /{app-id}/subscriptions` with the app token: Meta verifies the callback before it answers."""
        await self._call(
            app_id,
            "post_object",
            object_id=app_id,
            connection="subscriptions",
            data={
                "object": object_type,
                "callback_url": callback_url,
                "fields": ",".join(fields),
                "verify_token": verify_token,
            },
        )

    async def fetch_messenger_profile(self, page_id: str, fields: list[str]) -> dict[str, Any]:
        """`GET /me/messenger_profile?fields=...` with the Page's token: the fields that are set (Meta leaves
        out the others)."""
        reply = await self._call(
            page_id, "get_connection", object_id="me", connection="messenger_profile", fields=",".join(fields)
        )
        data = reply.get("data", []) if isinstance(reply, dict) else []
        return dict(data[0]) if data and isinstance(data[0], dict) else {}

    async def set_messenger_profile(self, page_id: str, profile: dict[str, Any]) -> None:
        """`POST /me/messenger_profile` with the Page's token: the fields given replace the Page's."""
        data = {name: json.dumps(value, ensure_ascii=False) for name, value in profile.items()}
        await self._call(page_id, "post_object", object_id="me", connection="messenger_profile", data=data)

    async def fetch_user_profile(self, page_id: str, psid: str) -> dict[str, Any]:
        """`GET /{psid}?fields=first_name,last_name,profile_pic` with the Page's token (Messenger User Profile
        API): only for a person who has written to the Page; Meta refuses others (100 / 2018218)."""
        reply = await self._call(page_id, "get_object", object_id=psid, fields="first_name,last_name,profile_pic")
        return reply if isinstance(reply, dict) else {}
