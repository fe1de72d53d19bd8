"""The aiohttp application: web routes, plus (by default) the worker, on Redis and SQL it opens itself.

`create_app(settings)` is the one entry point; resources live in `cleanup_ctx` so they are opened on
start-up and closed on shutdown in reverse order: embedded Redis (when no `REDIS_URL`), the Redis client,
the SQL engine, then the worker task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import cast

import redis
from aiohttp import web
from pydantic import SecretStr
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.driver_info import DriverInfo
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers.cart_commands import build_cart_router
from bot.handlers.comments import Allocator, CommentOrders, handle_live_video
from bot.handlers.fallback import ReplyTexts, build_reply_router
from bot.handlers.faq import build_faq_router, build_handoff_gate
from bot.handlers.handoff import HandoffRecorder
from bot.handlers.members import build_crm_router
from bot.inbound import webhook
from bot.inbound.events import EventKind
from bot.inbound.ingest import IngestStream
from bot.inbound.live_comments import LiveCommentReaders, live_reader_settings, record_live_video
from bot.inbound.recorders import ConversationRecorder, OwnEchoes, record_comment
from bot.inbound.router import Dispatcher, Router
from bot.inbound.worker import Worker, WorkerSettings
from bot.inbox import views as inbox_views
from bot.inbox.live import SERVICE as INBOX_PUBLISHER
from bot.inbox.live import InboxPublisher, publish_inbox_event
from bot.outbound.graph import GraphClient
from bot.outbound.outbox import OutboxNotifier, OutboxSender, OutboxSettings
from bot.outbound.rate_limit import RateLimits, SendRateLimiter
from bot.outbound.subscriptions import REQUIRED_FIELDS, SubscriptionKeeper
from bot.runtime.embedded_redis import EmbeddedRedis
from bot.runtime.redis_keys import RedisKeys
from bot.services import (
    ENGINE,
    GRAPH,
    INGEST,
    LOCAL_REJECTIONS,
    OUTBOX_NOTIFIER,
    READ_SESSIONS,
    REDIS,
    SESSIONS,
    SETTINGS,
)
from bot.store.db import create_engine, migrate_schema, read_session_factory, session_factory
from bot.store.shop import apply_shop
from bot.web import checkout, faq_api, live_api, ops_api, orders_api, shop_api
from bot.web import members_api as crm_api
from bot.web.checkout import checkout_url
from carts.tables import Product
from config.settings import Settings
from config.shop_file import load_shop_file
from crm_bridge.consumer import OrderEventConsumer

log = logging.getLogger(__name__)

EMBEDDED_REDIS = web.AppKey("embedded_redis", EmbeddedRedis)
WORKER = web.AppKey("worker", Worker)
SENDER = web.AppKey("sender", OutboxSender)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
CRM_CONSUMER = web.AppKey("crm_consumer", OrderEventConsumer)


def build_router(settings: Settings, orders: CommentOrders | None = None) -> Router:
    """The bot's handlers, most specific first; the welcome and fallback replies come last."""
    router = Router()
    link = partial(checkout_url, settings)
    orders = orders or CommentOrders(checkout_link=link)
    router.register(orders.handle, orders.on_campaign_post, kinds=[EventKind.COMMENT], name="comment_orders")
    router.register(handle_live_video, kinds=[EventKind.LIVE_VIDEO], name="live_video_campaign")
    # While a person handles a conversation, the gate takes its chat events: no automated answers there.
    router.include(build_handoff_gate(timedelta(seconds=settings.handoff_quiet_s)))
    router.include(build_cart_router(link))
    texts = ReplyTexts(settings.welcome_text, settings.fallback_text, timedelta(seconds=settings.fallback_cooldown_s))
    # Before the welcome: Get Started with a referral.
    router.include(build_crm_router(settings.welcome_text, timedelta(seconds=settings.handoff_quiet_s)))
    router.include(build_faq_router())  # after cart and member commands: `cart` is never an FAQ question
    router.include(build_reply_router(texts))
    return router


def build_dispatcher(settings: Settings, router: Router | None = None) -> Dispatcher:
    """Recorders for the inbox's raw material, then the bot's router."""
    if router is None:
        # New comments on campaign posts also go in batches, through the same handler object.
        orders = CommentOrders(checkout_link=partial(checkout_url, settings))
        dispatcher = Dispatcher(build_router(settings, orders), batch_handler=orders)
    else:
        dispatcher = Dispatcher(router)
    conversations = ConversationRecorder(settings.app_id)
    dispatcher.add_recorder(conversations)
    dispatcher.add_batch_handler(OwnEchoes(conversations))  # a live's echoes, a batch at a time
    dispatcher.add_recorder(HandoffRecorder(settings.app_id))  # after it: the echo's conversation exists
    dispatcher.add_recorder(record_comment)
    dispatcher.add_recorder(publish_inbox_event)  # last: open inboxes hear of it after commit
    dispatcher.add_recorder(record_live_video)
    return dispatcher


def worker_settings(settings: Settings) -> WorkerSettings:
    return WorkerSettings(
        max_attempts=settings.worker_max_attempts,
        claim_idle_ms=settings.worker_claim_idle_ms,
        batch_size=settings.worker_batch_size,
        block_ms=settings.worker_block_ms,
        retry_backoff_ms=settings.worker_retry_backoff_ms,
    )


def graph_client(settings: Settings) -> GraphClient:
    return GraphClient(
        base_url=settings.graph_url,
        version=settings.graph_version,
        app_secret=settings.app_secret.get_secret_value() if settings.app_secret else None,
        page_tokens={page: token.get_secret_value() for page, token in settings.page_tokens.items()},
        timeout=settings.graph_timeout_s,
        stream_url=settings.stream_graph_url,
    )


def outbox_sender(
    settings: Settings, redis: Redis, sessions: async_sessionmaker[AsyncSession], graph: GraphClient
) -> OutboxSender:
    keys = RedisKeys(settings.key_prefix)
    limits = RateLimits(per_page=settings.send_rate_per_page, per_thread=settings.send_rate_per_thread)
    return OutboxSender(
        sessions,
        graph,
        SendRateLimiter(redis, settings.key_prefix, limits),
        OutboxNotifier(redis, keys.outbox_wake),
        OutboxSettings(max_attempts=settings.outbox_max_attempts),
    )


def redis_client(url: str, max_connections: int = 64, cluster: bool = False) -> Redis:
    """The Redis client every process uses.

    - A blocking pool: under a burst, requests wait for a free connection instead of failing with
      "Too many connections" (redis-py's default pool raises at 100).
    - Short timeouts: the webhook must answer 503 quickly when Redis is gone, not hang until Meta gives up.
    - An explicit driver version: otherwise redis-py reads package metadata from disk on every new
      connection, on the event loop.
    - `cluster`: `url` is any node of a Redis Cluster (settings.redis_cluster); see `_cluster_client`.
    """
    driver = DriverInfo(lib_version=redis.__version__).add_upstream_driver("plusone", "0.1")
    if cluster:
        return _cluster_client(url, driver)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        decode_responses=False,
        driver_info=driver,
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


# redis-py's cluster client has no waiting pool: a node's connections past this raise at once. Far above
# what a burst needs (each command is short; Redis allows 10,000 clients), so it only bounds a runaway.
CLUSTER_MAX_CONNECTIONS_PER_NODE = 1000


def _cluster_client(url: str, driver: DriverInfo) -> Redis:
    """A Redis Cluster client: it learns the slots from the node in `url` and sends each command to the
    node owning its keys. Everything PlusOne runs works there: each script touches keys of one slot
    (`bot.runtime.redis_keys` hash tags); nothing uses MULTI/EXEC (redis-py's cluster transactions block the event
    loop) or PUBLISH in a pipeline (refused); PUBLISH and SUBSCRIBE reach every node; other pipelines are
    split per node. Typed as `Redis`: it offers the same commands, and tests/test_redis_cluster.py runs
    the flow through it on a real cluster."""
    client = RedisCluster.from_url(
        url,
        max_connections=CLUSTER_MAX_CONNECTIONS_PER_NODE,
        socket_timeout=5,
        socket_connect_timeout=2,
        decode_responses=False,
        driver_info=driver,
    )
    return cast(Redis, client)


async def _watch_embedded(embedded: EmbeddedRedis) -> None:
    """Restart the embedded Redis if it dies; its append-only file brings back every acknowledged entry."""
    while True:
        await asyncio.sleep(1.0)
        if not await asyncio.to_thread(lambda: embedded.running):
            log.error("embedded Redis stopped; restarting it")
            with contextlib.suppress(Exception):
                await embedded.start_async()


DEMO_EMULATOR_FILE = "emulator.url"


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


def local_address(host: str) -> str:
    """Where to reach a server bound to `host` from this machine (0.0.0.0 binds all, but is no address)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


async def demo_ctx(app: web.Application) -> AsyncIterator[None]:
    """Demo mode (no Page token configured): run the Graph emulator in-process and talk to it.

    The emulator plays Meta: it delivers the shopper's messages and comments to our webhook (signed with
    our app secret), answers our Send API calls, and records what the shopper would have received.
    """
    from bot.emulator.app import GraphEmulator
    from bot.emulator.config import DEMO_APP_ID, DEMO_PAGE_ID, demo_config

    settings = app[SETTINGS]
    assert settings.app_secret is not None
    app_id = settings.app_id or DEMO_APP_ID
    webhook_url = f"http://{local_address(settings.host)}:{settings.port}/webhook"
    config = demo_config(settings.app_secret.get_secret_value(), webhook_url, app_id=app_id)
    # The demo Page starts subscribed, as a set-up Page would be.
    config.pages[DEMO_PAGE_ID] = replace(config.pages[DEMO_PAGE_ID], subscribed_fields=REQUIRED_FIELDS)
    emulator = GraphEmulator(config)
    base_url = await emulator.start(host="127.0.0.1", port=settings.demo_emulator_port)
    app[SETTINGS] = demo_settings(settings, base_url)
    marker = settings.data_dir / DEMO_EMULATOR_FILE
    await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(marker.write_text, base_url)
    log.warning("demo mode: no Page token configured, so Meta is played by the Graph emulator at %s", base_url)
    yield
    await asyncio.to_thread(marker.unlink, missing_ok=True)
    await emulator.stop()


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded: EmbeddedRedis | None = None
    watchdog: asyncio.Task[None] | None = None
    if settings.redis_url is None:
        embedded = await asyncio.to_thread(EmbeddedRedis, settings.data_dir, settings.redis_appendfsync)
        await embedded.start_async()
        app[EMBEDDED_REDIS] = embedded
        watchdog = asyncio.create_task(_watch_embedded(embedded))
        log.info("embedded Redis listening on %s", embedded.socket_path)
    redis = redis_client(settings.redis_url or embedded.url, cluster=settings.redis_cluster)  # type: ignore[union-attr]
    app[REDIS] = redis
    app[INGEST] = IngestStream(redis, RedisKeys(settings.key_prefix))
    app[OUTBOX_NOTIFIER] = OutboxNotifier(redis, RedisKeys(settings.key_prefix).outbox_wake)
    graph = graph_client(settings)
    app[GRAPH] = graph
    yield
    graph.close()
    await redis.aclose()
    if watchdog is not None:
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
    if embedded is not None:
        await embedded.stop_async()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await asyncio.to_thread(settings.data_dir.mkdir, parents=True, exist_ok=True)
    # In a thread: SQLAlchemy resolves the SQLite file path with blocking os calls.
    engine = await asyncio.to_thread(lambda: create_engine(settings.sqlalchemy_url))
    await migrate_schema(engine)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    app[READ_SESSIONS] = read_session_factory(engine)
    yield
    await engine.dispose()


async def _stop(task: asyncio.Task[None], stop: Callable[[], None]) -> None:
    stop()
    try:
        await asyncio.wait_for(task, timeout=30)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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


def build_worker(
    settings: Settings,
    stream: IngestStream,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis | RedisCluster,
    notifier: OutboxNotifier,
    dispatcher: Dispatcher,
) -> Worker:
    """The stream worker with its stock allocator and inbox notes: the same in `serve` and `plusone worker`."""
    publisher = InboxPublisher(redis, settings.key_prefix)  # type: ignore[arg-type]
    allocator = Allocator(
        stream,
        sessions,
        notifier,
        checkout_link=partial(checkout_url, settings),
        handoff_quiet=timedelta(seconds=settings.handoff_quiet_s),
        on_decided=publisher.claims_decided,
    )
    return Worker(
        stream,
        sessions,
        dispatcher,
        worker_settings(settings),
        services={"outbox_notifier": notifier, INBOX_PUBLISHER: publisher},
        after_batch=allocator.run,
        in_batch=allocator.in_batch,
    )


@dataclass
class Background:
    """What runs beside the web: the stream worker, the outbox sender, the CRM consumer, the subscription
    keeper and the live comment readers. The same in `plusone serve` and `plusone worker`, so a web process
    with worker processes does everything one process does."""

    worker: Worker
    sender: OutboxSender | None  # None where another process sends (`plusone worker --no-sender`)
    crm: OrderEventConsumer
    keeper: SubscriptionKeeper
    live: LiveCommentReaders
    tasks: list[tuple[asyncio.Task[None], Callable[[], None]]]

    async def stop(self) -> None:
        # The live readers first; then the worker finishes the batch in hand (anything not acknowledged is
        # reclaimed by another worker); then the rest. A service that had failed still fails the caller.
        failures: list[BaseException] = []
        for task, stop in self.tasks:
            try:
                await _stop(task, stop)
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


def start_background(
    settings: Settings,
    stream: IngestStream,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis | RedisCluster,
    graph: GraphClient,
    notifier: OutboxNotifier,
    dispatcher: Dispatcher,
    *,
    with_sender: bool = True,
) -> Background:
    worker = build_worker(settings, stream, sessions, redis, notifier, dispatcher)
    sender = outbox_sender(settings, redis, sessions, graph) if with_sender else None
    crm = OrderEventConsumer(sessions)
    keeper = SubscriptionKeeper(graph)
    # While a campaign's video is live, its comments are also read from Meta's stream and comments edge.
    live = LiveCommentReaders(
        sessions,
        graph,
        stream,
        redis,
        RedisKeys(settings.key_prefix),
        live_reader_settings(settings),
        owner=worker.consumer,
    )
    started = {
        "worker": (asyncio.create_task(worker.run(), name="plusone-worker"), worker.stop),
        "crm": (asyncio.create_task(crm.run(), name="plusone-crm"), crm.stop),
        "keeper": (asyncio.create_task(keeper.run(), name="plusone-subscriptions"), keeper.stop),
        "live": (asyncio.create_task(live.run(), name="plusone-live-comments"), live.stop),
    }
    if sender is not None:
        started["sender"] = (asyncio.create_task(sender.run(), name="plusone-outbox"), sender.stop)
    order = ("live", "worker", "sender", "crm", "keeper")
    return Background(worker, sender, crm, keeper, live, [started[name] for name in order if name in started])


async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
    background = start_background(
        app[SETTINGS], app[INGEST], app[SESSIONS], app[REDIS], app[GRAPH], app[OUTBOX_NOTIFIER], app[DISPATCHER]
    )
    app[WORKER] = background.worker
    assert background.sender is not None
    app[SENDER] = background.sender
    app[CRM_CONSUMER] = background.crm
    yield
    await background.stop()


async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbox sender alone, in the web's process, for `plusone serve` with worker processes: they run
    `--no-sender`, so that the Graph calls' threads (python-facebook-api is blocking) do not take the GIL
    from the worker's event loop while it decides a live's comments."""
    sender = outbox_sender(app[SETTINGS], app[REDIS], app[SESSIONS], app[GRAPH])
    app[SENDER] = sender
    task = asyncio.create_task(sender.run(), name="plusone-outbox")
    yield
    await _stop(task, sender.stop)


def create_app(
    settings: Settings, *, run_worker: bool = True, dispatcher: Dispatcher | None = None, demo: bool = False
) -> web.Application:
    settings.require_secrets()
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[LOCAL_REJECTIONS] = Counter()
    app[DISPATCHER] = dispatcher or build_dispatcher(settings)
    app.add_routes(webhook.routes)
    app.add_routes(ops_api.routes)
    app.add_routes(shop_api.routes)
    app.add_routes(checkout.routes)
    app.add_routes(orders_api.routes)
    app.add_routes(faq_api.routes)
    inbox_views.setup(app)
    app.add_routes(crm_api.routes)
    app.add_routes(live_api.routes)
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
