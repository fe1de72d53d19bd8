"""`plusone migrate`: bring the database (SQLite or PostgreSQL, from the settings) to the newest revision.

    plusone migrate            # upgrade to head; prints what it did
    plusone migrate --check    # exit 1 if the database is not at head, change nothing
    plusone migrate --stamp    # record a database whose tables you fixed by hand as current

`serve`, `worker`, `load` and `user add` migrate at start too, so this is for deploys that migrate in a
step of their own before starting several processes, and for checking. Exit codes: 0 done (or current);
1 `--check` found it behind; 2 a bad setting or a database that cannot be migrated (a message names
what to do). Alembic and SQLAlchemy are imported when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["main", "register", "run_migrate"]

PROG = "plusone migrate"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `migrate` subcommand to `plusone`'s subparsers."""
    parser = subparsers.add_parser(
        "migrate",
        help="create or upgrade the database's tables to this version (Alembic migrations)",
        description="Upgrade the database named by PLUSONE_DATABASE_URL (default: SQLite in the data dir) "
        "to the newest migration. A database made before migrations existed is recorded as current when its "
        "tables match.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="only report; exit 1 if an upgrade is due")
    action.add_argument(
        "--stamp", action="store_true", help="record the database as current without changing any table"
    )
    parser.set_defaults(func=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    """Run `plusone migrate`; returns the exit code."""
    from sqlalchemy.exc import DBAPIError

    from bot.store.migrations import SchemaMismatch
    from config.settings import SettingsError, load_settings, make_private_dir

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    make_private_dir(settings.data_dir)  # before the loop: the SQLite file lives there
    try:
        return asyncio.run(_migrate(settings.sqlalchemy_url, check=args.check, stamp=args.stamp))
    except SchemaMismatch as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except (OSError, ConnectionError) as exc:  # no server, refused, unknown host
        print(f"{PROG}: cannot reach the database: {exc}", file=sys.stderr)
        return 2
    except DBAPIError as exc:  # reached, but refused: a wrong password, no such database
        print(f"{PROG}: the database refused: {str(exc.orig).splitlines()[0]}", file=sys.stderr)
        return 2


async def _migrate(url: str, *, check: bool, stamp: bool) -> int:
    from bot.store.db import create_engine
    from bot.store.migrations import stamp_head, upgrade

    engine = await asyncio.to_thread(create_engine, url)  # in a thread: it resolves the SQLite path
    try:
        if check:
            return await _check(engine)
        if stamp:
            print(f"recorded the database as revision {await stamp_head(engine)}")
            return 0
        print((await upgrade(engine)).describe())
        return 0
    finally:
        await engine.dispose()


async def _check(engine: AsyncEngine) -> int:
    from alembic.runtime.migration import MigrationContext

    from bot.store.migrations import load_scripts

    head = (await asyncio.to_thread(load_scripts)).get_current_head()
    async with engine.connect() as conn:
        current = await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    if current == head:
        print(f"at the newest revision {head}")
        return 0
    print(f"at revision {current or '(none)'}; the newest is {head}: run `plusone migrate`")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """`plusone migrate` on its own: `argv` is what follows `migrate` on the command line."""
    from bot.cli.main import main as plusone

    return plusone(["migrate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
