"""Typed aiohttp application keys (`web.AppKey`) shared by the web modules."""

from __future__ import annotations

from collections import Counter

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.inbound.ingest import IngestStream
from bot.outbound.graph import GraphClient
from bot.outbound.outbox import OutboxNotifier
from config.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)
INGEST = web.AppKey("ingest", IngestStream)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
# Sessions that only read (bot.store.db.read_session_factory): pages and polls that must not queue behind writers.
READ_SESSIONS = web.AppKey("read_sessions", async_sessionmaker[AsyncSession])
LOCAL_REJECTIONS = web.AppKey("local_rejections", Counter[str])
GRAPH = web.AppKey("graph", GraphClient)
OUTBOX_NOTIFIER = web.AppKey("outbox_notifier", OutboxNotifier)
