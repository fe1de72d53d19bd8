"""Alembic migrations for every SQL table, run by the program itself (no alembic.ini to find).

Adapter module. `upgrade(engine)` brings a SQLite or PostgreSQL database to the newest revision; `plusone
serve`, `worker`, `load`, `user` and `migrate` call it at start. Several processes may start together:
the whole upgrade runs in one transaction that first takes a lock (PostgreSQL: an advisory lock; SQLite:
the write lock `BEGIN IMMEDIATE` takes), so the others wait and then find the database current.

A database made by an older PlusOne with `create_all` (tables, no `alembic_version`) gets the tables
it lacks, as `create_all` gave them, and is stamped as current when its tables then match the models;
otherwise `upgrade` refuses with the differences and what to do (`SchemaMismatch`).

A new table or column needs a revision: `python -m bot.store.migrations new "what changed"` writes one by
comparing the models with a scratch database migrated to the current head (tests/test_migrations.py
fails until it exists).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

MIGRATIONS_DIR = Path(__file__).resolve().parent

# Every module that declares `table=True` models: importing them completes SQLModel.metadata.
# tests/test_migrations.py fails when a module with tables is missing here.
TABLE_MODULES = (
    "bot.store.tables",
    "bot.inbox.tables",
    "carts.tables",
    "carts.order_tables",
    "carts.payment_tables",
    "carts.coupon_tables",
    "crm_bridge.tables",
    "crm_bridge.segment_tables",
    "crm_bridge.journey_tables",
    "crm_bridge.journey_outcome_tables",
)

# pg_advisory_xact_lock key: any constant of our own ("plusone" as 7 bytes, big-endian).
_PG_LOCK_KEY = int.from_bytes(b"plusone", "big")
VERSION_TABLE = "alembic_version"


class SchemaMismatch(Exception):
    """The database has PlusOne tables but no migration history, and they differ from the models."""


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None  # the revision found (None: empty database, or stamped from create_all)
    after: str
    stamped: bool = False  # an unversioned database whose tables matched was marked as current

    def describe(self) -> str:
        if self.stamped:
            return f"existing tables match the models; marked as revision {self.after}"
        if self.before == self.after:
            return f"already at the newest revision {self.after}"
        return f"upgraded from {self.before or 'an empty database'} to {self.after}"


def target_metadata() -> MetaData:
    """SQLModel's metadata with every PlusOne table registered."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return SQLModel.metadata


def alembic_config() -> Config:
    """Alembic's configuration in code: the scripts ship inside this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Revision files named by date, so `ls versions/` reads in order.
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def load_scripts(config: Config | None = None) -> ScriptDirectory:
    """The revision scripts, all read now: call it in a thread (it reads files), then migrate on the loop."""
    script = ScriptDirectory.from_config(config or alembic_config())
    script.revision_map.get_current_head()  # loads every revision module
    return script


def context_options(connection: Connection) -> dict[str, Any]:
    """The options every migration context gets (env.py's too), so runs and comparisons agree."""
    return {
        "target_metadata": target_metadata(),
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        "render_as_batch": connection.dialect.name == "sqlite",
        "compare_type": True,
        "compare_server_default": False,
    }


def take_lock(connection: Connection) -> None:
    """Serialise concurrent migrators for the rest of the transaction (SQLite: BEGIN IMMEDIATE did it)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def differences(connection: Connection) -> list[Any]:
    """What autogenerate would change to make the database match the models ([] when they agree)."""
    context = MigrationContext.configure(connection, opts=context_options(connection))
    return compare_metadata(context, target_metadata())


def describe_differences(diffs: Iterable[Any]) -> str:
    return "; ".join(_describe(diff) for diff in diffs)


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column modifications come as a list of tuples
        return ", ".join(_describe(item) for item in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return f"{kind} {diff[1].name}"
    if kind in ("add_column", "remove_column"):
        return f"{kind} {diff[2]}.{diff[3].name}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return f"{kind} {diff[1].name}"
    if kind.startswith("modify_"):
        return f"{kind} {diff[2]}.{diff[3]}"
    return str(kind)


def _upgrade_sync(connection: Connection, script: ScriptDirectory, config: Config) -> UpgradeResult:
    take_lock(connection)
    head = script.get_current_head()
    assert head is not None, "bot/store/migrations/versions has no revision"
    names = set(inspect(connection).get_table_names())
    ours = set(target_metadata().tables)
    if VERSION_TABLE not in names and names & ours:
        # Before migrations, every start ran create_all, which adds missing tables and never alters one:
        # do that once more (a newer version knows more tables), then the rest must match to be stamped.
        metadata = target_metadata()
        metadata.create_all(connection, tables=[table for name, table in metadata.tables.items() if name not in names])
        diffs = differences(connection)
        if diffs:
            raise SchemaMismatch(
                "the database has PlusOne tables but no migration history (made by `create_all` before "
                f"migrations existed), and they differ from this version's models: {describe_differences(diffs)}. "
                "Either start from an empty database (`plusone migrate` creates every table), or change the "
                "tables to match and run `plusone migrate --stamp` to record them as current"
            )
        MigrationContext.configure(connection, opts=context_options(connection)).stamp(script, head)
        return UpgradeResult(before=None, after=head, stamped=True)

    before = MigrationContext.configure(connection).get_current_revision()
    if before is not None and before not in {known.revision for known in script.walk_revisions()}:
        raise SchemaMismatch(
            f"the database is at revision {before}, which this version of PlusOne does not know: a newer "
            "version migrated it. Run that version, or restore the backup taken before it"
        )

    def steps(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs(head, revision)  # the steps, as `alembic upgrade head` computes them

    with EnvironmentContext(config, script, fn=steps, destination_rev=head) as env:
        env.configure(connection=connection, **context_options(connection))
        # The caller's transaction holds the lock: alembic runs inside it and commits nothing itself.
        with env.begin_transaction():
            env.run_migrations()
    return UpgradeResult(before=before, after=head)


def _stamp_sync(connection: Connection, script: ScriptDirectory) -> str:
    take_lock(connection)
    head = script.get_current_head()
    assert head is not None
    MigrationContext.configure(connection, opts=context_options(connection)).stamp(script, head)
    return head


@functools.cache
def _shipped_scripts() -> tuple[Config, ScriptDirectory]:
    # Read once per process: the revisions that ship cannot change while it runs.
    config = alembic_config()
    return config, load_scripts(config)


async def upgrade(engine: AsyncEngine) -> UpgradeResult:
    """Bring the database to the newest revision, in one transaction (see the module docstring)."""
    config, script = await asyncio.to_thread(_shipped_scripts)
    async with engine.begin() as conn:
        return await conn.run_sync(_upgrade_sync, script, config)


async def stamp_head(engine: AsyncEngine) -> str:
    """Record the database as at the newest revision without changing its tables (after a manual fix)."""
    _, script = await asyncio.to_thread(_shipped_scripts)
    async with engine.begin() as conn:
        return await conn.run_sync(_stamp_sync, script)


async def current_differences(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(differences)
