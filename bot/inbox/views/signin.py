"""Signing in and out of the inbox (its own cookie sessions; a CSRF cookie on the sign-in form, a rate
limit on failed attempts), and the reader's language.

    GET  /inbox/login[?lang=] · POST /inbox/login · POST /inbox/logout · POST /inbox/language

The sign-in page is in the language of `?lang=` (both offered before signing in), else the shop's; a
language chosen there is kept as the user's own once they sign in.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web
from yarl import URL

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
from bot.inbox.tables import InboxUser
from bot.inbox.views.common import USER, form_field, is_https, redirect, render, signed_in
from bot.inbox.views.landing import SIGNED_IN_HINT
from bot.replies.i18n import LOCALES, gettext, pick_locale
from bot.services import INBOX_SESSION_STORE, INBOX_SIGNIN_LIMITER, READ_SESSIONS, SESSIONS, SETTINGS
from bot.web.error_pages import reader_locale
from bot.web.forms import read_form

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/inbox/login")
async def login_page(
    request: web.Request, error: str | None = None, status: int = 200, name: str = "", nxt: str | None = None
) -> web.Response:
    token = cookie_token(request, LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    nxt = nxt if nxt is not None else request.query.get("next", "/inbox")
    # Before signing in the user is unknown: ?lang=, else the browser's languages, else the shop's.
    locale = await reader_locale(request)
    response = await render(
        request,
        "login.html",
        status,
        login_csrf=token,
        next=_safe_next(nxt),
        error=error,
        typed_name=name,
        locale=locale,
        # Only a language the reader asked for (?lang=, the link on the page) is saved at sign-in: one
        # guessed from the browser must not overwrite the language a user chose before.
        chosen_lang=request.query.get("lang") or "",
    )
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
    nxt = str(form.get("next", "/inbox"))
    # The language the page was read in (the form's action carries ?lang=, so errors stay in it).
    chosen = str(form.get("lang", "")) or request.query.get("lang")
    locale = pick_locale(chosen) if chosen else await reader_locale(request)
    limiter = request.app[INBOX_SIGNIN_LIMITER]
    address = client_address(request, request.app[SETTINGS].trusted_proxies)
    # Counted before the password is hashed: a refused try costs no argon2 time.
    wait = await limiter.attempt(name, address)
    if wait > 0:
        text = gettext(locale, "Too many failed sign-ins. Try again in {seconds} seconds.", seconds=int(wait) + 1)
        return await login_page(request, text, 429, name, nxt)
    try:
        user = await authenticate(request.app[READ_SESSIONS], name, password)
    except SignInBusy:
        # Not counted as a failure: the password was not checked.
        text = gettext(locale, "Too many sign-ins at once. Try again in a few seconds.")
        return await login_page(request, text, 429, name, nxt)
    if user is None:
        return await login_page(request, gettext(locale, "Wrong name or password."), 401, name, nxt)
    if chosen in LOCALES and user.locale != chosen:
        # A language picked before signing in is the user's choice: keep it for their next visits.
        async with request.app[SESSIONS]() as session, session.begin():
            row = await session.get(InboxUser, user.id)
            if row is not None:
                row.locale = chosen
                session.add(row)
    await limiter.succeeded(name, address)
    token = await request.app[INBOX_SESSION_STORE].create(user.id or 0, user.session_epoch)
    response = redirect(_safe_next(nxt))
    response.set_cookie(SESSION_COOKIE, token, **cookie_options(is_https(request)))  # type: ignore[arg-type]
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/inbox")
    # Only a hint for `/` (no authority): the session itself stays on /inbox.
    response.set_cookie(SIGNED_IN_HINT, "1", **{**cookie_options(is_https(request)), "path": "/"})  # type: ignore[arg-type]
    log.info("inbox: %s signed in", user.name)
    return response


@routes.post("/inbox/logout")
@signed_in
async def logout(request: web.Request) -> web.StreamResponse:
    await request.app[INBOX_SESSION_STORE].delete(cookie_token(request, SESSION_COOKIE))
    response = redirect("/inbox/login")
    response.del_cookie(SESSION_COOKIE, path="/inbox")
    response.del_cookie(SIGNED_IN_HINT, path="/")
    return response


@routes.post("/inbox/language")
@signed_in
async def set_language(request: web.Request) -> web.StreamResponse:
    """The reader's own language for every page (`inbox_user.locale`), then back to the page they were on."""
    locale = form_field(request, "locale")
    if locale not in LOCALES:
        raise web.HTTPBadRequest(text=f"locale: one of {', '.join(LOCALES)}\n")
    async with request.app[SESSIONS]() as session, session.begin():
        row = await session.get(InboxUser, request[USER].id)
        if row is None:  # removed since the check a moment ago
            raise web.HTTPSeeOther("/inbox/login")
        row.locale = locale
        session.add(row)
    log.info("inbox: %s reads the inbox in %s", request[USER].name, locale)
    back = URL(_safe_next(form_field(request, "next", "/inbox")))
    # Without the page's own ?lang=, which would outvote the choice just saved.
    return redirect(str(back.with_query({k: v for k, v in back.query.items() if k != "lang"})))
