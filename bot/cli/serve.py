"""`plusone serve`: the web server, with the stream workers in this process or beside it.

    plusone serve              # web, worker processes as PLUSONE_WORKER_PROCESSES says, embedded Redis
    plusone serve --no-worker  # web only; run workers with `plusone worker`

With no Page token configured it runs in demo mode: a built-in Graph emulator plays Meta. The first run
generates the app secret and verify token into the data dir and prints them once. Only one `serve` runs
on a data dir (`bot.runtime.data_dir_lock`). Exit codes: 0 stopped by a signal; 1 another `serve` holds
the data dir; 2 a bad setting or a database it must not migrate. aiohttp and the application are
imported when the command runs, not when `plusone` builds its parser.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["register", "run_serve"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `serve` subcommand to `plusone`'s subparsers."""
    serve = subparsers.add_parser("serve", help="run the web server and a worker on embedded defaults")
    serve.add_argument("--no-worker", action="store_true", help="web only; run workers with `plusone worker`")
    serve.set_defaults(func=run_serve)


def _settings_with_secrets(settings: Settings) -> Settings:
    from config.settings import ensure_secrets

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


def run_serve(args: argparse.Namespace) -> int:
    """Run `plusone serve` until a signal stops it; returns the exit code."""
    from bot.runtime.data_dir_lock import DataDirLock, DataDirLocked
    from config.settings import load_settings

    settings = load_settings()
    try:
        # Before anything touches the data dir (secrets, Redis, the emulator's marker, the database); held
        # until the process ends.
        lock = DataDirLock(settings.data_dir.resolve()).acquire()
    except DataDirLocked as exc:
        print(f"plusone serve: {exc}", file=sys.stderr)
        return 1
    try:
        return _serve(args, _settings_with_secrets(settings))
    finally:
        lock.release()


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from bot.app import create_app
    from bot.cli.startup import configure_logging, new_event_loop, set_clock

    configure_logging(settings)
    set_clock(settings)
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


async def _freeze_heap(_app: object) -> None:
    from bot.runtime.heap import freeze_startup_heap

    freeze_startup_heap()
