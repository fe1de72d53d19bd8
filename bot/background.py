"""What runs beside the web, assembled: the bot's handler chain, the stream worker, and the other loops.

- `build_router` / `build_dispatcher`: the recorders and handlers every event goes through, in order.
- `build_worker`: the stream worker with its stock allocator, handler services and inbox notes.
- `start_background`: the worker, the outbox sender (and the e-mail outbox's, `email_sender`), the CRM's
  order-event consumer, the journeys' runner, the subscription
  keeper, the template keeper, the Messenger profile keeper and the live comment readers, each a
  `bot.runtime.loops.Loop` started as its own task; the `Background` it returns stops them in order.
  `plusone serve` (`bot.app.worker_ctx`) and `plusone worker` (`bot.cli.main`) both run exactly this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers.cart_commands import build_cart_router
from bot.handlers.comments import Allocator, CommentOrders, handle_live_video
from bot.handlers.consent import build_consent_router
from bot.handlers.fallback import ReplyTexts, build_reply_router
from bot.handlers.faq import build_faq_router, build_handoff_gate
from bot.handlers.handoff import HandoffRecorder
from bot.handlers.journey_delivery import JourneyRunner
from bot.handlers.language import build_language_router
from bot.handlers.members import build_crm_router
from bot.handlers.order_events import OrderEventConsumer
from bot.handlers.payment_proofs import build_proof_router
from bot.handlers.pointer_choice import build_point_router
from bot.handlers.segment_refresh import SegmentRefresher
from bot.handlers.surveys import build_survey_router
from bot.inbound.events import EventKind
from bot.inbound.ingest import IngestStream
from bot.inbound.live_comments import LiveCommentReaders, live_reader_settings, record_live_video
from bot.inbound.recorders import ConversationRecorder, OwnEchoes, record_comment, record_template_status
from bot.inbound.router import Dispatcher, HandlerServices, Router
from bot.inbound.worker import Worker, WorkerSettings
from bot.inbox.live import InboxPublisher, publish_inbox_event
from bot.outbound.email_links import link_key
from bot.outbound.email_outbox import EmailSender, EmailSettings
from bot.outbound.graph import GraphClient
from bot.outbound.mailer import Mailer, MailSettings
from bot.outbound.messenger_profile import ProfileKeeper
from bot.outbound.outbox import OutboxNotifier
from bot.outbound.rate_limit import RateLimits, SendRateLimiter
from bot.outbound.sender import OutboxSender, OutboxSettings
from bot.outbound.subscriptions import AppLevel, SubscriptionKeeper, app_token_client
from bot.outbound.survey_links import survey_url
from bot.outbound.templates import TemplateKeeper
from bot.outbound.user_profiles import UserProfileFiller
from bot.runtime.loops import Loop, Running, stop_all
from bot.runtime.redis_keys import RedisKeys
from bot.web.checkout import checkout_url
from config.settings import Settings


def survey_links(settings: Settings) -> Callable[[int], str] | None:
    """A survey message's e-mail link to its star page, signed with the e-mail links' key (None: no key)."""
    try:
        key = link_key(settings)
    except ValueError:
        return None
    return partial(survey_url, settings.public_base_url, key)


def build_router(settings: Settings, orders: CommentOrders | None = None) -> Router:
    """The bot's handlers, most specific first; the welcome and fallback replies come last."""
    router = Router()
    link = partial(checkout_url, settings)
    orders = orders or CommentOrders(checkout_link=link)
    router.register(orders.handle, orders.on_campaign_post, kinds=[EventKind.COMMENT], name="comment_orders")
    router.register(handle_live_video, kinds=[EventKind.LIVE_VIDEO], name="live_video_campaign")
    # STOP / 取消訂閱 and START / 訂閱: marketing consent, honoured even while a person handles the chat.
    router.include(build_consent_router())
    # While a person handles a conversation, the gate takes its chat events: no automated answers there.
    router.include(build_handoff_gate(timedelta(seconds=settings.handoff_quiet_s)))
    router.include(build_cart_router(link))
    router.include(build_point_router())  # which product on screen a `+1` meant, tapped in the chat
    router.include(build_language_router())  # `English` / `中文`, and the quick replies that choose them
    router.include(build_survey_router())  # a journey survey's stars, then its comment (never an FAQ question)
    router.include(build_proof_router())  # an image while an order waits for payment: its receipt
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
    dispatcher.add_recorder(record_template_status)
    return dispatcher


def worker_settings(settings: Settings) -> WorkerSettings:
    return WorkerSettings(
        max_attempts=settings.worker_max_attempts,
        claim_idle_ms=settings.worker_claim_idle_ms,
        batch_size=settings.worker_batch_size,
        block_ms=settings.worker_block_ms,
        retry_backoff_ms=settings.worker_retry_backoff_ms,
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
        OutboxSettings(max_attempts=settings.outbox_max_attempts, human_agent=settings.human_agent_permission),
    )


def email_sender(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> EmailSender | None:
    """The e-mail outbox's sender, or None when no SMTP server is configured (rows then wait in the outbox)."""
    mail = MailSettings.from_settings(settings)
    if mail is None:
        return None
    email = EmailSettings(
        base_url=settings.public_base_url, link_key=link_key(settings), max_attempts=settings.email_max_attempts
    )
    return EmailSender(sessions, Mailer(mail), email)


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
        services=HandlerServices(outbox_notifier=notifier, inbox_publisher=publisher),
        after_batch=allocator.run,
        in_batch=allocator.in_batch,
    )


def webhook_callback_url(settings: Settings) -> str:
    """Our `/webhook` as Meta calls it: under `public_url`, else this server's own address."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"{(settings.public_url or f'http://{host}:{settings.port}').rstrip('/')}/webhook"


def subscription_keeper(settings: Settings, graph: GraphClient, redis: Redis | RedisCluster) -> SubscriptionKeeper:
    """Both levels of Meta's webhook subscription: the app's (with the app token) and each Page's."""
    secret = settings.app_secret.get_secret_value() if settings.app_secret else None
    verify = settings.verify_token.get_secret_value() if settings.verify_token else None
    app = AppLevel(
        app_token_client(graph, settings.app_id, secret), settings.app_id, webhook_callback_url(settings), verify
    )
    keys = RedisKeys(settings.key_prefix)
    return SubscriptionKeeper(graph, app=app, redis=redis, report_key=keys.subscriptions_report)


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
    templates: TemplateKeeper
    running: list[Running]  # in the order they stop
    email: EmailSender | None = None  # beside the outbox sender; None without an SMTP server
    journeys: JourneyRunner | None = None

    async def stop(self) -> None:
        # The live readers first; then the worker finishes the batch in hand (anything not acknowledged is
        # reclaimed by another worker); then the rest. A service that had failed still fails the caller.
        try:
            await stop_all(self.running)
        finally:
            if self.keeper.app.graph is not None:
                await self.keeper.app.graph.aclose()  # the app token's own connections (subscription_keeper)


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
    keeper = subscription_keeper(settings, graph, redis)
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
    templates = TemplateKeeper(sessions, graph)
    # The Page's Get Started, greeting and menu, as the shop file says (m.me referrals need Get Started).
    report_key = RedisKeys(settings.key_prefix).messenger_profile_report
    profile = ProfileKeeper(sessions, graph, redis=redis, report_key=report_key)
    # Shoppers' names and pictures for the inbox (User Profile API), off the webhook's path.
    people = UserProfileFiller(sessions, graph)
    # Once a day of the shop: RFM scores, NES / NAPL, segment snapshots and their tag rules.
    segments = SegmentRefresher(sessions)
    # Journeys: members enter, runs take their steps, messages go by Messenger or e-mail (with an SMTP server).
    journeys = JourneyRunner(
        sessions,
        email_enabled=MailSettings.from_settings(settings) is not None,
        notifier=notifier,
        survey_link=survey_links(settings),
    )
    loops: list[Loop] = [worker, crm, keeper, live, templates, profile, people, segments, journeys]
    loops += [sender] if sender is not None else []
    # E-mail goes where Messenger messages go from: with the outbox sender.
    email = email_sender(settings, sessions) if with_sender else None
    loops += [email] if email is not None else []
    started = {loop.name: loop.start() for loop in loops}
    order = (live, worker, journeys, sender, email, crm, keeper, templates, profile, people, segments)
    running = [started[loop.name] for loop in order if loop is not None]
    return Background(worker, sender, crm, keeper, live, templates, running, email, journeys)
