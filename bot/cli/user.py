"""`plusone user`: inbox users: add, list, set, disable, remove.

    plusone user add alice --role owner --page 1000000000001 --page 1000000000002
    printf '%s\n' "$PASSWORD" | plusone user add bob --role agent --page 1000000000001 --password-stdin
    plusone user list
    plusone user set bob --page 1000000000002 --role owner --password      # any of them; or --sign-out
    plusone user disable bob · plusone user set bob --enable · plusone user remove bob

A password is asked for twice on the terminal, or read from the first line of standard input with
`--password-stdin`; it is stored as an argon2 hash, never in clear. A new password, role or Pages, `disable`
and `set --sign-out` end the user's open sessions at once; `remove` deletes the user. Exit codes: 0 done;
2 bad arguments, no such user, a short or mismatched password, or a bad setting (one line on stderr,
nothing changed). The inbox's accounts and the database are imported when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.inbox.roles import ROLES

__all__ = ["main", "register", "run_user_add"]

PROG = "plusone user"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `user` subcommand (add, list, set, disable, remove) to `plusone`'s subparsers."""
    parser = subparsers.add_parser("user", help="manage inbox users", description="Manage inbox users.")
    sub = parser.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = sub.add_parser(
        "add",
        help="create an inbox user, or change their password, role and Pages",
        description="Create an inbox user who sees only the given Pages (or update one: the password, "
        "role and Pages are replaced, and their open sessions end).",
    )
    add.add_argument("name", metavar="NAME", help="the sign-in name (no spaces)")
    add.add_argument("--role", choices=ROLES, required=True, help="owner: also dead letters and saved replies")
    add.add_argument(
        "--page", dest="pages", metavar="PAGE_ID", action="extend", nargs="+", required=True, help="Page ids"
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=run_user_add)

    listing = sub.add_parser("list", help="list inbox users", description="List inbox users, their role and Pages.")
    listing.set_defaults(func=run_user_list)

    change = sub.add_parser(
        "set",
        help="change a user's password, role or Pages, enable them, or end their sessions",
        description="Change what is given. A new password, role or Pages, and --sign-out, end the user's "
        "open sessions.",
    )
    change.add_argument("name", metavar="NAME")
    change.add_argument("--role", choices=ROLES)
    change.add_argument("--page", dest="pages", metavar="PAGE_ID", action="extend", nargs="+", help="the Pages, all")
    secret = change.add_mutually_exclusive_group()
    secret.add_argument("--password", action="store_true", help="ask for a new password")
    secret.add_argument("--password-stdin", action="store_true", help="read a new password from standard input")
    change.add_argument("--enable", action="store_true", help="let a disabled user sign in again")
    change.add_argument("--sign-out", action="store_true", help="end the user's sessions everywhere")
    change.set_defaults(func=run_user_set)

    disable = sub.add_parser("disable", help="stop a user signing in; end their sessions")
    disable.add_argument("name", metavar="NAME")
    disable.set_defaults(func=run_user_disable)

    remove = sub.add_parser("remove", help="delete a user; end their sessions")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(func=run_user_remove)


def _read_password(from_stdin: bool) -> str:
    from bot.inbox.auth import UserError

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ")
    return first


def _run(
    action: str, work: Callable[[Any], Awaitable[Any]], before: Callable[[], Any] | None = None
) -> tuple[bool, Any]:
    """Run `before()` (reading a password), then `work(session)` in one transaction on the configured
    database: (True, its result), or (False, None) once a refusal is printed in one line."""
    from bot.inbox.auth import UserError
    from config.settings import SettingsError, load_settings, make_private_dir

    try:
        settings = load_settings()
        if before is not None:
            before()
        make_private_dir(settings.data_dir)  # before the loop: the SQLite file lives there
        return True, asyncio.run(_in_transaction(settings.sqlalchemy_url, work))
    except (UserError, SettingsError) as exc:
        print(f"{PROG} {action}: {exc}; nothing was changed", file=sys.stderr)
        return False, None


async def _in_transaction(url: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from bot.store.db import create_engine, migrate_schema, session_factory

    engine = await asyncio.to_thread(create_engine, url)
    try:
        await migrate_schema(engine)
        async with session_factory(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def run_user_add(args: argparse.Namespace) -> int:
    """Run `plusone user add`; returns the exit code."""
    from bot.inbox.auth import add_user

    password: list[str] = []
    ok, _ = _run(
        "add",
        lambda session: add_user(session, args.name, password[0], args.role, args.pages),
        before=lambda: password.append(_read_password(args.password_stdin)),
    )
    if not ok:
        return 2
    print(f"saved {args.name} ({args.role}) for Page{'s' if len(args.pages) > 1 else ''} {', '.join(args.pages)}")
    return 0


def run_user_list(args: argparse.Namespace) -> int:
    from bot.inbox.users import list_users

    ok, users = _run("list", list_users)
    if not ok:
        return 2
    for user in users:
        state = "" if user.active else " (disabled)"
        print(f"{user.name}\t{user.role}{state}\t{' '.join(user.pages)}")
    if not users:
        print("no inbox users yet: plusone user add NAME --role owner --page PAGE_ID", file=sys.stderr)
    return 0


def run_user_set(args: argparse.Namespace) -> int:
    from bot.inbox.users import change_user

    if not (args.role or args.pages or args.password or args.password_stdin or args.enable or args.sign_out):
        print(
            f"{PROG} set: nothing to change: give --role, --page, --password, --enable or --sign-out",
            file=sys.stderr,
        )
        return 2
    password: list[str | None] = [None]

    def read() -> None:
        if args.password or args.password_stdin:
            password[0] = _read_password(args.password_stdin)

    ok, _ = _run(
        "set",
        lambda session: change_user(
            session,
            args.name,
            password=password[0],
            role=args.role,
            pages=args.pages,
            active=True if args.enable else None,
            sign_out=args.sign_out,
        ),
        before=read,
    )
    if not ok:
        return 2
    print(f"changed {args.name}")
    return 0


def run_user_disable(args: argparse.Namespace) -> int:
    from bot.inbox.users import change_user

    ok, _ = _run("disable", lambda session: change_user(session, args.name, active=False))
    if not ok:
        return 2
    print(f"disabled {args.name}: their sessions have ended")
    return 0


def run_user_remove(args: argparse.Namespace) -> int:
    from bot.inbox.users import remove_user

    ok, _ = _run("remove", lambda session: remove_user(session, args.name))
    if not ok:
        return 2
    print(f"removed {args.name}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`plusone user` on its own: `argv` is what follows `user` on the command line."""
    from bot.cli.main import main as plusone

    return plusone(["user", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
