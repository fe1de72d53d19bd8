"""The Graph adapter: the one module that calls Meta (Send API, private replies, comments, Page info,
webhook subscriptions, live comment streams), over a small aiohttp client of its own.

Why not python-facebook-api any more (issue 18, figures in docs/benchmarks.md, "Graph client"): it is
blocking (`requests`), so every call took a thread of a pool, it has no Send API, sleeps on rate-limit
headers unless told not to, and its live-comments class is deprecated. Here every call is a coroutine on
the running loop: one `aiohttp.ClientSession` per client (made lazily on the loop that first calls),
`access_token` and `appsecret_proof` (HMAC-SHA256 of the token keyed by the app secret) on every call,
JSON bodies where Meta takes them (the Send API) and form fields otherwise, a timeout per call, and no
retries or sleeps: the sender decides what a failure means. Meta's error envelope becomes a `GraphError`
classified by `classify_graph_error` (pure), with code, subcode, fbtrace_id and HTTP status; an answer
that is not JSON, a timeout or a refused connection is RETRY_LATER. The usage headers (`X-App-Usage`,
`X-Page-Usage`, `X-Business-Use-Case-Usage`) of every answer are parsed onto `SendResult.usage`,
`GraphError.usage` and `GraphClient.last_usage(page_id)`.

python-facebook-api keeps one job, off the server's path: the blocking `plusone page-token` command
(bot/cli/page_token.py) that turns a user token into the Pages' long-lived tokens.

Methods build on four verbs, `_call(page_id, "get_object" | "get_connection" | "post_object" |
"delete_object", object_id=..., connection=..., fields=..., data=..., **params)`, named and shaped as
python-facebook-api's were, so a new Graph call is one short method at the end of `GraphClient`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp

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
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.usage = usage  # the usage headers that came with the refusal (throttling says when it ends)
        self.http_status = http_status  # None when no answer came (timeout, connection refused)

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


_VERBS = {"get_object": "GET", "get_connection": "GET", "post_object": "POST", "delete_object": "DELETE"}
# Meta documents JSON bodies for these edges (the Send API's samples are `curl -H 'Content-Type:
# application/json'`); other POSTs go as form fields, as Meta's Graph API reference shows them.
_JSON_EDGES = frozenset({"messages", "message_templates"})
_NOT_JSON = "Graph API answered with something that is not JSON"


def appsecret_proof(app_secret: str, token: str) -> str:
    """Meta's proof that a call comes from the app's server: HMAC-SHA256 of the token, keyed by the secret."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)  # Graph reads a nested value of a form as JSON text
    return str(value)


def _error_from_answer(status: int, body: bytes, usage: GraphUsage | None) -> GraphError:
    """A refused call (HTTP status ≥ 400, or Meta's envelope) → GraphError, classified."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        if parsed is None:
            # A proxy's 502 page, an empty 503: Meta is having a bad moment (429 is still a rate limit).
            error_class = GraphErrorClass.THROTTLED if status == 429 else GraphErrorClass.RETRY_LATER
            message = f"{_NOT_JSON} (HTTP {status})"
        else:
            error_class = classify_graph_error(None, None, status)
            message = f"HTTP {status} without Meta's error envelope"
        return GraphError(error_class, message, usage=usage, http_status=status)
    code, subcode = _int_or_none(error.get("code")), _int_or_none(error.get("error_subcode"))
    trace = error.get("fbtrace_id")
    return GraphError(
        classify_graph_error(code, subcode, status),
        str(error.get("message") or f"HTTP {status}"),
        code=code,
        subcode=subcode,
        fbtrace_id=str(trace) if trace else None,
        usage=usage,
        http_status=status,
    )


def _unreachable(exc: BaseException) -> GraphError:
    if isinstance(exc, TimeoutError):
        return GraphError(GraphErrorClass.RETRY_LATER, "Graph API did not answer in time")
    return GraphError(GraphErrorClass.RETRY_LATER, f"Graph API unreachable: {type(exc).__name__}")


class LiveCommentStream:
    """One connection to `GET {stream_url}/{video_id}/live_comments` (Server-Sent Events), read on the loop.

    Each line (`data: {...}`, `: ping`, a blank line ending an event) goes to `on_line` as bytes without its
    line end. `run()` returns when the server ends the stream and raises GraphError when it is refused or
    broken; reconnecting is the caller's choice. `close()` stops it at once, from any coroutine or callback
    on the loop: a `run()` in progress then returns.
    """

    def __init__(
        self,
        client: GraphClient,
        url: str,
        params: dict[str, str],
        on_line: Callable[[bytes], None],
        *,
        video_id: str,
        comment_rate: str,
        fields: str,
        connect_timeout_s: float,
        read_timeout_s: float,
    ) -> None:
        self._client = client
        self._url = url
        self._params = params
        self._on_line = on_line
        self.video_id = video_id
        self.comment_rate = comment_rate
        self.fields = fields
        # No total: a stream lasts as long as the broadcast (Meta ends it after 4 hours); a silent one is
        # cut after `read_timeout_s` (Meta's `: ping` keeps a healthy one talking).
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s)
        self._reading: asyncio.Task[None] | None = None
        self._closed = False

    async def run(self) -> None:
        if self._closed:
            return
        self._reading = asyncio.ensure_future(self._read())
        try:
            await self._reading
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self._closed or (current is not None and current.cancelling()):
                raise  # we were cancelled, not closed: pass it on
        finally:
            self._reading = None

    async def _read(self) -> None:
        try:
            async with self._client._http().get(self._url, params=self._params, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise _error_from_answer(resp.status, await resp.read(), parse_usage_headers(resp.headers))
                async for line in resp.content:
                    self._on_line(line.rstrip(b"\r\n"))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # ValueError: a line longer than aiohttp's buffer, which no comment is.
            raise _unreachable(exc) from exc

    def close(self) -> None:
        # Cancelling the read closes its connection now, instead of after Meta's next keep-alive.
        self._closed = True
        if self._reading is not None:
            self._reading.cancel()


class GraphClient:
    """Async Graph API client for the Pages we hold tokens for (one connection pool, on the running loop)."""

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        app_secret: str | None,
        page_tokens: dict[str, str],
        timeout: float = 20.0,
        stream_url: str | None = None,
        connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.stream_url = (stream_url or base_url).rstrip("/")
        self.version = version
        self.app_secret = app_secret
        self.page_tokens = dict(page_tokens)
        self.timeout = timeout
        self.connections = connections  # per host: Graph and the streaming host each get this many
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._usage: dict[str, GraphUsage] = {}

    def has_page(self, page_id: str) -> bool:
        return page_id in self.page_tokens

    def last_usage(self, page_id: str) -> GraphUsage | None:
        """The usage headers of the Page's most recent answer (success or refusal), or None before any."""
        return self._usage.get(page_id)

    def _http(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self.close()  # a session of another loop (a test's earlier one) cannot serve this loop
            connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=self.connections, resolver=aiohttp.ThreadedResolver()
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                json_serialize=functools.partial(json.dumps, ensure_ascii=False),
            )
            self._session_loop = loop
        return self._session

    def _auth(self, page_id: str) -> dict[str, str]:
        token = self.page_tokens.get(page_id)
        if token is None:
            raise GraphError(GraphErrorClass.BAD_TOKEN, f"no access token configured for Page {page_id}")
        auth = {"access_token": token}
        if self.app_secret:
            auth["appsecret_proof"] = appsecret_proof(self.app_secret, token)
        return auth

    async def _request(
        self,
        page_id: str,
        method: str,
        *,
        object_id: str,
        connection: str | None = None,
        fields: str | None = None,
        data: dict[str, Any] | None = None,
        **params: Any,
    ) -> tuple[Any, GraphUsage | None]:
        """One Graph call → (Meta's JSON answer, its usage headers); a refusal raises GraphError."""
        verb = _VERBS.get(method)
        if verb is None:
            raise ValueError(f"unknown Graph verb {method!r}")
        query = {k: _form_value(v) for k, v in (params.pop("params", None) or {}).items()}
        query.update({k: _form_value(v) for k, v in params.items() if v is not None})
        if fields:
            query["fields"] = fields
        query.update(self._auth(page_id))  # in the query string, as Meta's Send API samples put it
        url = f"{self.base_url}{self.version}/{object_id}" + (f"/{connection}" if connection else "")
        body: dict[str, Any] = {}
        if verb == "POST" and data:
            if connection in _JSON_EDGES:
                body["json"] = data
            else:
                body["data"] = {k: _form_value(v) for k, v in data.items()}
        try:
            async with self._http().request(verb, url, params=query, **body) as resp:
                raw = await resp.read()
                usage = parse_usage_headers(resp.headers)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(exc) from exc
        if usage is not None:
            self._usage[page_id] = usage
        if status >= 400:
            raise _error_from_answer(status, raw, usage)
        try:
            answer = json.loads(raw)
        except ValueError:
            raise GraphError(
                GraphErrorClass.RETRY_LATER, f"{_NOT_JSON} (HTTP {status})", usage=usage, http_status=status
            ) from None
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            raise _error_from_answer(status, raw, usage)  # Meta's envelope with a 200: still a refusal
        return answer, usage

    async def _call(self, page_id: str, method: str, **kwargs: Any) -> Any:
        """`method` is one of python-facebook-api's verb names; returns Meta's JSON answer."""
        answer, _usage = await self._request(page_id, method, **kwargs)
        return answer

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
        data: dict[str, Any] = {"recipient": recipient, "message": message, "messaging_type": messaging_type}
        if tag:
            data["tag"] = tag
        reply, usage = await self._request(page_id, "post_object", object_id=page_id, connection="messages", data=data)
        message_id = reply.get("message_id") if isinstance(reply, dict) else None
        if not message_id:
            raise GraphError(
                GraphErrorClass.RETRY_LATER, f"Send API answered without a message_id: {reply!r}"[:300], usage=usage
            )
        return SendResult(recipient_id=reply.get("recipient_id"), message_id=str(message_id), usage=usage)

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
            "components": [component],
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
        params = {
            "comment_rate": comment_rate,
            "fields": fields,
            # Meta otherwise drops "low quality" comments, and `A+1` is short (docs/meta-platform.md §2).
            "live_filter": "no_filter",
            **self._auth(page_id),
        }
        return LiveCommentStream(
            self,
            f"{self.stream_url}/{video_id}/live_comments",
            params,
            on_line,
            video_id=video_id,
            comment_rate=comment_rate,
            fields=fields,
            connect_timeout_s=min(self.timeout, 10.0),
            read_timeout_s=read_timeout_s,
        )

    async def aclose(self) -> None:
        """Close the connection pool, waiting for its connections to be shut."""
        session, self._session, self._session_loop = self._session, None, None
        if session is not None:
            await session.close()

    def close(self) -> None:
        """Close the connection pool now; safe from sync code and from a loop that has stopped (no await)."""
        session, self._session, self._session_loop = self._session, None, None
        if session is None or session.closed:
            return
        connector = session.connector
        session.detach()  # the session now counts as closed, so it does not warn as unclosed
        if connector is not None:
            # aiohttp's `close()` is a coroutine; its synchronous core, which aiohttp's own `__del__` calls,
            # shuts every transport now, and that is all a process that is stopping (or a test whose loop
            # has ended) needs. The resolver is the threaded one, which holds nothing to close.
            connector._close()

    async def fetch_live_video(self, page_id: str, video_id: str) -> dict[str, Any]:
        """`GET /{live-video-id}?fields=...`: the video's status and the id of its post, which its feed
        comments carry and which is not `{page}_{video}` (docs/meta-platform.md, "Live video ids and statuses")."""
        fields = "id,status,post_id,permalink_url"
        reply = await self._call(page_id, "get_object", object_id=video_id, fields=fields)
        return reply if isinstance(reply, dict) else {}

    async def reply_to_instagram_comment(self, page_id: str, comment_id: str, text: str) -> str:
        """A public reply under an Instagram comment, as the shop's Instagram account: `POST /{ig-comment-id}/replies`
        with `message` (Instagram's comment replies edge; the linked Page's token). Returns the new comment's id."""
        reply = await self._call(
            page_id, "post_object", object_id=comment_id, connection="replies", data={"message": text}
        )
        return str(reply.get("id", "")) if isinstance(reply, dict) else ""

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

    async def post_comment(self, page_id: str, object_id: str, text: str) -> str:
        """`POST /{object_id}/comments` as the Page: a comment on its post or live video (a campaign's pinned
        text). Returns the new comment's id. Not idempotent on Meta's side: the caller remembers the id."""
        reply = await self._call(
            page_id, "post_object", object_id=object_id, connection="comments", data={"message": text}
        )
        return str(reply.get("id", "")) if isinstance(reply, dict) else ""
