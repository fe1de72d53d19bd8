"""The console's users page (owners): who works on the shop's Pages, inviting someone with a one-time link,
their role, Pages and language, disabling and enabling them, and a new link to set a password; and the page
where the invited (or reset) person sets their password.

    GET  /inbox/users · POST /inbox/users (invite)
    GET  /inbox/users/{id} · POST /inbox/users/{id} (role, Pages, language)
    POST /inbox/users/{id}/disable · /enable · /link (a new one-time link)
    GET  /inbox/password/{token} · POST /inbox/password/{token} (no session: the link's token is the secret)

The same functions as `plusone user` do the work (bot.inbox.auth, bot.inbox.users), so the CLI and the
console agree on names, roles and Pages. An owner sees the users of their own Pages only, and changes only
users all of whose Pages are theirs. The console never leaves a Page without an active owner. A link is
shown once, in the answer to the post that made it (never in a URL the browser keeps); only its hash is
stored. Bad input re-shows the form with what was typed and the error beside its field, changing nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox.auth import (
    PASSWORD_LINK_TTL,
    UserError,
    check_name,
    check_pages,
    check_role,
    invite_user,
    new_password_link,
    password_link,
    use_password_link,
)
from bot.inbox.roles import ROLES
from bot.inbox.tables import InboxUser
from bot.inbox.users import ConsoleUser, LastOwnerError, change_user, users_of_pages
from bot.inbox.views.common import FORM, USER, redirect, render, signed_in
from bot.replies.i18n import LOCALE_NAMES, LOCALES, gettext, pick_locale
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS, SETTINGS
from bot.web.forms import read_form
from bot.web.numbers import path_id
from carts.payments import fetch_shop_payments

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
MIN_PASSWORD = 8  # as bot.inbox.auth.new_password_hash asks


async def reader_locale(request: web.Request, own: str | None) -> str:
    """The language the page is rendered in (as `render` picks it), for the texts written here."""
    async with request.app[READ_SESSIONS]() as session:
        shop = (await fetch_shop_payments(session)).language
    return pick_locale(request.query.get("lang"), own, shop)


def _owner_only(request: web.Request) -> None:
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may manage users\n")


def _link_url(request: web.Request, token: str) -> str:
    base = request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}/inbox/password/{token}"


def _form_values(request: web.Request) -> dict[str, Any]:
    form = request[FORM]
    return {
        "name": str(form.get("name", "")).strip()[:200],
        "role": str(form.get("role", "")),
        "pages": [p for p in form.getall("page", []) if isinstance(p, str)],
        "locale": str(form.get("locale", "")),
    }


def _check_fields(locale: str, values: dict[str, Any], my_pages: frozenset[str], *, name: bool) -> dict[str, str]:
    """The fields' errors, each in the reader's language: the same checks as `plusone user`, and the Pages
    must be the owner's own."""
    errors: dict[str, str] = {}
    if name:
        try:
            values["name"] = check_name(values["name"])
        except UserError:
            errors["name"] = gettext(locale, "A name has 1 to 80 characters and no spaces.")
    try:
        check_role(values["role"])
    except UserError:
        errors["role"] = gettext(locale, "Choose Owner or Agent.")
    try:
        check_pages(values["pages"])
        if not set(values["pages"]) <= my_pages:
            raise UserError("not your Page")
    except UserError:
        errors["pages"] = gettext(locale, "Choose at least one of your Pages.")
    if values["locale"] and values["locale"] not in LOCALES:
        errors["locale"] = gettext(locale, "Choose a language from the list.")
    return errors


async def _users_page(
    request: web.Request,
    status: int = 200,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    link: dict[str, Any] | None = None,
) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        people = await users_of_pages(session, request[USER].pages)
    return await render(
        request,
        "users.html",
        status,
        people=people,
        my_pages=sorted(request[USER].pages),
        roles=ROLES,
        languages=LOCALE_NAMES,
        values=values or {"name": "", "role": "agent", "pages": sorted(request[USER].pages)[:1], "locale": ""},
        errors=errors or {},
        link=link,
    )


@routes.get("/inbox/users")
@signed_in
async def users_page(request: web.Request) -> web.Response:
    _owner_only(request)
    return await _users_page(request)


@routes.post("/inbox/users")
@signed_in
async def invite(request: web.Request) -> web.Response:
    _owner_only(request)
    me = request[USER]
    locale = await reader_locale(request, me.locale)
    values = _form_values(request)
    errors = _check_fields(locale, values, me.pages, name=True)
    if errors:
        return await _users_page(request, 400, values=values, errors=errors)
    now = utcnow()
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            user, token = await invite_user(
                session, values["name"], values["role"], values["pages"], values["locale"] or None, now
            )
    except (UserError, IntegrityError):
        # Checked above but the name: taken (or, IntegrityError, taken a moment ago by another owner's post).
        errors = {"name": gettext(locale, "There is already a user with this name.")}
        return await _users_page(request, 400, values=values, errors=errors)
    log.info("inbox: %s invited %s (%s)", me.name, user.name, user.role)
    link = {"name": user.name, "url": _link_url(request, token), "expires_at": _expiry(now), "purpose": "invite"}
    return await _users_page(request, link=link)


def _expiry(now: datetime) -> datetime:
    return now + PASSWORD_LINK_TTL


async def _manageable(request: web.Request, session: AsyncSession) -> ConsoleUser:
    """The user the URL names, when the owner may change them: another shop's user is not found; one who
    also works on a Page that is not the owner's may only be changed by that Page's owner too."""
    user_id = path_id(request)
    found = next((u for u in await users_of_pages(session, request[USER].pages) if u.id == user_id), None)
    if found is None:
        raise web.HTTPNotFound(text="no such user\n")
    return found


async def _user_page(
    request: web.Request,
    status: int = 200,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    link: dict[str, Any] | None = None,
) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        person = await _manageable(request, session)
    shown = values or {
        "role": person.role,
        "pages": list(person.pages),
        "locale": person.locale or "",
    }
    return await render(
        request,
        "users_edit.html",
        status,
        person=person,
        my_pages=sorted(request[USER].pages),
        roles=ROLES,
        languages=LOCALE_NAMES,
        values=shown,
        errors=errors or {},
        link=link,
    )


@routes.get("/inbox/users/{id}")
@signed_in
async def user_page(request: web.Request) -> web.Response:
    _owner_only(request)
    return await _user_page(request)


def _last_owner_text(locale: str, error: LastOwnerError) -> str:
    return gettext(
        locale,
        "{name} is the last active owner of Page {page}: make another user its owner first.",
        name=error.name,
        page=error.page_id,
    )


@routes.post("/inbox/users/{id}")
@signed_in
async def save_user(request: web.Request) -> web.Response:
    _owner_only(request)
    me = request[USER]
    locale = await reader_locale(request, me.locale)
    values = _form_values(request)
    async with request.app[READ_SESSIONS]() as session:
        person = await _manageable(request, session)
    if not person.manageable:
        raise web.HTTPForbidden(text="this user also works on Pages that are not yours: their owner changes them\n")
    errors = _check_fields(locale, values, me.pages, name=False)
    if errors:
        return await _user_page(request, 400, values=values, errors=errors)
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            row = await session.get(InboxUser, person.id)
            if row is not None and row.locale != (values["locale"] or None):
                row.locale = values["locale"] or None
                session.add(row)
            await change_user(session, person.name, role=values["role"], pages=values["pages"], keep_an_owner=True)
    except LastOwnerError as error:
        return await _user_page(request, 409, values=values, errors={"role": _last_owner_text(locale, error)})
    log.info("inbox: %s changed %s", me.name, person.name)
    return redirect(f"/inbox/users/{person.id}")


async def _set_active(request: web.Request, active: bool) -> web.Response:
    _owner_only(request)
    me = request[USER]
    async with request.app[READ_SESSIONS]() as session:
        person = await _manageable(request, session)
    if not person.manageable:
        raise web.HTTPForbidden(text="this user also works on Pages that are not yours: their owner changes them\n")
    try:
        async with request.app[SESSIONS]() as session, session.begin():
            await change_user(session, person.name, active=active, keep_an_owner=True)
    except LastOwnerError as error:
        locale = await reader_locale(request, me.locale)
        return await _user_page(request, 409, errors={"active": _last_owner_text(locale, error)})
    log.info("inbox: %s %s %s", me.name, "enabled" if active else "disabled", person.name)
    if person.id == me.id and not active:
        return redirect("/inbox/login")  # their own session has just ended
    return redirect(f"/inbox/users/{person.id}")


@routes.post("/inbox/users/{id}/disable")
@signed_in
async def disable_user(request: web.Request) -> web.Response:
    return await _set_active(request, False)


@routes.post("/inbox/users/{id}/enable")
@signed_in
async def enable_user(request: web.Request) -> web.Response:
    return await _set_active(request, True)


@routes.post("/inbox/users/{id}/link")
@signed_in
async def new_link(request: web.Request) -> web.Response:
    """A new one-time link to set a password (the earlier one stops working); shown once, in this answer."""
    _owner_only(request)
    async with request.app[READ_SESSIONS]() as session:
        person = await _manageable(request, session)
    if not person.manageable:
        raise web.HTTPForbidden(text="this user also works on Pages that are not yours: their owner changes them\n")
    now = utcnow()
    purpose = "invite" if person.invited else "reset"
    async with request.app[SESSIONS]() as session, session.begin():
        token = await new_password_link(session, person.id, purpose, now)
    log.info("inbox: %s made a new password link for %s", request[USER].name, person.name)
    link = {"name": person.name, "url": _link_url(request, token), "expires_at": _expiry(now), "purpose": purpose}
    return await _user_page(request, link=link)


async def _password_page(
    request: web.Request, status: int = 200, error: str | None = None, gone: bool = False
) -> web.Response:
    token = request.match_info["token"]
    async with request.app[READ_SESSIONS]() as session:
        found = await password_link(session, token, utcnow())
    if found is None:
        gone = True
    name, own = (found[1].name, found[1].locale) if found else ("", None)
    if gone and status == 200:
        status = 410
    return await render(
        request,
        "users_password.html",
        status,
        person_name=name,
        token=token,
        error=error,
        gone=gone,
        min_password=MIN_PASSWORD,
        **({"locale": await reader_locale(request, own)} if own else {}),
    )


@routes.get("/inbox/password/{token}")
async def password_page(request: web.Request) -> web.Response:
    return await _password_page(request)


@routes.post("/inbox/password/{token}")
async def set_password(request: web.Request) -> web.Response:
    form = await read_form(request, "the password form")
    password, again = str(form.get("password", "")), str(form.get("again", ""))
    token = request.match_info["token"]
    async with request.app[READ_SESSIONS]() as session:
        found = await password_link(session, token, utcnow())
    locale = await reader_locale(request, found[1].locale if found else None)
    if found is None:
        return await _password_page(request, 410, gone=True)
    if len(password) < MIN_PASSWORD:
        return await _password_page(
            request, 400, gettext(locale, "The password needs at least {n} characters.", n=MIN_PASSWORD)
        )
    if password != again:
        return await _password_page(request, 400, gettext(locale, "The two passwords differ."))
    async with request.app[SESSIONS]() as session, session.begin():
        user = await use_password_link(session, token, password, utcnow())
    if user is None:  # used or expired a moment ago
        return await _password_page(request, 410, gone=True)
    log.info("inbox: %s set their password with a one-time link", user.name)
    return redirect("/inbox/login")
