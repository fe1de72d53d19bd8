"""Reading a Graph request the way Meta takes it: form fields or a JSON body, the token in either or a header.

python-facebook-api sends nested values as JSON strings inside form fields; other clients send a JSON body.
Secrets (`access_token`, `appsecret_proof`) never reach the recorded calls.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import web

from bot.emulator.errors import invalid

__all__ = ["bool_param", "id_param", "maybe_json", "object_param", "read_graph_request"]

_REDACTED = "REDACTED"
_SECRET_PARAMS = ("access_token", "appsecret_proof")


def maybe_json(value: str) -> Any:
    if value[:1] in ("{", "["):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _redact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (_REDACTED if k in _SECRET_PARAMS else v) for k, v in values.items()}


async def read_graph_request(request: web.Request) -> tuple[dict[str, Any], dict[str, str], Any]:
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
                raise invalid("The request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise invalid("The request body must be a JSON object")
            args.update(body)
            params.update({k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in body.items()})
        else:
            form = await request.post()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            args.update(fields)
            params.update(fields)
            body = {k: maybe_json(v) for k, v in fields.items()}
    if "access_token" not in args:
        # Meta also takes the token as `Authorization: Bearer|OAuth <token>`.
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "oauth") and token.strip():
            args["access_token"] = token.strip()
    return args, _redact(params), _redact(body) if isinstance(body, dict) else body


def object_param(args: dict[str, Any], name: str) -> Any:
    """A nested parameter: a JSON object in a JSON body, or a JSON string in a form field."""
    value = args.get(name)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise invalid(f"param {name} must be a JSON object") from None
    if value is not None and not isinstance(value, dict):
        raise invalid(f"param {name} must be a JSON object")
    return value


def id_param(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def bool_param(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None
