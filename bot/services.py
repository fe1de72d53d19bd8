"""Every typed aiohttp application key (`web.AppKey`) of the app, in one place: what `create_app` and its
start-up contexts put on the application, and what the web, inbox and worker code read back from it."""

from __future__ import annotations

from collections import Counter

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.handlers.order_events import OrderEventConsumer
from bot.inbound.ingest import IngestStream
from bot.inbound.router import Dispatcher
from bot.inbound.worker import Worker
from bot.inbox.auth import SessionStore, SignInLimiter
from bot.inbox.live import InboxHub, InboxPublisher
from bot.outbound.graph import GraphClient
from bot.outbound.outbox import OutboxNotifier
from bot.outbound.sender import OutboxSender
from bot.runtime.embedded_redis import EmbeddedRedis
from config.settings import Settings

# --- settings and stores ---
SETTINGS = web.AppKey("settings", Settings)
EMBEDDED_REDIS = web.AppKey("embedded_redis", EmbeddedRedis)  # only when no REDIS_URL is set
REDIS = web.AppKey("redis", Redis)
INGEST = web.AppKey("ingest", IngestStream)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
# Sessions that only read (bot.store.db.read_session_factory): pages and polls that must not queue behind writers.
READ_SESSIONS = web.AppKey("read_sessions", async_sessionmaker[AsyncSession])
LOCAL_REJECTIONS = web.AppKey("local_rejections", Counter[str])
GRAPH = web.AppKey("graph", GraphClient)
OUTBOX_NOTIFIER = web.AppKey("outbox_notifier", OutboxNotifier)

# --- what runs beside the web (bot.app's worker_ctx and sender_ctx) ---
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
WORKER = web.AppKey("worker", Worker)
SENDER = web.AppKey("sender", OutboxSender)
CRM_CONSUMER = web.AppKey("crm_consumer", OrderEventConsumer)

# --- the merchant inbox (bot.inbox.views' inbox_ctx) ---
INBOX_SESSION_STORE = web.AppKey("inbox_sessions", SessionStore)
INBOX_SIGNIN_LIMITER = web.AppKey("inbox_signin_limiter", SignInLimiter)
INBOX_HUB = web.AppKey("inbox_hub", InboxHub)
INBOX_PUBLISHER = web.AppKey("inbox_publisher", InboxPublisher)
