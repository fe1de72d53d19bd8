"""The admin token's middleware (bot/web/admin_auth.py), on the app as `create_app` builds it: every route
under /api/ refuses a request without the right token unless it is declared open, and every route outside
/api/ is one of the known public or otherwise-authenticated ones."""

from __future__ import annotations

import re

import pytest
from aiohttp.web_urldispatcher import AbstractRoute

from bot.web.admin_auth import ADMIN_PREFIX, is_open_api
from tests.test_bot.stack import Stack

# /api/ routes that take no admin token, and how they know their caller instead.
OPEN_API_ROUTES = {("POST", "/api/payments")}  # the payment provider's X-PlusOne-Signature
# Everything outside /api/: Meta (signed webhook), Stripe (its Stripe-Signature), probes without secrets,
# shoppers (a token in the URL: the checkout, e-mail links), merchants in the inbox (its own cookie sessions and CSRF).
# `/u/` and `/o/`: an e-mail's unsubscribe page and open pixel; `/s/`: a journey e-mail's survey page (signed tokens).
OTHER_ROUTE_PREFIXES = (
    "/webhook",
    "/stripe/webhook",
    "/healthz",
    "/metrics",
    "/checkout/",
    "/inbox",
    "/u/",
    "/o/",
    "/s/",
)


def api_routes(stack: Stack) -> list[AbstractRoute]:
    return [
        route
        for route in stack.client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith(ADMIN_PREFIX)
    ]


def concrete_path(route: AbstractRoute) -> str:
    assert route.resource is not None
    return re.sub(r"\{[^}]+\}", "1", route.resource.canonical)


async def test_every_api_route_is_declared_open_or_refuses_without_the_admin_token(stack: Stack) -> None:
    routes = api_routes(stack)
    assert len(routes) > 40  # the walk sees the whole admin API, not an empty router
    declared_open = set()
    for route in routes:
        assert route.resource is not None
        if is_open_api(route.handler):
            declared_open.add((route.method, route.resource.canonical))
            continue
        path = concrete_path(route)
        for headers, error in [
            ({}, "admin API: send Authorization: Bearer <admin token>"),
            ({"Authorization": "Basic dGVzdA=="}, "admin API: send Authorization: Bearer <admin token>"),
            ({"Authorization": "Bearer nope"}, "admin API: wrong admin token"),
        ]:
            response = await stack.client.request(route.method, path, headers=headers)
            assert response.status == 401, f"{route.method} {path} answered {response.status} without the token"
            if route.method != "HEAD":  # a HEAD answer has no body
                assert await response.json() == {"error": error}, f"{route.method} {path}"
    assert declared_open == OPEN_API_ROUTES


async def test_every_other_route_is_a_known_public_or_self_checking_one(stack: Stack) -> None:
    others = [
        route.resource.canonical
        for route in stack.client.app.router.routes()
        if route.resource is not None and not route.resource.canonical.startswith(ADMIN_PREFIX)
    ]
    # `/` is the public start page (bot/inbox/views/landing.py): it shows what the server is, nothing of a shop.
    assert others and all(path == "/" or path.startswith(OTHER_ROUTE_PREFIXES) for path in others), others


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/no-such-thing"), ("DELETE", "/api/orders")])
async def test_what_no_route_matches_gets_404_or_405_with_or_without_the_token(
    stack: Stack, method: str, path: str
) -> None:
    response = await stack.client.request(method, path)
    assert response.status in (404, 405)


async def test_the_open_payment_route_is_not_refused_for_want_of_the_admin_token(stack: Stack) -> None:
    response = await stack.client.post("/api/payments", data=b"{}")
    assert (await response.json())["error"] != "admin API: send Authorization: Bearer <admin token>"
