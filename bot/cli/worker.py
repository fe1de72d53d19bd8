"""`plusone worker`: one more worker of the consumer group, beside `plusone serve --no-worker` (or another).

    plusone worker              # reads the stream, runs the handlers, sends the outbox
    plusone worker --no-sender  # leaves the outbox to another process (serve's own worker processes)

It finds Redis through PLUSONE_REDIS_URL, or the embedded Redis that `plusone serve` runs in the same data
dir, and talks to serve's demo emulator when serve runs in demo mode. Exit codes: 0 stopped by a signal;
2 no Redis to read, a bad setting, or a database it must not migrate. Redis, SQLAlchemy and the
application are imported when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["register", "run_worker"]

log = logging.getLogger("plusone")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `worker` subcommand to `plusone`'s subparsers."""
    worker = subparsers.add_parser("worker", help="run one worker of the consumer group (several may run)")
    worker.add_argument(
        "--no-sender", action="store_true", help="leave the outbox to another process (serve's own workers do)"
    )
    worker.set_defaults(func=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    """Run `plusone worker` until a signal stops it; returns the exit code."""
    from bot.cli.startup import configure_logging, new_event_loop, set_clock
    from config.settings import load_settings

    settings = load_settings()
    configure_logging(settings)
    set_clock(settings)
    with asyncio.Runner(loop_factory=lambda: new_event_loop(settings)) as runner:
        log.info("event loop: %s", type(runner.get_loop()).__module__.split(".")[0])
        return runner.run(_run_worker(settings, with_sender=not args.no_sender))


async def _run_worker(settings: Settings, with_sender: bool = True) -> int:
    from bot.app import demo_settings, graph_client
    from bot.background import build_dispatcher, start_background
    from bot.emulator.config import running_demo_emulator
    from bot.inbound.ingest import IngestStream
    from bot.outbound.outbox import OutboxNotifier
    from bot.runtime.embedded_redis import EmbeddedRedis
    from bot.runtime.heap import freeze_startup_heap
    from bot.runtime.redis import redis_client
    from bot.runtime.redis_keys import RedisKeys
    from bot.store.db import create_engine, migrate_schema, session_factory

    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        if not embedded.socket_path.exists():
            print(
                f"plusone worker: PLUSONE_REDIS_URL is not set and no embedded Redis runs in {settings.data_dir}; "
                "start `plusone serve` first or set PLUSONE_REDIS_URL",
                file=sys.stderr,
            )
            return 2
        url = embedded.url
    if not settings.page_tokens and (emulator := running_demo_emulator(settings.data_dir)) is not None:
        # `plusone serve` runs in demo mode beside us: send to its emulator, as it does.
        settings = demo_settings(settings, emulator)
    redis = redis_client(url, cluster=settings.redis_cluster)
    engine = create_engine(settings.sqlalchemy_url)
    await migrate_schema(engine)
    sessions = session_factory(engine)
    graph = graph_client(settings)
    notifier = OutboxNotifier(redis, RedisKeys(settings.key_prefix).outbox_wake)
    stream = IngestStream(redis, RedisKeys(settings.key_prefix))
    background = start_background(
        settings, stream, sessions, redis, graph, notifier, build_dispatcher(settings), with_sender=with_sender
    )
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    freeze_startup_heap()
    try:
        # Until asked to stop, or until the stream worker ends by itself (it only does when told to).
        waiters = [asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(background.worker.finished.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        await background.stop()
    finally:
        await graph.aclose()
        await redis.aclose()
        await engine.dispose()
    return 0
