"""The `plusone` command line: builds the parser from one module per command and runs the one asked for.

Each command lives in its own module of `bot/cli/` with `register(subparsers)` (its arguments and help)
and the function that runs it. Registering imports only the standard library; a command imports what it
needs (aiohttp, Redis, SQLAlchemy, the emulator) when it runs, so `plusone --help`, `parse`, `faq-test`
and `simulate` start without loading the server. Every command reads its settings through
`config.settings.load_settings`; a bad setting prints one line naming it and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot.cli import demo_shop, draw, emulator, faq_test, load, migrate, page_token, parse, serve, simulate, user, worker

__all__ = ["COMMANDS", "build_parser", "main"]

# In the order `plusone --help` lists them.
COMMANDS = (serve, worker, simulate, demo_shop, parse, emulator, load, user, faq_test, migrate, page_token, draw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plusone", description="Sell through Facebook comments and Messenger.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error (2) or the help (0)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _says_what_to_do(exc):
            raise
        print(f"plusone: {exc}", file=sys.stderr)
        return 2


def _says_what_to_do(exc: Exception) -> bool:
    """A bad setting, or a database a start must not migrate: one line names it and what to do (exit 2)."""
    # Imported only here: pydantic and Alembic are slow to import, and most runs never meet these.
    from config.settings import SettingsError

    if isinstance(exc, SettingsError):
        return True
    from bot.store.migrations import SchemaMismatch

    return isinstance(exc, SchemaMismatch)


if __name__ == "__main__":
    raise SystemExit(main())
