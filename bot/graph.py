"""The Graph adapter: the one module that calls Meta (Send API, private replies, comments, Page info,
webhook subscriptions), through python-facebook-api.

python-facebook-api is blocking (requests), so every call runs in a thread pool of its own, never on the
event loop; its built-in `time.sleep` on rate-limit headers is switched off (we pace sends ourselves with
a shared limiter in Redis). Its base URL and version come from settings, so tests and the demo talk to
the project's Graph emulator. Errors become a `GraphError` with a small classification (pure:
`classify_graph_error`) that the outbox acts on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from pyfacebook import GraphAPI
from pyfacebook.exceptions import FacebookError, LibraryError

log = logging.getLogger(__name__)


class GraphErrorClass(StrEnum):
    RETRY_LATER = "retry_later"  # 1, 2, 4, 17, 32, 613, 5xx, timeouts: back off and try again
    OUTSIDE_WINDOW = "outside_window"  # 10/2018278 and kin: the messaging window is closed
    UNAVAILABLE = "unavailable"  # 551, 10/2018108: the shopper cannot receive messages from the Page
    BAD_TOKEN = "bad_token"  # 190: the Page token is invalid or expired; pause the Page
    PERMISSION = "permission"  # 10, 200 family: the app lacks a permission or review
    INVALID_REQUEST = "invalid_request"  # 100 and anything else: our request is wrong; do not retry

    @property
    def retryable(self) -> bool:
        return self is GraphErrorClass.RETRY_LATER


_RETRY_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613, 80006})
_OUTSIDE_WINDOW_SUBCODES = frozenset({2018278, 2018065, 2534022})
_UNAVAILABLE_SUBCODES = frozenset({2018108, 1545041})


def classify_graph_error(
    code: int | None, subcode: int | None = None, http_status: int | None = None
) -> GraphErrorClass:
    """Meta's error code (and subcode, HTTP status) → what to do about it. Pure."""
    if code is None:
        retry = http_status is None or http_status >= 500 or http_status == 429
        return GraphErrorClass.RETRY_LATER if retry else GraphErrorClass.INVALID_REQUEST
    if code in _RETRY_CODES:
        return GraphErrorClass.RETRY_LATER
    if code in {102, 190}:
        return GraphErrorClass.BAD_TOKEN
    if code == 551 or subcode in _UNAVAILABLE_SUBCODES:
        return GraphErrorClass.UNAVAILABLE
    if subcode in _OUTSIDE_WINDOW_SUBCODES:
        return GraphErrorClass.OUTSIDE_WINDOW
    if code == 10 or 200 <= code <= 299:
        return GraphErrorClass.PERMISSION
    return GraphErrorClass.INVALID_REQUEST


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
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id

    def __str__(self) -> str:
        code = f"#{self.code}" + (f"/{self.subcode}" if self.subcode else "") if self.code is not None else "no code"
        return f"{self.error_class.value} ({code}): {self.message}"


@dataclass(frozen=True)
class SendResult:
    recipient_id: str | None
    message_id: str


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
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.version = version
        self.app_secret = app_secret
        self.page_tokens = dict(page_tokens)
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="graph")
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

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
