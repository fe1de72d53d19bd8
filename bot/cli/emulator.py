"""`plusone emulator`: run the Graph emulator (issue 3) as a local server until interrupted.

    plusone emulator --port 8090 --page "1000000000001:demo-page-token:PlusOne Demo Shop:plusonedemo"

Prints the emulator's base URL on standard output (point PlusOne's graph_url at it) and what it emulates
on standard error. Webhooks it plays or echoes go to --webhook-url, signed with --app-secret. Exit codes:
0 stopped by a signal; 1 cannot listen; 2 bad flags or no app secret. `bot.cli.main` registers the subcommand;
`main` runs it alone (`python -m bot.cli.emulator --port 0`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from bot.emulator.app import GraphEmulator
from bot.emulator.config import (
    DEMO_APP_ID,
    DEMO_PAGE_ID,
    DEMO_PAGE_NAME,
    DEMO_PAGE_TOKEN,
    DEMO_PAGE_USERNAME,
    EmulatedPage,
    EmulatorConfig,
)
from config.settings import SettingsError, load_settings

__all__ = ["main", "parse_page", "register", "run_emulator"]

PROG = "plusone emulator"
DEMO_PAGE = f"{DEMO_PAGE_ID}:{DEMO_PAGE_TOKEN}:{DEMO_PAGE_NAME}:{DEMO_PAGE_USERNAME}"


def parse_page(value: str) -> tuple[str, EmulatedPage]:
    """`PAGE_ID:TOKEN[:NAME[:USERNAME]]` → (page id, page); the name may hold spaces, not colons."""
    parts = value.split(":", 3)
    if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
        raise argparse.ArgumentTypeError(f"expected PAGE_ID:TOKEN[:NAME[:USERNAME]], got {value!r}")
    page_id, token = parts[0].strip(), parts[1].strip()
    if not page_id.isdigit():
        raise argparse.ArgumentTypeError(f"a Page id is digits, got {page_id!r}")
    name = parts[2].strip() if len(parts) > 2 and parts[2].strip() else f"Page {page_id}"
    username = parts[3].strip() if len(parts) > 3 else ""
    return page_id, EmulatedPage(token=token, name=name, username=username)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {port}")
    return port


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `emulator` subcommand to `plusone`'s subparsers."""
    parser = subparsers.add_parser(
        "emulator",
        help="run a local Graph API emulator (Send API, comments, live videos, webhooks) for tests and the demo",
        description="Answer like Meta's Graph API for the calls PlusOne makes, enforce Meta's messaging rules, "
        "record every call (GET /_emulator/calls), play Meta's side of the webhook, and play live videos "
        "(POST /_emulator/live_videos, /_emulator/live_comments, /_emulator/live_streams/drop) with their "
        "Live Comments stream and comments edge.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=8090)
    parser.add_argument(
        "--page",
        action="append",
        type=parse_page,
        metavar="PAGE_ID:TOKEN[:NAME[:USERNAME]]",
        help=f"a Page and its access token (repeatable; default {DEMO_PAGE!r})",
    )
    parser.add_argument("--app-id", help=f"the app id in echoes (default: settings' app_id, else {DEMO_APP_ID})")
    parser.add_argument("--app-secret", help="checks appsecret_proof and signs webhooks (default: from settings)")
    parser.add_argument("--webhook-url", help="our server's webhook (default: http://HOST:PORT/webhook from settings)")
    parser.add_argument("--no-echoes", action="store_true", help="do not deliver message echoes after sends")
    parser.set_defaults(func=run_emulator)


def _build_config(args: argparse.Namespace) -> EmulatorConfig | str:
    """The emulator's configuration, or the reason the flags cannot make one."""
    pairs = args.page or [parse_page(DEMO_PAGE)]
    pages = dict(pairs)
    if len(pages) != len(pairs):
        return "the same Page id is given twice"
    if len({page.token for page in pages.values()}) != len(pages):
        return "each Page needs its own token"
    settings = load_settings()
    app_secret = args.app_secret or (settings.app_secret.get_secret_value() if settings.app_secret else None)
    if not app_secret:
        return "no app secret; pass --app-secret, set PLUSONE_APP_SECRET, or run `plusone serve` once to generate one"
    # The server's own address: 0.0.0.0 binds every interface but is not where to send.
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return EmulatorConfig(
        pages=pages,
        app_id=args.app_id or settings.app_id or DEMO_APP_ID,
        app_secret=app_secret,
        webhook_url=args.webhook_url or f"http://{host}:{settings.port}/webhook",
        send_echoes=not args.no_echoes,
    )


async def _serve(config: EmulatorConfig, host: str, port: int) -> int:
    emulator = GraphEmulator(config)
    try:
        base_url = await emulator.start(host, port)
    except OSError as exc:
        print(f"{PROG}: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(base_url, flush=True)
    pages = ", ".join(f"{page_id} ({page.name})" for page_id, page in config.pages.items())
    print(
        f"PlusOne Graph emulator on {base_url} for {pages}; webhooks to {config.webhook_url}; "
        f"recorded calls at {base_url}_emulator/calls",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await emulator.stop()
    return 0


def run_emulator(args: argparse.Namespace) -> int:
    """Run `plusone emulator`; returns the exit code."""
    try:
        config = _build_config(args)
    except (argparse.ArgumentTypeError, SettingsError) as exc:
        config = str(exc)
    if isinstance(config, str):
        print(f"{PROG}: {config}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(config, args.host, args.port))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`plusone emulator` on its own: `argv` is what follows `emulator` on the command line."""
    from bot.cli.main import main as plusone

    return plusone(["emulator", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
