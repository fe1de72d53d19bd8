"""The aiohttp application: web routes, plus (by default) the worker, on Redis and SQL it opens itself.

`create_app(settings)` is the one entry point; resources live in `cleanup_ctx` so they are opened on
start-up and closed on shutdown in reverse order: embedded Redis (when no `REDIS_URL`), the Redis client,
the SQL engine, then the worker and the other loops beside it (assembled in `bot.background`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urljoin

from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select

from bot.background import build_dispatcher, email_sender, outbox_sender, start_background
from bot.inbound import webhook
from bot.inbound.ingest import IngestStream
from bot.inbound.router import Dispatcher
from bot.inbox import views as inbox_views
from bot.outbound.graph import GraphClient
from bot.outbound.outbox import OutboxNotifier
from bot.outbound.subscriptions import REQUIRED_FIELDS
from bot.runtime.embedded_redis import EmbeddedRedis, EmbeddedRedisWatchdog
from bot.runtime.local_smtp import LocalSmtp
from bot.runtime.localstripe import TEST_PUBLISHABLE_KEY, TEST_SECRET_KEY, LocalStripe, js_url
from bot.runtime.loops import Running, stop_all
from bot.runtime.redis import redis_client
from bot.runtime.redis_keys import RedisKeys
from bot.services import (
    CRM_CONSUMER,
    DEMO_MAILBOX,
    DISPATCHER,
    EMAIL_SENDER,
    EMBEDDED_REDIS,
    ENGINE,
    GRAPH,
    INGEST,
    JOURNEY_RUNNER,
    LOCAL_REJECTIONS,
    OUTBOX_NOTIFIER,
    READ_SESSIONS,
    REDIS,
    SENDER,
    SESSIONS,
    SETTINGS,
    TEMPLATE_KEEPER,
    WORKER,
)
from bot.store.db import create_engine, migrate_schema, read_session_factory, session_factory
from bot.store.shop import apply_shop
from bot.web import (
    blocked_api,
    checkout,
    coupons_api,
    dashboard_api,
    email_pages,
    faq_api,
    handoff_api,
    journeys_api,
    live_api,
    offers_api,
    ops_api,
    orders_api,
    payments_api,
    pointer_api,
    segments_api,
    shop_api,
    stripe_pay,
    survey_page,
)
from bot.web import members_api as crm_api
from bot.web.admin_auth import require_admin
from bot.web.error_pages import styled_errors
from bot.web.read_deadline import body_read_deadline
from bot.web.server_log import server_logger
from carts.tables import Product
from config.settings import Settings, make_private_dir
from config.shop_file import load_shop_file

log = logging.getLogger(__name__)


def graph_client(settings: Settings) -> GraphClient:
    return GraphClient(
        base_url=settings.graph_url,
        version=settings.graph_version,
        app_secret=settings.app_secret.get_secret_value() if settings.app_secret else None,
        page_tokens={page: token.get_secret_value() for page, token in settings.page_tokens.items()},
        timeout=settings.graph_timeout_s,
        stream_url=settings.stream_graph_url,
    )


def demo_settings(settings: Settings, emulator_url: str) -> Settings:
    """Settings that talk to the demo emulator's Page instead of Meta."""
    from bot.emulator.config import DEMO_APP_ID, DEMO_PAGE_ID, DEMO_PAGE_TOKEN

    return settings.model_copy(
        update={
            "graph_url": emulator_url.rstrip("/"),
            "app_id": settings.app_id or DEMO_APP_ID,
            "page_tokens": {DEMO_PAGE_ID: SecretStr(DEMO_PAGE_TOKEN)},
        }
    )


async def demo_ctx(app: web.Application) -> AsyncIterator[None]:
    """Demo mode (no Page token configured): run the Graph emulator in-process and talk to it.

    The emulator plays Meta: it delivers the shopper's messages and comments to our webhook (signed with
    our app secret), answers our Send API calls, and records what the shopper would have received.
    """
    from bot.emulator.app import GraphEmulator
    from bot.emulator.config import (
        DEMO_APP_ID,
        DEMO_EMULATOR_FILE,
        DEMO_EMULATOR_STATE_FILE,
        DEMO_PAGE_ID,
        demo_config,
        local_webhook_url,
    )

    settings = app[SETTINGS]
    assert settings.app_secret is not None
    app_id = settings.app_id or DEMO_APP_ID
    webhook_url = local_webhook_url(settings.host, settings.port)
    config = demo_config(settings.app_secret.get_secret_value(), webhook_url, app_id=app_id)
    # The demo Page starts subscribed, as a set-up Page would be.
    config.pages[DEMO_PAGE_ID] = replace(config.pages[DEMO_PAGE_ID], subscribed_fields=REQUIRED_FIELDS)
    # What the demo's Meta knows (shoppers' 24-hour windows, comments, subscriptions) survives a restart,
    # as our database does: else the inbox and Meta disagree on whose window is open.
    config.state_file = settings.data_dir / DEMO_EMULATOR_STATE_FILE
    emulator = GraphEmulator(config)
    base_url = await emulator.start(host="127.0.0.1", port=settings.demo_emulator_port)
    # A shifted clock (PLUSONE_CLOCK_OFFSET) shifts the demo's Meta alike, and a run without one puts it
    # back (its state file keeps the last offset): else its 24-hour windows and comment times would
    # disagree with ours.
    await emulator.set_clock_offset(settings.clock_offset.total_seconds())
    app[SETTINGS] = demo_settings(settings, base_url)
    marker = settings.data_dir / DEMO_EMULATOR_FILE
    await asyncio.to_thread(make_private_dir, settings.data_dir)
    await asyncio.to_thread(marker.write_text, base_url)
    log.warning("demo mode: no Page token configured, so Meta is played by the Graph emulator at %s", base_url)
    stripe = None
    if settings.stripe_secret_key is None:
        try:
            stripe = await demo_stripe(app, settings, urljoin(webhook_url, "/stripe/webhook"))
        except BaseException:
            await asyncio.to_thread(marker.unlink, missing_ok=True)
            await emulator.stop()
            raise
    smtp: LocalSmtp | None = None
    if settings.smtp_host is None:
        try:
            smtp = await demo_smtp(app, settings)
        except BaseException:
            if stripe is not None:
                await stripe.stop()
            await asyncio.to_thread(marker.unlink, missing_ok=True)
            await emulator.stop()
            raise
    try:
        yield
    finally:
        if smtp is not None:
            await smtp.stop()
        if stripe is not None:
            await stripe.stop()
        await asyncio.to_thread(marker.unlink, missing_ok=True)
        await emulator.stop()


async def demo_stripe(app: web.Application, settings: Settings, webhook_url: str) -> LocalStripe:
    """Demo mode without a Stripe key: localstripe plays Stripe, so card payments work end to end.

    Its signed events come to this server's /stripe/webhook with a secret made for this run; the keys are
    test keys, which localstripe takes without checking.
    """
    stripe = await LocalStripe.start(settings.demo_stripe_port)
    secret = f"whsec_{secrets.token_hex(24)}"
    try:
        await stripe.configure_webhook(webhook_url, secret)
    except BaseException:
        await stripe.stop()
        raise
    app[SETTINGS] = app[SETTINGS].model_copy(
        update={
            "stripe_secret_key": SecretStr(TEST_SECRET_KEY),
            "stripe_publishable_key": TEST_PUBLISHABLE_KEY,
            "stripe_webhook_secret": SecretStr(secret),
            "stripe_api_url": stripe.url,
            "stripe_js_url": js_url(stripe.url),
        }
    )
    log.warning("demo mode: no Stripe key configured, so card payments go to localstripe at %s", stripe.url)
    return stripe


async def demo_smtp(app: web.Application, settings: Settings) -> LocalSmtp:
    """Demo mode without an SMTP server: a local one takes the e-mails, and the console's Demo mailbox
    (bot.inbox.views.mailbox) shows what it received."""
    smtp = await LocalSmtp.start(settings.demo_smtp_port)
    app[SETTINGS] = app[SETTINGS].model_copy(
        update={"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_tls": "none", "smtp_user": None}
    )
    app[DEMO_MAILBOX] = smtp.mailbox
    log.warning("demo mode: no SMTP server configured, so e-mails go to a local one at %s:%s", smtp.host, smtp.port)
    return smtp


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded: EmbeddedRedis | None = None
    watchdog: Running | None = None
    if settings.redis_url is None:
        embedded = await asyncio.to_thread(EmbeddedRedis, settings.data_dir, settings.redis_appendfsync)
        await embedded.start_async()
        app[EMBEDDED_REDIS] = embedded
        watchdog = EmbeddedRedisWatchdog(embedded).start()
        log.info("embedded Redis listening on %s", embedded.socket_path)
    redis = redis_client(settings.redis_url or embedded.url, cluster=settings.redis_cluster)  # type: ignore[union-attr]
    app[REDIS] = redis
    app[INGEST] = IngestStream(redis, RedisKeys(settings.key_prefix))
    app[OUTBOX_NOTIFIER] = OutboxNotifier(redis, RedisKeys(settings.key_prefix).outbox_wake)
    graph = graph_client(settings)
    app[GRAPH] = graph
    yield
    await graph.aclose()
    await redis.aclose()
    if watchdog is not None:
        await watchdog.stop()
    if embedded is not None:
        await embedded.stop_async()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await asyncio.to_thread(make_private_dir, settings.data_dir)
    # In a thread: SQLAlchemy resolves the SQLite file path with blocking os calls.
    engine = await asyncio.to_thread(lambda: create_engine(settings.sqlalchemy_url))
    await migrate_schema(engine)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    app[READ_SESSIONS] = read_session_factory(engine)
    yield
    await engine.dispose()


DEMO_SHOP = Path(__file__).resolve().parent.parent / "config" / "samples" / "demo_shop.yaml"


async def demo_shop_ctx(app: web.Application) -> AsyncIterator[None]:
    """Demo mode with an empty catalog: load the sample shop, so comments like A+1 have something to buy."""
    async with app[SESSIONS]() as session:
        has_products = (await session.execute(select(Product.id).limit(1))).first() is not None
    if not has_products:
        shop = await asyncio.to_thread(load_shop_file, DEMO_SHOP)
        async with app[SESSIONS]() as session, session.begin():
            await apply_shop(session, shop)
        log.warning(
            "demo mode: loaded the sample shop %s (comment on post %s)",
            DEMO_SHOP.name,
            shop.campaigns[0].post_id if shop.campaigns else "-",
        )
    yield


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    background = start_background(
        app[SETTINGS], app[INGEST], app[SESSIONS], app[REDIS], app[GRAPH], app[OUTBOX_NOTIFIER], app[DISPATCHER]
    )
    app[WORKER] = background.worker
    assert background.sender is not None
    app[SENDER] = background.sender
    app[EMAIL_SENDER] = background.email
    app[CRM_CONSUMER] = background.crm
    app[JOURNEY_RUNNER] = background.journeys
    app[TEMPLATE_KEEPER] = background.templates
    yield
    await background.stop()


async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbox sender alone, in the web's process, for `plusone serve` with worker processes: they run
    `--no-sender`, so that the Graph calls' threads (python-facebook-api is blocking) do not take the GIL
    from the worker's event loop while it decides a live's comments."""
    sender = outbox_sender(app[SETTINGS], app[REDIS], app[SESSIONS], app[GRAPH])
    app[SENDER] = sender
    email = email_sender(app[SETTINGS], app[SESSIONS])
    app[EMAIL_SENDER] = email
    running = [sender.start()] + ([email.start()] if email is not None else [])
    yield
    await stop_all(running)


def create_app(
    settings: Settings, *, run_worker: bool = True, dispatcher: Dispatcher | None = None, demo: bool = False
) -> web.Application:
    settings.require_secrets()
    # The admin token of every /api/ route is checked by one middleware (bot.web.admin_auth).
    # Every request's reading time is bounded: the headers by the request handler's keep-alive timeout (it
    # closes a connection that has not sent a whole request by then), the body by a middleware.
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        # Outermost: a page's 403, 404 or failure answers a styled page in the reader's language (bot.web.error_pages).
        middlewares=[styled_errors, body_read_deadline, require_admin],
        # A client's faults (malformed requests, aborted uploads) logged in one line (bot.web.server_log).
        # handler_cancellation as `plusone serve` runs it (aiohttp's test server would cancel handlers whose
        # client went away instead): a handler finishes its work.
        handler_args={
            "keepalive_timeout": settings.http_read_timeout_s,
            "logger": server_logger(),
            "handler_cancellation": False,
        },
    )
    app[SETTINGS] = settings
    app[LOCAL_REJECTIONS] = Counter()
    app[DISPATCHER] = dispatcher or build_dispatcher(settings)
    app.add_routes(webhook.routes)
    app.add_routes(ops_api.routes)
    app.add_routes(shop_api.routes)
    app.add_routes(payments_api.routes)
    app.add_routes(checkout.routes)
    app.add_routes(email_pages.routes)
    app.add_routes(survey_page.routes)  # a journey e-mail's survey: stars and a comment
    app.add_routes(stripe_pay.routes)
    app.add_routes(orders_api.routes)
    app.add_routes(faq_api.routes)
    app.add_routes(handoff_api.routes)
    app.add_routes(blocked_api.routes)
    inbox_views.setup(app)
    app.add_routes(crm_api.routes)
    app.add_routes(segments_api.routes)
    app.add_routes(journeys_api.routes)
    app.add_routes(live_api.routes)
    app.add_routes(pointer_api.routes)
    app.add_routes(offers_api.routes)
    app.add_routes(dashboard_api.routes)
    app.add_routes(coupons_api.routes)
    if demo:
        app.cleanup_ctx.append(demo_ctx)  # first: the others read the settings it points at the emulator
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(inbox_views.inbox_ctx)
    if demo:
        app.cleanup_ctx.append(demo_shop_ctx)
    if run_worker:
        app.cleanup_ctx.append(worker_ctx)
    return app
