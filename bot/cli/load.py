"""`plusone load FILE`: validate a shop file and apply it to the database in one transaction (issue 5).

    plusone load config/samples/demo_shop.yaml

Prints the shop and one line per kind (products, campaigns) with what was created, updated, left
unchanged and deactivated; loading the same file again reports nothing created or updated. Exit codes:
0 loaded; 1 the database refused it (a stock below what is already held or sold), nothing changed;
2 a missing or invalid file (one line on stderr naming the file, line and field) or a bad setting,
nothing changed. `bot.cli.main` registers the subcommand; `main` runs it alone
(`python -m bot.cli.load shop.yaml`). The database and the shop file loader are imported when it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store.shop import ShopChanges
    from config.shop_file import ShopConfig

__all__ = ["main", "register", "run_load"]

PROG = "plusone load"


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `load` subcommand to `plusone`'s subparsers."""
    parser = subparsers.add_parser(
        "load",
        help="load a shop file (shop, products with stock, campaigns) into the database",
        description="Validate a shop file (YAML or JSON) and make the database match it in one transaction: "
        "products by code, campaigns by key. Products left out become inactive, campaigns left out end. "
        "Held and sold stock are kept; a stock below them is refused.",
    )
    parser.add_argument("file", metavar="FILE", help="the shop file, like config/samples/demo_shop.yaml")
    parser.set_defaults(func=run_load)


def run_load(args: argparse.Namespace) -> int:
    """Run `plusone load`; returns the exit code."""
    from carts.catalog import ShopApplyError
    from config.catalog_file import CatalogFileError
    from config.settings import SettingsError, load_settings, make_private_dir
    from config.shop_file import load_shop_file

    try:
        shop = load_shop_file(args.file)
    except CatalogFileError as exc:  # one line naming the file, line and field
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    # Before the event loop: both touch the disk (the default SQLite file lives in the data dir).
    make_private_dir(settings.data_dir)
    url = settings.sqlalchemy_url
    try:
        changes = asyncio.run(_apply(url, shop))
    except ShopApplyError as exc:
        print(f"{PROG}: {exc}; nothing was changed", file=sys.stderr)
        return 1
    info = shop.shop
    print(f"{info.name} ({info.currency}, {info.timezone}) from {shop.source}")
    for line in changes.summary_lines():
        print(line)
    return 0


async def _apply(url: str, shop: ShopConfig) -> ShopChanges:
    from bot.store.db import create_engine, migrate_schema, session_factory
    from bot.store.shop import apply_shop

    engine = await asyncio.to_thread(create_engine, url)  # in a thread, as the server does: it resolves paths
    try:
        await migrate_schema(engine)
        async with session_factory(engine)() as session, session.begin():
            return await apply_shop(session, shop)  # an exception rolls the whole load back
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """`plusone load` on its own: `argv` is what follows `load` on the command line."""
    from bot.cli.main import main as plusone

    return plusone(["load", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
