"""Tokens as Meta hands them out and checks them: long-lived user tokens, the Pages' tokens, appsecret_proof.

- `GET /oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&fb_exchange_token`: a
  user's short-lived token becomes a long-lived one (`{"access_token", "token_type": "bearer",
  "expires_in"}`, about 60 days);
- `GET /{user-id|me}/accounts` with a user token: the Pages the user manages, each with its Page access token
  (from a long-lived user token, one that does not expire), `category`, `category_list`, `name`, `id` and
  the `tasks` the user may do on it;
- `GET /{user-id|me}` with a user token: the user's `id` and `name`.

Users are `EmulatorConfig.users`; a Page's token is the one the emulator already knows it by, so what
`plusone page-token` prints is what the other surfaces accept. Samples: tests/data/meta/oauth_*.json,
user_accounts_response.json. A wrong `appsecret_proof` is answered as Meta does: HTTP 400, code 100,
no subcode, type `GraphMethodException`, "Invalid appsecret_proof provided in the API argument"
(tests/data/meta/graph_error_invalid_appsecret_proof.json).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from bot.emulator.errors import GraphError, invalid, invalid_token

if TYPE_CHECKING:  # state.py imports this module's refusal of a wrong proof
    from bot.emulator.state import EmulatorState

__all__ = ["Tokens", "invalid_appsecret_proof"]

LONG_LIVED_S = 5183944  # Meta's sample answer: about 60 days
TASKS = ("ANALYZE", "ADVERTISE", "MESSAGING", "MODERATE", "CREATE_CONTENT", "MANAGE")


class _MethodError(GraphError):
    """A refusal whose envelope says `GraphMethodException` rather than `OAuthException`."""

    def envelope(self) -> dict[str, Any]:
        envelope = super().envelope()
        envelope["error"]["type"] = "GraphMethodException"
        return envelope


def invalid_appsecret_proof() -> GraphError:
    return _MethodError(100, "Invalid appsecret_proof provided in the API argument")


class Tokens:
    """The user-token side of Graph: exchanging tokens, listing a user's Pages."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._long: dict[str, str] = {}  # long-lived user token → user id

    def user_of(self, token: Any) -> str | None:
        if not isinstance(token, str):
            return None
        for user_id, user in self.state.config.users.items():
            if user.token == token:
                return user_id
        return self._long.get(token)

    def handles(self, method: str, parts: list[str], args: dict[str, Any]) -> bool:
        if parts == ["oauth", "access_token"]:
            return True
        return method == "GET" and 1 <= len(parts) <= 2 and self.user_of(args.get("access_token")) is not None

    def answer(self, parts: list[str], args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        if parts == ["oauth", "access_token"]:
            return self._exchange(args)
        user_id = self._authenticate(args)
        ref = parts[0]
        if ref not in ("me", user_id):
            raise invalid(f"Unsupported get request. Object with ID '{ref}' cannot be read with this user's token")
        user = self.state.config.users[user_id]
        if len(parts) == 1:
            return {"id": user_id, "name": user.name}
        if parts[1] != "accounts":
            raise invalid(f"Unknown path components: /{parts[1]}")
        pages = []
        for page_id in user.pages:
            page = self.state.config.pages.get(page_id)
            if page is not None:
                pages.append(
                    {
                        "access_token": page.token,
                        "category": "Shopping & retail",
                        "category_list": [{"id": "200600219953504", "name": "Shopping & retail"}],
                        "name": page.name,
                        "id": page_id,
                        "tasks": list(TASKS),
                    }
                )
        call["page_id"] = None
        cursor = "QVFIUj" + hashlib.sha256(user_id.encode()).hexdigest()[:16]
        return {"data": pages, "paging": {"cursors": {"before": cursor, "after": cursor}}}

    def _exchange(self, args: dict[str, Any]) -> dict[str, Any]:
        config = self.state.config
        if args.get("grant_type") != "fb_exchange_token":
            raise invalid("param grant_type must be fb_exchange_token")
        secret = args.get("client_secret")
        if args.get("client_id") != config.app_id or not isinstance(secret, str) or not config.app_secret:
            raise GraphError(101, "Error validating application. Invalid application ID.")
        if not hmac.compare_digest(secret.encode(), config.app_secret.encode()):
            raise GraphError(1, "Error validating client secret.")
        user_id = self.user_of(args.get("fb_exchange_token"))
        if user_id is None:
            raise invalid_token()
        long_token = "EAAL" + hashlib.sha256(f"{user_id}:{config.app_secret}".encode()).hexdigest()[:40]
        self._long[long_token] = user_id
        return {"access_token": long_token, "token_type": "bearer", "expires_in": LONG_LIVED_S}

    def _authenticate(self, args: dict[str, Any]) -> str:
        token = args.get("access_token")
        user_id = self.user_of(token)
        if user_id is None or not isinstance(token, str):
            raise invalid_token()
        proof = args.get("appsecret_proof")
        secret = self.state.config.app_secret
        if proof and secret and self.state.config.verify_appsecret_proof:
            expected = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if not isinstance(proof, str) or not hmac.compare_digest(expected, proof.lower()):
                raise invalid_appsecret_proof()
        return user_id
