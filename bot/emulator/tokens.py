"""Tokens as Meta checks them: the refusal of a wrong `appsecret_proof`.

Meta answers a proof that does not match the token and the app secret with HTTP 400, code 100, no subcode,
type `GraphMethodException` and the message "Invalid appsecret_proof provided in the API argument" (the
envelope as real integrations quote it: tests/data/meta/graph_error_invalid_appsecret_proof.json).
"""

from __future__ import annotations

from typing import Any

from bot.emulator.errors import GraphError

__all__ = ["invalid_appsecret_proof"]


class _MethodError(GraphError):
    """A refusal whose envelope says `GraphMethodException` rather than `OAuthException`."""

    def envelope(self) -> dict[str, Any]:
        envelope = super().envelope()
        envelope["error"]["type"] = "GraphMethodException"
        return envelope


def invalid_appsecret_proof() -> GraphError:
    return _MethodError(100, "Invalid appsecret_proof provided in the API argument")
