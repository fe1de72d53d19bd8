"""The `plusone` command line: serve, worker, simulate (and the subcommands other packages register).

Every command reads its settings through `config.settings.load_settings`; a bad setting prints one line
naming it and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from config.settings import Settings, SettingsError, ensure_secrets, load_settings

log = logging.getLogger("plusone")

Command = Callable[[argparse.Namespace], int]


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _settings_with_secrets() -> Settings:
    settings = load_settings()
    generated = ensure_secrets(settings)
    if generated is None:
        return settings
    settings = generated.settings
    # Printed once, on the first run, to the terminal (never to the log): these are local placeholders.
    print(f"PlusOne generated {', '.join(generated.names)} into {generated.path}:", file=sys.stderr)
    for name in generated.names:
        value = getattr(settings, name).get_secret_value()
        print(f"  PLUSONE_{name.upper()}={value}", file=sys.stderr)
    print(
        "  For a real Facebook app, set PLUSONE_APP_SECRET to the app's secret and PLUSONE_VERIFY_TOKEN to the\n"
        "  token you type into the app dashboard's webhook settings (or put them in that file).",
        file=sys.stderr,
    )
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    settings = _settings_with_secrets()
    _configure_logging(settings)
    demo = not settings.page_tokens
    processes = 0 if args.no_worker else settings.worker_process_count
    app = create_app(settings, run_worker=not args.no_worker and processes == 0, demo=demo)
    if processes:
        from pathlib import Path

        from bot.app import sender_ctx
        from bot.runtime.processes import worker_processes_ctx

        app.cleanup_ctx.append(sender_ctx)
        app.cleanup_ctx.append(worker_processes_ctx(processes, Path.cwd()))  # last: they need the others
    app.on_startup.append(_freeze_heap)  # after create_app's contexts have opened (they run first)
    loop = new_event_loop(settings)
    if args.no_worker:
        workers = "none here, run `plusone worker`"
    elif processes:
        workers = f"{processes} process{'es' if processes > 1 else ''} beside this one"
    else:
        workers = "in this process"
    print(
        f"PlusOne listening on http://{settings.host}:{settings.port} (webhook: /webhook; "
        f"event loop: {type(loop).__module__.split('.')[0]}; worker: {workers})",
        file=sys.stderr,
    )
    if demo:
        print(
            "Demo mode: no Page token is configured (PLUSONE_PAGE_TOKENS), so a built-in Graph emulator plays\n"
            "Meta. Try: .venv/bin/plusone simulate message --text 'hi'   (it prints what the shopper received)",
            file=sys.stderr,
        )
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, loop=loop)
    return 0


def new_event_loop(settings: Settings) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind `PLUSONE_EVENT_LOOP` names (uvloop by default)."""
    if settings.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


async def _freeze_heap(_app: object) -> None:
    from bot.runtime.heap import freeze_startup_heap

    freeze_startup_heap()


async def _run_worker(settings: Settings, with_sender: bool = True) -> int:
    from bot.app import DEMO_EMULATOR_FILE, demo_settings, graph_client
    from bot.background import build_dispatcher, start_background
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
    marker = settings.data_dir / DEMO_EMULATOR_FILE
    if not settings.page_tokens and marker.exists():
        # `plusone serve` runs in demo mode beside us: send to its emulator, as it does.
        settings = demo_settings(settings, marker.read_text().strip())
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
        graph.close()
        await redis.aclose()
        await engine.dispose()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    _configure_logging(settings)
    with asyncio.Runner(loop_factory=lambda: new_event_loop(settings)) as runner:
        log.info("event loop: %s", type(runner.get_loop()).__module__.split(".")[0])
        return runner.run(_run_worker(settings, with_sender=not args.no_sender))


def _http_json(method: str, url: str, body: object | None = None, timeout: float = 10) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def _reply_text(message: dict) -> str:
    if "text" in message:
        return str(message["text"])
    payload = message.get("attachment", {}).get("payload", {})
    return str(payload.get("text") or payload.get("template_type") or message)


def _simulate_via_emulator(args: argparse.Namespace, emulator: str) -> int:
    """Demo mode: Meta (the emulator) delivers the shopper's action; then show what the shopper received."""
    _, calls = _http_json("GET", f"{emulator}_emulator/calls?path_contains=/messages")
    seen = max((c["seq"] for c in calls), default=0) if isinstance(calls, list) else 0
    if args.kind == "comment":
        body = {
            "page_id": args.page_id,
            "post_id": args.post_id,
            "user_id": args.user_id,
            "user_name": args.name,
            "message": args.text,
        }
    else:
        body = {"page_id": args.page_id, "psid": args.user_id, "text": args.text}
    status, reply = _http_json("POST", f"{emulator}_emulator/webhooks/{args.kind}", body)
    if status != 200 or not isinstance(reply, dict):
        print(f"plusone simulate: the emulator refused the delivery ({status}): {reply}", file=sys.stderr)
        return 1
    target = reply.get("comment_id") if args.kind == "comment" else args.user_id
    received: list[str] = []
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        time.sleep(0.25)
        _, calls = _http_json("GET", f"{emulator}_emulator/calls?path_contains=/messages")
        received = [
            _reply_text(c["body"].get("message", {}))
            for c in (calls if isinstance(calls, list) else [])
            if c["seq"] > seen
            and c["status"] == 200
            and target in (c["body"].get("recipient", {}).get("id"), c["body"].get("recipient", {}).get("comment_id"))
        ]
        if received:
            break
    print(
        json.dumps(
            {
                "via": emulator,
                "webhook_status": reply.get("status"),
                "shopper": args.user_id,
                "sent": args.text,
                "received": received,
            },
            ensure_ascii=False,
        )
    )
    if not received:
        print(f"(no reply reached the shopper within {args.wait:g}s)", file=sys.stderr)
    return 0 if reply.get("status") == 200 else 1


def cmd_simulate(args: argparse.Namespace) -> int:
    from bot.app import DEMO_EMULATOR_FILE, local_address
    from bot.inbound import webhook_factory as wf

    settings = load_settings()
    marker = settings.data_dir / DEMO_EMULATOR_FILE
    if not args.url and marker.exists():
        return _simulate_via_emulator(args, marker.read_text().strip())
    if settings.app_secret is None:
        print(
            "plusone simulate: no app secret; run `plusone serve` once (it generates one) or set PLUSONE_APP_SECRET",
            file=sys.stderr,
        )
        return 2
    url = args.url or f"http://{local_address(settings.host)}:{settings.port}/webhook"
    if args.kind == "comment":
        payload = wf.comment_delivery(
            page_id=args.page_id, post_id=args.post_id, message=args.text, user_id=args.user_id, user_name=args.name
        )
    else:
        payload = wf.message_delivery(page_id=args.page_id, psid=args.user_id, text=args.text)
    body, headers = wf.signed(payload, settings.app_secret.get_secret_value())
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, reply = response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, reply = exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        print(f"plusone simulate: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(
        json.dumps(
            {"url": url, "status": status, "reply": reply.strip(), "ms": round(elapsed_ms, 1), "sent": payload},
            ensure_ascii=False,
        )
    )
    return 0 if status == 200 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plusone", description="Sell through Facebook comments and Messenger.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web server and a worker on embedded defaults")
    serve.add_argument("--no-worker", action="store_true", help="web only; run workers with `plusone worker`")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run one worker of the consumer group (several may run)")
    worker.add_argument(
        "--no-sender", action="store_true", help="leave the outbox to another process (serve's own workers do)"
    )
    worker.set_defaults(func=cmd_worker)

    simulate = sub.add_parser("simulate", help="sign and post a realistic webhook to a running server")
    simulate.add_argument("kind", choices=["comment", "message"])
    simulate.add_argument("--text", required=True, help="the comment or message text")
    simulate.add_argument("--page-id", default="1000000000001")
    simulate.add_argument("--post-id", default="2000000000001")
    simulate.add_argument("--user-id", default="3000000000001", help="the shopper's id (PSID)")
    simulate.add_argument("--name", default="Chan Tai Man", help="the shopper's name")
    simulate.add_argument(
        "--url",
        help="post the signed webhook to this URL (default: through the demo emulator when `serve` runs in "
        "demo mode, else http://HOST:PORT/webhook from settings)",
    )
    simulate.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the reply (demo mode)")
    simulate.set_defaults(func=cmd_simulate)

    for register in _plugins():
        register(sub)
    return parser


def _plugins() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    """Subcommands owned by other modules (each exposes `register(subparsers)`)."""
    from bot.cli import emulator, faq_test, load, migrate, parse, user

    return [
        parse.register,
        emulator.register,
        load.register,
        user.register,
        faq_test.register,
        migrate.register,
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (2) or the help (0)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"plusone: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Imported only here: Alembic is slow to import, and most commands never meet this.
        from bot.store.migrations import SchemaMismatch

        if not isinstance(exc, SchemaMismatch):
            raise
        # A start found a database it must not migrate; the message says what to do.
        print(f"plusone: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
