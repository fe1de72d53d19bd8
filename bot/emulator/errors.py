"""Meta's error envelope and the named Graph errors every surface of the emulator answers with.

`GraphError` becomes `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`; the helpers
below give each refusal the code, subcode and wording Meta uses (or the emulator's, where marked).
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

__all__ = [
    "GraphError",
    "expired_token",
    "invalid",
    "invalid_token",
    "no_human_agent_permission",
    "outside_window",
    "rate_limited",
    "server_error",
    "temporary",
    "unavailable",
    "unsupported",
]


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
