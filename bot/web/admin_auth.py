"""The admin bearer token, checked in one place: a middleware in front of every route under `/api/`.

Those routes need `Authorization: Bearer <admin token>` (compared in constant time); a request without it
gets 401 with `{"error": ...}` before its handler runs, so no handler checks it again. The exceptions are
declared where they are defined, with `@open_api`: routes that authenticate their caller another way
(`POST /api/payments` checks the payment provider's signature). Nothing outside `/api/` is the admin's:
the webhook checks Meta's signature, the checkout the token in its URL, the inbox its own cookie sessions,
and `/healthz` and `/metrics` hold no secrets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from bot.runtime.secret_compare import same_secret
from bot.services import SETTINGS
from bot.web.json_api import fail

ADMIN_PREFIX = "/api/"
_OPEN = "_plusone_open_api"  # the attribute `open_api` sets on a handler

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Any])


def open_api(handler: H) -> H:
    """Mark an `/api/` handler that takes no admin token: it must check its caller itself."""
    setattr(handler, _OPEN, True)
    return handler


def is_open_api(handler: object) -> bool:
    return getattr(handler, _OPEN, False) is True


def needs_admin(request: web.Request) -> bool:
    """Whether the route this request matched is an admin route. Unmatched requests are not: they get
    aiohttp's 404 or 405, with or without a token, as before the token was checked here."""
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return False
    return info.route.resource.canonical.startswith(ADMIN_PREFIX) and not is_open_api(info.handler)


@web.middleware
async def require_admin(request: web.Request, handler: Handler) -> web.StreamResponse:
    if needs_admin(request):
        token = request.app[SETTINGS].admin_token
        given = request.headers.get("Authorization", "")
        if token is None or not given.startswith("Bearer "):
            fail(web.HTTPUnauthorized, "admin API: send Authorization: Bearer <admin token>")
        if not same_secret(given[len("Bearer ") :], token.get_secret_value()):
            fail(web.HTTPUnauthorized, "admin API: wrong admin token")
    return await handler(request)
