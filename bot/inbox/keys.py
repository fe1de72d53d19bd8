"""Typed aiohttp application keys of the inbox."""

from __future__ import annotations

from aiohttp import web

from bot.inbox.auth import SessionStore, SignInLimiter
from bot.inbox.live import InboxHub, InboxPublisher

SESSION_STORE = web.AppKey("inbox_sessions", SessionStore)
LIMITER = web.AppKey("inbox_signin_limiter", SignInLimiter)
HUB = web.AppKey("inbox_hub", InboxHub)
PUBLISHER = web.AppKey("inbox_publisher", InboxPublisher)
