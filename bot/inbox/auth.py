"""Inbox users, sign-in, sessions and CSRF.

- Passwords are hashed with argon2id in a small pool of threads of its own (`HASHING_THREADS`), never on
  the loop, and never more at once than the pool has: a flood of sign-ins cannot starve the event loop.
- A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure when `public_url` is https);
  Redis maps a SHA-256 of it (never the token) to the user for `SESSION_TTL`, so signing out (or deleting
  the key) ends it everywhere.
- A user's sessions end together (`InboxUser.session_epoch` moves on) when their password, role or Pages
  change, when they are disabled or removed, or when signed out everywhere (`plusone user`).
- Every POST carries the session's CSRF token in a hidden `csrf` field (or `X-CSRF-Token` header);
  sign-in, before a session exists, uses a double-submit cookie. A post without it gets 403.
- An owner invites a user, or resets a password, from the console with a one-time link (`InboxPasswordLink`):
  only a SHA-256 of its token is stored, it expires after `PASSWORD_LINK_TTL`, a new one replaces the old,
  and using it sets the password and ends the user's other sessions.
- Sign-in tries are rate-limited per client address and name together (GCRA, `bot.runtime.gcra`), counted
  before the password is hashed: past the burst, a try is refused (429) without hashing, whatever the
  password; a right password clears the count. Never per name or per address alone: a stranger's wrong
  tries must not lock a user out (behind a reverse proxy every client shares one address, so the proxy's
  X-Forwarded-For is read, from `trusted_proxies` only).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import os
import re
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.inbox.roles import ROLES
from bot.inbox.tables import InboxPasswordLink, InboxUser, InboxUserPage
from bot.runtime.clock import utcnow
from bot.runtime.gcra import Gcra, Rate
from bot.runtime.redis_keys import RedisKeys
from bot.runtime.secret_compare import same_secret

SESSION_COOKIE = "plusone_inbox"
LOGIN_CSRF_COOKIE = "plusone_login_csrf"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,100}")  # secrets.token_urlsafe's alphabet
SESSION_TTL = timedelta(hours=12)
PASSWORD_LINK_TTL = timedelta(days=3)  # long enough for staff to open it after a weekend, short enough to go stale
T = TypeVar("T")
# One lane: argon2 would otherwise run a thread per lane (4), so one hash would take every core.
_hasher = PasswordHasher(parallelism=1)
# Verified against when the name is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("plusone-no-such-user")
# Leave a core to the event loop (and the worker); tries beyond these wait their turn in the queue.
HASHING_THREADS = max(1, (os.cpu_count() or 2) - 1)
_hashing = ThreadPoolExecutor(HASHING_THREADS, thread_name_prefix="plusone-argon2")
# Sign-ins allowed to wait for a hashing thread at once; past it a try is refused at once (429) instead of
# queueing: a spray of names (each its own throttle bucket) cannot push the real users' sign-ins minutes back.
HASHING_WAITING_MAX = 16
_in_pool = 0  # sign-ins hashing or waiting to (this process)


class SignInBusy(Exception):
    """Too many sign-ins are being checked at once: try again in a few seconds."""


async def _in_hashing_pool(fn: Callable[..., T], *args: Any) -> T:
    global _in_pool
    if _in_pool >= HASHING_THREADS + HASHING_WAITING_MAX:
        raise SignInBusy
    _in_pool += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_hashing, fn, *args)
    finally:
        _in_pool -= 1


class UserError(ValueError):
    """A user that cannot be created as asked (the CLI prints it and exits non-zero)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class User:
    """The signed-in user, as the request handlers see them."""

    id: int
    name: str
    role: str
    pages: frozenset[str]
    csrf: str
    locale: str | None = None  # their own choice of language; None: the shop's

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 80 or any(c.isspace() for c in name):
        raise UserError("NAME must be 1 to 80 characters without spaces")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"--role must be one of {', '.join(ROLES)}")
    return role


def check_pages(pages: list[str]) -> list[str]:
    # ASCII digits only: str.isdigit() also takes "³".
    if not pages or any(not (p.isascii() and p.isdigit()) for p in pages):
        raise UserError("--page must be given at least once, each a numeric Page id")
    return list(dict.fromkeys(pages))


async def new_password_hash(password: str) -> str:
    if len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    return await _in_hashing_pool(hash_password, password)


async def add_user(session: AsyncSession, name: str, password: str, role: str, pages: list[str]) -> InboxUser:
    """Create a user (or replace their password, role and Pages, which ends their sessions); in the
    caller's transaction."""
    name, role, pages = check_name(name), check_role(role), check_pages(pages)
    password_hash = await new_password_hash(password)
    user = (await session.execute(select(InboxUser).where(InboxUser.name == name))).scalar_one_or_none()
    if user is None:
        user = InboxUser(name=name, password_hash=password_hash, role=role, created_at=utcnow())
    else:
        user.password_hash, user.role, user.active = password_hash, role, True
        user.session_epoch += 1  # a new password: sessions opened with the old one end
    session.add(user)
    await session.flush()
    await set_user_pages(session, user.id or 0, pages)
    return user


async def set_user_pages(session: AsyncSession, user_id: int, pages: list[str]) -> bool:
    """Give the user exactly these Pages; whether that changed anything."""
    rows = list((await session.execute(select(InboxUserPage).where(InboxUserPage.user_id == user_id))).scalars())
    keep = set(pages)
    gone = [row for row in rows if row.page_id not in keep]
    new = [p for p in pages if p not in {row.page_id for row in rows}]
    for row in gone:
        await session.delete(row)
    # Deletes first: the unit of work would otherwise insert a kept Page's row before deleting it.
    await session.flush()
    for page_id in new:
        session.add(InboxUserPage(user_id=user_id, page_id=page_id))
    await session.flush()
    return bool(gone or new)


async def invite_user(
    session: AsyncSession, name: str, role: str, pages: list[str], locale: str | None, now: datetime
) -> tuple[InboxUser, str]:
    """Create a user who has no password yet, and their one-time link's token (shown once, never stored)."""
    name, role, pages = check_name(name), check_role(role), check_pages(pages)
    if (await session.execute(select(InboxUser.id).where(InboxUser.name == name))).first() is not None:
        raise UserError(f"there is already a user {name}")
    # A password nobody knows: until the link is used, no password signs them in.
    password_hash = await new_password_hash(secrets.token_urlsafe(32))
    user = InboxUser(name=name, password_hash=password_hash, role=role, created_at=now, locale=locale)
    session.add(user)
    await session.flush()
    await set_user_pages(session, user.id or 0, pages)
    return user, await new_password_link(session, user.id or 0, "invite", now)


def _link_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def new_password_link(session: AsyncSession, user_id: int, purpose: str, now: datetime) -> str:
    """A new one-time link for the user (replacing any earlier one); its token, to show once."""
    token = secrets.token_urlsafe(32)
    link = await session.get(InboxPasswordLink, user_id) or InboxPasswordLink(user_id=user_id)
    link.token_hash, link.purpose = _link_hash(token), purpose
    link.created_at, link.expires_at = now, now + PASSWORD_LINK_TTL
    session.add(link)
    await session.flush()
    return token


async def password_link(session: AsyncSession, token: str, now: datetime) -> tuple[InboxPasswordLink, InboxUser] | None:
    """The link of `token` and its user, while it is unused, unexpired and the user active; else None."""
    if not is_token(token):
        return None
    link = (
        await session.execute(select(InboxPasswordLink).where(InboxPasswordLink.token_hash == _link_hash(token)))
    ).scalar_one_or_none()
    if link is None or _aware(link.expires_at) <= now:
        return None
    user = await session.get(InboxUser, link.user_id)
    if user is None or not user.active:
        return None
    return link, user


async def use_password_link(session: AsyncSession, token: str, password: str, now: datetime) -> InboxUser | None:
    """Set the password of the link's user and spend the link (their other sessions end); None when the
    link is no longer good. Raises UserError for a password too short."""
    found = await password_link(session, token, now)
    if found is None:
        return None
    link, user = found
    user.password_hash = await new_password_hash(password)
    user.session_epoch += 1
    session.add(user)
    await session.delete(link)
    await session.flush()
    return user


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def authenticate(sessions: async_sessionmaker[AsyncSession], name: str, password: str) -> InboxUser | None:
    """The active user `name` if `password` is theirs. The user is read first and the session closed before
    hashing: a sign-in waiting for a hashing thread must hold no database transaction (SQLite's writers
    would queue behind it)."""
    async with sessions() as session:
        user = (
            await session.execute(select(InboxUser).where(InboxUser.name == name, InboxUser.active.is_(True)))
        ).scalar_one_or_none()
    ok = await _in_hashing_pool(check_password, user.password_hash if user else _DUMMY_HASH, password)
    return user if ok and user is not None else None


async def user_pages(session: AsyncSession, user_id: int) -> frozenset[str]:
    rows = await session.execute(select(InboxUserPage.page_id).where(InboxUserPage.user_id == user_id))
    return frozenset(rows.scalars())


class SessionStore:
    """Sessions in Redis: token -> {user id, CSRF token}, expiring after `SESSION_TTL` of no use."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, token: str) -> str:
        # Redis (and its append-only file on disk) keeps only a hash: a copy of its data opens no session.
        # SHA-256 is enough here: the token is 256 random bits, nothing to guess or stretch.
        return RedisKeys(self.prefix).inbox_session(hashlib.sha256(token.encode()).hexdigest())

    async def create(self, user_id: int, epoch: int = 0) -> str:
        """A new session of the user at their `session_epoch`: once that moves on, the session is over."""
        token = secrets.token_urlsafe(32)
        value = json.dumps({"user_id": user_id, "csrf": secrets.token_urlsafe(32), "epoch": epoch})
        await self.redis.set(self._key(token), value, px=int(SESSION_TTL.total_seconds() * 1000))
        return token

    async def load(self, token: str) -> tuple[int, str, int] | None:
        """User id, CSRF token and the user's session epoch at sign-in; None when there is no such session."""
        if not is_token(token):
            return None
        raw = await self.redis.get(self._key(token))
        if raw is None:
            return None
        await self.redis.pexpire(self._key(token), int(SESSION_TTL.total_seconds() * 1000))
        data = json.loads(raw)
        return int(data["user_id"]), str(data["csrf"]), int(data.get("epoch", 0))

    async def delete(self, token: str) -> None:
        if is_token(token):
            await self.redis.delete(self._key(token))


@dataclass(frozen=True)
class SignInLimits:
    per_minute: float = 5.0  # tries of one name from one address
    burst: int = 5


class SignInLimiter:
    """Counts sign-in tries per client address and name (GCRA in Redis), before the password is hashed."""

    def __init__(self, redis: Redis, prefix: str, limits: SignInLimits = SignInLimits()) -> None:
        self.redis = redis
        self.prefix = prefix
        self._limit = Gcra(redis, Rate(limits.per_minute / 60, limits.burst))
        # The time of a try in µs; None: Redis's own clock, shared by every process. A test holds it still,
        # so that slow password hashing on a busy machine never lets a try earn back its place.
        self.clock: Callable[[], int] | None = None

    def _key(self, name: str, address: str) -> str:
        return RedisKeys(self.prefix).signin(name.casefold()[:80], address)

    async def attempt(self, name: str, address: str) -> float:
        """Count a try: 0 when it may go on to the password, else the seconds until one may."""
        now_us = self.clock() if self.clock is not None else 0
        wait_us = await self._limit.take([self._key(name, address)], now_us=now_us)
        return wait_us / 1_000_000

    async def succeeded(self, name: str, address: str) -> None:
        """The right password: its earlier tries from this address no longer count."""
        await self.redis.delete(self._key(name, address))


def is_token(value: str | None) -> bool:
    """Whether `value` could be one of the tokens we hand out (`secrets.token_urlsafe`): a cookie or header
    that is not (bytes aiohttp could not decode, anything at all) is no token, and is never echoed back."""
    return value is not None and _TOKEN.fullmatch(value) is not None


def cookie_token(request: web.Request, name: str) -> str:
    """The token in cookie `name`, or "" when the cookie holds anything else."""
    value = request.cookies.get(name)
    return value if is_token(value) else ""


def csrf_ok(expected: str, given: str | None) -> bool:
    return same_secret(given, expected)


def cookie_options(secure: bool) -> dict[str, object]:
    return {"httponly": True, "samesite": "Lax", "secure": secure, "path": "/inbox"}


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: web.Request, trusted_proxies: Sequence[str] = ()) -> str:
    """The client's address: the peer's, or behind trusted proxies the nearest X-Forwarded-For hop that
    is not one of them (anyone can write the header, so only hops our own proxies added are believed)."""
    peer = request.remote or "unknown"
    networks = [ipaddress.ip_network(n) for n in trusted_proxies]
    if not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    address = peer
    for hop in reversed(hops):
        if not _is_address(hop):
            break  # not written by a proxy of ours: nothing further left is believed
        address = hop
        if not _trusted(hop, networks):
            break
    return str(ipaddress.ip_address(address)) if _is_address(address) else address


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(address: str, networks: list[Network]) -> bool:
    return _is_address(address) and any(ipaddress.ip_address(address) in n for n in networks)
