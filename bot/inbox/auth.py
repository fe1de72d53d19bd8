"""Inbox users, sign-in, sessions and CSRF.

- Passwords are hashed with argon2id (argon2-cffi's defaults); hashing runs in a thread, off the loop.
- A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure when `public_url` is https);
  Redis maps a SHA-256 of it (never the token) to the user for `SESSION_TTL`, so signing out (or deleting
  the key) ends it everywhere.
- Every POST carries the session's CSRF token in a hidden `csrf` field (or `X-CSRF-Token` header);
  sign-in, before a session exists, uses a double-submit cookie. A post without it gets 403.
- Failed sign-ins are rate-limited per name and per address with the GCRA script of `bot.outbound.rate_limit`:
  past the burst, sign-in is refused (429) until the limit allows it again, whatever the password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.inbox.roles import ROLES
from bot.inbox.tables import InboxUser, InboxUserPage
from bot.runtime.clock import utcnow
from bot.runtime.gcra import GcraPair, Rate
from bot.runtime.redis_keys import RedisKeys

SESSION_COOKIE = "plusone_inbox"
LOGIN_CSRF_COOKIE = "plusone_login_csrf"
SESSION_TTL = timedelta(hours=12)
_hasher = PasswordHasher()
# Verified against when the name is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("plusone-no-such-user")


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

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


async def add_user(session: AsyncSession, name: str, password: str, role: str, pages: list[str]) -> InboxUser:
    """Create a user (or replace their password, role and Pages); in the caller's transaction."""
    name = name.strip()
    if not name or len(name) > 80 or any(c.isspace() for c in name):
        raise UserError("NAME must be 1 to 80 characters without spaces")
    if role not in ROLES:
        raise UserError(f"--role must be one of {', '.join(ROLES)}")
    if not pages or any(not p.isdigit() for p in pages):
        raise UserError("--page must be given at least once, each a numeric Page id")
    if len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    password_hash = await asyncio.to_thread(hash_password, password)
    user = (await session.execute(select(InboxUser).where(InboxUser.name == name))).scalar_one_or_none()
    if user is None:
        user = InboxUser(name=name, password_hash=password_hash, role=role, created_at=utcnow())
    else:
        user.password_hash, user.role, user.active = password_hash, role, True
    session.add(user)
    await session.flush()
    existing = (await session.execute(select(InboxUserPage).where(InboxUserPage.user_id == user.id))).scalars()
    for row in existing:
        await session.delete(row)
    for page_id in dict.fromkeys(pages):
        session.add(InboxUserPage(user_id=user.id, page_id=page_id))  # type: ignore[arg-type]
    await session.flush()
    return user


async def authenticate(session: AsyncSession, name: str, password: str) -> InboxUser | None:
    user = (
        await session.execute(select(InboxUser).where(InboxUser.name == name, InboxUser.active.is_(True)))
    ).scalar_one_or_none()
    ok = await asyncio.to_thread(check_password, user.password_hash if user else _DUMMY_HASH, password)
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

    async def create(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        value = json.dumps({"user_id": user_id, "csrf": secrets.token_urlsafe(32)})
        await self.redis.set(self._key(token), value, px=int(SESSION_TTL.total_seconds() * 1000))
        return token

    async def load(self, token: str) -> tuple[int, str] | None:
        if not token or len(token) > 100:
            return None
        raw = await self.redis.get(self._key(token))
        if raw is None:
            return None
        await self.redis.pexpire(self._key(token), int(SESSION_TTL.total_seconds() * 1000))
        data = json.loads(raw)
        return int(data["user_id"]), str(data["csrf"])

    async def delete(self, token: str) -> None:
        await self.redis.delete(self._key(token))


@dataclass(frozen=True)
class SignInLimits:
    per_name_per_minute: float = 5.0
    name_burst: int = 5
    per_address_per_minute: float = 20.0
    address_burst: int = 20


class SignInLimiter:
    """Counts failed sign-ins per name and per address (GCRA in Redis); blocks both once either runs out."""

    def __init__(self, redis: Redis, prefix: str, limits: SignInLimits = SignInLimits()) -> None:
        self.redis = redis
        self.prefix = prefix
        self._limits = GcraPair(
            redis,
            Rate(limits.per_name_per_minute / 60, limits.name_burst),
            Rate(limits.per_address_per_minute / 60, limits.address_burst),
        )

    def _keys(self, name: str, address: str) -> tuple[list[str], list[str]]:
        keys = RedisKeys(self.prefix).signin(name.casefold()[:80], address)  # one slot: one script on a Cluster
        return [keys.name_bucket, keys.address_bucket], [keys.name_block, keys.address_block]

    async def blocked_for(self, name: str, address: str) -> float:
        """Seconds until a sign-in may be tried again (0 when it may now)."""
        _, blocks = self._keys(name, address)
        ttls = [await self.redis.pttl(key) for key in blocks]
        return max([t for t in ttls if t > 0], default=0) / 1000

    async def failed(self, name: str, address: str) -> None:
        """Count a failed sign-in; past the burst, block further tries until a slot frees up."""
        keys, blocks = self._keys(name, address)
        wait_us = await self._limits.take(keys)
        if wait_us > 0:
            for key in blocks:
                await self.redis.set(key, 1, px=max(wait_us // 1000, 1))


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def cookie_options(secure: bool) -> dict[str, object]:
    return {"httponly": True, "samesite": "Lax", "secure": secure, "path": "/inbox"}


def client_address(request: web.Request) -> str:
    # The peer address: a forwarded-for header is trivially forged, so it is not trusted here.
    return request.remote or "unknown"
