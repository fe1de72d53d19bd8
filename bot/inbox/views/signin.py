"""Signing in and out of the inbox (its own cookie sessions; a CSRF cookie on the sign-in form, a rate
limit on failed attempts).

    GET  /inbox/login · POST /inbox/login · POST /inbox/logout
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from bot.inbox.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SignInBusy,
    authenticate,
    client_address,
    cookie_options,
    cookie_token,
    csrf_ok,
)
from bot.inbox.views.common import is_https, redirect, render, signed_in
from bot.services import INBOX_SESSION_STORE, INBOX_SIGNIN_LIMITER, READ_SESSIONS, SETTINGS
from bot.web.forms import read_form

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/inbox/login")
async def login_page(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    token = cookie_token(request, LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    nxt = request.query.get("next", "/inbox")
    response = await render(request, "login.html", status, login_csrf=token, next=_safe_next(nxt), error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **cookie_options(is_https(request)))  # type: ignore[arg-type]
    return response


def _safe_next(nxt: str) -> str:
    # Only a path of this inbox: never an open redirect to another site.
    return nxt if nxt.startswith("/inbox") and not nxt.startswith("//") else "/inbox"


@routes.post("/inbox/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await read_form(request, "the sign-in form")
    given = form.get("csrf")
    if not csrf_ok(cookie_token(request, LOGIN_CSRF_COOKIE), given if isinstance(given, str) else None):
        raise web.HTTPForbidden(text="this form has no valid CSRF token: reload the page and try again\n")
    name = str(form.get("name", "")).strip()[:80]
    password = str(form.get("password", ""))
    limiter = request.app[INBOX_SIGNIN_LIMITER]
    address = client_address(request, request.app[SETTINGS].trusted_proxies)
    # Counted before the password is hashed: a refused try costs no argon2 time.
    wait = await limiter.attempt(name, address)
    if wait > 0:
        return await login_page(request, f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds.", 429)
    try:
        user = await authenticate(request.app[READ_SESSIONS], name, password)
    except SignInBusy:
        # Not counted as a failure: the password was not checked.
        return await login_page(request, "Too many sign-ins at once. Try again in a few seconds.", 429)
    if user is None:
        return await login_page(request, "Wrong name or password.", 401)
    await limiter.succeeded(name, address)
    token = await request.app[INBOX_SESSION_STORE].create(user.id or 0, user.session_epoch)
    response = redirect(_safe_next(str(form.get("next", "/inbox"))))
    response.set_cookie(SESSION_COOKIE, token, **cookie_options(is_https(request)))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/inbox")
    log.info("inbox: %s signed in", user.name)
    return response


@routes.post("/inbox/logout")
@signed_in
async def logout(request: web.Request) -> web.StreamResponse:
    await request.app[INBOX_SESSION_STORE].delete(cookie_token(request, SESSION_COOKIE))
    response = redirect("/inbox/login")
    response.del_cookie(SESSION_COOKIE, path="/inbox")
    return response
