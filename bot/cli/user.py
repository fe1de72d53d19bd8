"""`plusone user add`: create an inbox user (or change their password, role and Pages).

    plusone user add alice --role owner --page 1000000000001 --page 1000000000002
    printf '%s\n' "$PASSWORD" | plusone user add bob --role agent --page 1000000000001 --password-stdin

The password is asked for twice on the terminal, or read from the first line of standard input with
`--password-stdin`; it is stored as an argon2 hash, never in clear. Exit codes: 0 saved; 2 bad
arguments, a short or mismatched password, or a bad setting (one line on stderr, nothing changed). The
inbox's accounts and the database are imported when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

from bot.inbox.roles import ROLES

__all__ = ["main", "register", "run_user_add"]

PROG = "plusone user add"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `user` subcommand (with `add`) to `plusone`'s subparsers."""
    parser = subparsers.add_parser("user", help="manage inbox users", description="Manage inbox users.")
    sub = parser.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = sub.add_parser(
        "add",
        help="create an inbox user, or change their password, role and Pages",
        description="Create an inbox user who sees only the given Pages (or update one: the password, "
        "role and Pages are replaced).",
    )
    add.add_argument("name", metavar="NAME", help="the sign-in name (no spaces)")
    add.add_argument("--role", choices=ROLES, required=True, help="owner: also dead letters and saved replies")
    add.add_argument(
        "--page", dest="pages", metavar="PAGE_ID", action="extend", nargs="+", required=True, help="Page ids"
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=run_user_add)


def _read_password(from_stdin: bool) -> str:
    from bot.inbox.auth import UserError

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ")
    return first


def run_user_add(args: argparse.Namespace) -> int:
    """Run `plusone user add`; returns the exit code."""
    from bot.inbox.auth import UserError
    from config.settings import SettingsError, load_settings, make_private_dir

    try:
        settings = load_settings()
        password = _read_password(args.password_stdin)
        make_private_dir(settings.data_dir)  # before the loop: the SQLite file lives there
        asyncio.run(_add(settings.sqlalchemy_url, args.name, password, args.role, args.pages))
    except (UserError, SettingsError) as exc:
        print(f"{PROG}: {exc}; nothing was changed", file=sys.stderr)
        return 2
    print(f"saved {args.name} ({args.role}) for Page{'s' if len(args.pages) > 1 else ''} {', '.join(args.pages)}")
    return 0


async def _add(url: str, name: str, password: str, role: str, pages: list[str]) -> None:
    from bot.inbox.auth import add_user
    from bot.store.db import create_engine, migrate_schema, session_factory

    engine = await asyncio.to_thread(create_engine, url)
    try:
        await migrate_schema(engine)
        async with session_factory(engine)() as session, session.begin():
            await add_user(session, name, password, role, pages)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """`plusone user` on its own: `argv` is what follows `user` on the command line."""
    from bot.cli.main import main as plusone

    return plusone(["user", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
