"""Meta's error envelope and the named Graph errors every surface of the emulator answers with.

`GraphError` becomes `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`; the helpers
below give each refusal the code, subcode and wording Meta uses (or the emulator's, where marked).
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

__all__ = [
    "THROTTLE_CODES",
    "GraphError",
    "abusive",
    "already_replied",
    "expired_token",
    "invalid",
    "invalid_token",
    "no_human_agent_permission",
    "outside_window",
    "page_restricted",
    "permission_denied",
    "rate_limited",
    "server_error",
    "temporary",
    "throttled",
    "unavailable",
    "unsupported",
]


class GraphError(Exception):
    """An error the emulator answers with Meta's envelope."""

    def __init__(
        self,
        code: int,
        message: str,
        subcode: int | None = None,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.status = status
        self.headers = headers or {}  # e.g. Meta's usage headers on a throttling refusal

    def envelope(self) -> dict[str, Any]:
        # Meta uses other types too (GraphMethodException for some 100s); clients classify by code, and the
        # sample envelope (graph_error_response_example.json) says OAuthException.
        error: dict[str, Any] = {"message": self.message, "type": "OAuthException", "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = "A" + secrets.token_urlsafe(8)
        return {"error": error}

    def response(self) -> web.Response:
        return web.json_response(self.envelope(), status=self.status, headers=self.headers)


def invalid_token() -> GraphError:
    # Emulator choice: Meta answers a *missing* token with code 104 ("An access token is required to request
    # this resource."); the emulator folds missing, unknown and other-Page tokens into 190 as issue 3 asks.
    return GraphError(190, "Invalid OAuth access token.")


def expired_token() -> GraphError:
    return GraphError(190, "Error validating access token: Session has expired", 463)


def outside_window() -> GraphError:
    return GraphError(10, "(#10) This message is sent outside of allowed window.", 2018278)


def no_human_agent_permission() -> GraphError:
    # Meta: HUMAN_AGENT "requires the Human Agent permission via App Review". Its refusal is a permission
    # error (code 10); the subcode is not in Meta's docs (integrations' code names 2018276 and 2018001), so
    # none is invented here: tests/data/meta/error_human_agent_permission.json.
    return GraphError(10, "(#10) Application does not have permission for this action")


def unavailable() -> GraphError:
    return GraphError(551, "This person isn't available right now.", 1545041)


def rate_limited() -> GraphError:
    return GraphError(613, "(#613) Calls to this API have exceeded the rate limit.")


def temporary() -> GraphError:
    # Emulator choice: HTTP 503 with a JSON body, so clients see a 5xx that still carries Meta's code 2.
    return GraphError(2, "Service temporarily unavailable", status=503)


def server_error() -> GraphError:
    return GraphError(2, "An unexpected error has occurred. Please retry your request later.", status=500)


def invalid(message: str, subcode: int | None = None) -> GraphError:
    # The "(#100) ..." wording of parameter errors other than those quoted in docs/meta-platform.md is the emulator's.
    return GraphError(100, f"(#100) {message}", subcode)


def unsupported(method: str, object_id: str) -> GraphError:
    return GraphError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation. Please read the Graph API documentation at "
        "https://developers.facebook.com/docs/graph-api",
        33,
    )


def already_replied() -> GraphError:
    # Meta's answer to a second private reply to one comment (docs/meta-platform.md, "Sending under
    # pressure"; sample tests/data/meta/graph_error_10900_already_replied.json).
    return GraphError(10900, "(#10900) Activity already replied to")


def page_restricted() -> GraphError:
    # 10/1893063 (Messenger changelog, 25 June 2026); the wording is the emulator's paraphrase of its title.
    return GraphError(10, "(#10) This Page is temporarily restricted from sending messages.", 1893063)


def abusive() -> GraphError:
    return GraphError(368, "The action attempted has been deemed abusive or is otherwise disallowed")


def permission_denied() -> GraphError:
    return GraphError(200, "(#200) Requires pages_messaging permission to manage the object")


# Meta's rate-limit codes and their words: application (4), user (17), Page (32), API-specific (613) and the
# business use case throttles 80000–80014 (Graph API "Rate Limiting"; 80006 is Messenger's). Wording of
# 80000–80014 other than 80001 and 80006 is the emulator's, on their pattern.
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
_THROTTLE_WORDS = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "(#613) Calls to this API have exceeded the rate limit.",
    80001: "(#80001) There have been too many calls to this Page account. Wait a bit and try again.",
    80006: "(#80006) There have been too many messenger requests to this Page. Wait a bit and try again.",
}
_RATE_LIMITING_PAGE = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting."


def throttled(code: int, headers: dict[str, str]) -> GraphError:
    """A rate-limit refusal with the usage headers Meta sends with it (they say when access returns)."""
    words = _THROTTLE_WORDS.get(code) or f"(#{code}) There have been too many calls for this business use case."
    if code >= 80000:
        words += f" For more info, please refer to {_RATE_LIMITING_PAGE}"
    return GraphError(code, words, headers=headers)
