"""Every typed aiohttp application key (`web.AppKey`) of the app, in one place: what `create_app` and its
start-up contexts put on the application, and what the web, inbox and worker code read back from it.

The keys' types are imported for type checkers only: this module sits low in `bot/` (the webhook reads
it, and the worker it names reads the webhook's stream), so at run time it imports nothing of `bot/`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from bot.handlers.journey_delivery import JourneyRunner
    from bot.handlers.order_events import OrderEventConsumer
    from bot.inbound.ingest import IngestStream
    from bot.inbound.router import Dispatcher
    from bot.inbound.worker import Worker
    from bot.inbox.auth import SessionStore, SignInLimiter
    from bot.inbox.funnel import FunnelCache
    from bot.inbox.live import InboxHub, InboxPublisher
    from bot.outbound.email_outbox import EmailSender
    from bot.outbound.graph import GraphClient
    from bot.outbound.outbox import OutboxNotifier
    from bot.outbound.sender import OutboxSender
    from bot.outbound.templates import TemplateKeeper
    from bot.runtime.embedded_redis import EmbeddedRedis
    from bot.runtime.local_smtp import Mailbox
    from config.settings import Settings

# --- settings and stores ---
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
EMBEDDED_REDIS: web.AppKey[EmbeddedRedis] = web.AppKey("embedded_redis")  # only when no REDIS_URL is set
REDIS: web.AppKey[Redis] = web.AppKey("redis")
INGEST: web.AppKey[IngestStream] = web.AppKey("ingest")
ENGINE: web.AppKey[AsyncEngine] = web.AppKey("engine")
SESSIONS: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("sessions")
# Sessions that only read (bot.store.db.read_session_factory): pages and polls that must not queue behind writers.
READ_SESSIONS: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("read_sessions")
LOCAL_REJECTIONS: web.AppKey[Counter[str]] = web.AppKey("local_rejections")
GRAPH: web.AppKey[GraphClient] = web.AppKey("graph")
OUTBOX_NOTIFIER: web.AppKey[OutboxNotifier] = web.AppKey("outbox_notifier")

# --- what runs beside the web (bot.app's worker_ctx and sender_ctx) ---
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher")
WORKER: web.AppKey[Worker] = web.AppKey("worker")
SENDER: web.AppKey[OutboxSender] = web.AppKey("sender")
CRM_CONSUMER: web.AppKey[OrderEventConsumer] = web.AppKey("crm_consumer")
TEMPLATE_KEEPER: web.AppKey[TemplateKeeper] = web.AppKey("template_keeper")
EMAIL_SENDER: web.AppKey[EmailSender | None] = web.AppKey("email_sender")  # None: no SMTP server configured
JOURNEY_RUNNER: web.AppKey[JourneyRunner | None] = web.AppKey("journey_runner")
# Demo mode's local SMTP server's mailbox (bot.runtime.local_smtp): only when it is the server configured.
DEMO_MAILBOX: web.AppKey[Mailbox] = web.AppKey("demo_mailbox")

# --- the merchant inbox (bot.inbox.views' inbox_ctx) ---
INBOX_SESSION_STORE: web.AppKey[SessionStore] = web.AppKey("inbox_sessions")
INBOX_SIGNIN_LIMITER: web.AppKey[SignInLimiter] = web.AppKey("inbox_signin_limiter")
INBOX_HUB: web.AppKey[InboxHub] = web.AppKey("inbox_hub")
INBOX_PUBLISHER: web.AppKey[InboxPublisher] = web.AppKey("inbox_publisher")
# Each campaign's funnel figures, kept a few seconds (bot.inbox.views.report's setup).
FUNNEL_CACHE: web.AppKey[FunnelCache] = web.AppKey("funnel_cache")
