"""Migrations: they create every table the models declare, on SQLite and PostgreSQL (whichever this run uses).

When a test here fails after you changed a model, add a revision: `python -m bot.store.migrations new "what"`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.runtime.environment import EnvironmentContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.cli.main import main as plusone
from bot.store.db import create_engine, create_schema
from bot.store.migrations import (
    TABLE_MODULES,
    SchemaMismatch,
    alembic_config,
    context_options,
    current_differences,
    load_scripts,
    upgrade,
)
from tests.conftest import PAGE_ID, empty_database_url, wait_until
from tests.test_bot.stack import start_stack
from tests.test_bot.test_handlers.test_comments import private_replies, seed_shop

ROOT = Path(__file__).resolve().parent.parent
HEAD = load_scripts().get_current_head()


@pytest.fixture
async def empty(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await asyncio.to_thread(create_engine, empty_database_url(tmp_path))
    yield engine
    await engine.dispose()


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def version(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()


def test_every_module_with_tables_is_imported_for_the_migrations() -> None:
    declared = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in ("bot", "carts", "crm_bridge", "config", "parsers")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"^class \w+\(.*\btable=True\b", path.read_text(encoding="utf-8"), re.MULTILINE)
    }
    assert declared, "no table modules found: the search itself is broken"
    missing = sorted(declared - set(TABLE_MODULES))
    assert not missing, f"add to bot.store.migrations.TABLE_MODULES: {missing}"


async def test_an_empty_database_migrated_to_head_matches_the_models(empty: AsyncEngine) -> None:
    result = await upgrade(empty)
    assert (result.before, result.after, result.stamped) == (None, HEAD, False)
    assert await tables(empty) == set(SQLModel.metadata.tables) | {"alembic_version"}
    # The drift check: a model changed without a revision shows up here.
    differences = await current_differences(empty)
    hint = 'run `python -m bot.store.migrations new "..."`'
    assert differences == [], f"models and migrations differ; {hint}: {differences}"
    again = await upgrade(empty)
    assert (again.before, again.after) == (HEAD, HEAD)


async def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    url = empty_database_url(tmp_path)
    engines = [await asyncio.to_thread(create_engine, url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(upgrade(engine) for engine in engines))
        assert sorted(result.before or "" for result in results) == ["", HEAD, HEAD]
        assert await version(engines[0]) == HEAD
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_database_made_by_create_all_is_stamped_when_it_matches(empty: AsyncEngine) -> None:
    await create_schema(empty)
    result = await upgrade(empty)
    assert (result.stamped, result.after) == (True, HEAD)
    assert await version(empty) == HEAD
    assert await current_differences(empty) == []


async def test_a_database_made_by_create_all_gets_the_tables_it_lacked(empty: AsyncEngine) -> None:
    # An older PlusOne knew fewer tables: create_all at its start made only those.
    older = [table for name, table in SQLModel.metadata.tables.items() if not name.startswith("inbox_")]
    async with empty.begin() as conn:
        await conn.run_sync(lambda sync: SQLModel.metadata.create_all(sync, tables=older))
    result = await upgrade(empty)
    assert result.stamped
    assert {"inbox_user", "inbox_thread"} <= await tables(empty)


async def test_a_create_all_database_that_differs_is_refused_unchanged(empty: AsyncEngine) -> None:
    await create_schema(empty)
    async with empty.begin() as conn:
        await conn.execute(text("ALTER TABLE product ADD COLUMN legacy_flag INTEGER"))
        await conn.execute(text("DROP TABLE inbox_note"))
    before = await tables(empty)
    with pytest.raises(SchemaMismatch) as refused:
        await upgrade(empty)
    message = str(refused.value)
    assert "product.legacy_flag" in message and "plusone migrate --stamp" in message
    assert await tables(empty) == before  # neither the missing table nor a version row was written


def _migrate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, *args: str) -> int:
    monkeypatch.setenv("PLUSONE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PLUSONE_DATABASE_URL", url)
    return plusone(["migrate", *args])


def test_plusone_migrate_upgrades_checks_and_stamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = empty_database_url(tmp_path)
    assert _migrate(monkeypatch, tmp_path, url, "--check") == 1
    assert "run `plusone migrate`" in capsys.readouterr().out
    assert _migrate(monkeypatch, tmp_path, url) == 0
    assert capsys.readouterr().out.strip() == f"upgraded from an empty database to {HEAD}"
    assert _migrate(monkeypatch, tmp_path, url) == 0
    assert capsys.readouterr().out.strip() == f"already at the newest revision {HEAD}"
    assert _migrate(monkeypatch, tmp_path, url, "--check") == 0
    assert _migrate(monkeypatch, tmp_path, url, "--stamp") == 0
    assert capsys.readouterr().out.strip().endswith(f"recorded the database as revision {HEAD}")


def test_plusone_migrate_names_a_database_it_must_not_touch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = empty_database_url(tmp_path)

    async def legacy() -> None:
        engine = await asyncio.to_thread(create_engine, url)
        await create_schema(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE crm_cursor"))
            await conn.execute(text("CREATE TABLE crm_cursor (id INTEGER PRIMARY KEY)"))
        await engine.dispose()

    asyncio.run(legacy())
    assert _migrate(monkeypatch, tmp_path, url) == 2
    err = capsys.readouterr().err
    assert err.startswith("plusone migrate: the database has PlusOne tables but no migration history")
    assert "crm_cursor" in err and err.count("\n") == 1
    assert _migrate(monkeypatch, tmp_path, url, "--check") == 1  # still unversioned: nothing was written


def test_plusone_migrate_on_a_database_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _migrate(monkeypatch, tmp_path, "postgresql://nobody:x@127.0.0.1:9/none?ssl=disable") == 2
    assert capsys.readouterr().err.startswith("plusone migrate: cannot reach the database: ")


async def test_the_server_migrates_an_empty_database_and_takes_orders(
    aiohttp_client: Any, tmp_path: Path, redis_server: Any
) -> None:
    """`plusone serve` on a brand-new database: it migrates at start, then a comment order goes through."""
    async for stack in start_stack(aiohttp_client, tmp_path, redis_server, database_url=empty_database_url(tmp_path)):
        async with stack.sessions() as session:
            assert (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar_one() == HEAD
        await seed_shop(stack.sessions)
        reply = await stack.emulator.deliver_comment(
            PAGE_ID, "2000000000001", "3000000000301", "A+1", user_name="Lee", comment_id="2000000000001_950"
        )
        assert reply["status"] == 200

        async def replied(stack: Any = stack) -> bool:
            return len(await private_replies(stack)) == 1

        await wait_until(replied, what="the private reply on a freshly migrated database")
        [call] = await private_replies(stack)
        assert "A Rose bouquet ×1 added" in call["body"]["message"]["attachment"]["payload"]["text"]


async def test_a_database_from_a_newer_version_is_refused_unchanged(empty: AsyncEngine) -> None:
    await upgrade(empty)
    async with empty.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeed0000'"))
    with pytest.raises(SchemaMismatch, match="revision f00dfeed0000, which this version of PlusOne does not know"):
        await upgrade(empty)
    assert await version(empty) == "f00dfeed0000"


def test_plusone_migrate_names_a_database_that_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = empty_database_url(tmp_path)
    if not url.startswith("postgresql"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"  # SQLite: a file it cannot open
    else:
        url = url.rsplit("/", 1)[0] + "/no_such_database?ssl=disable"
    assert _migrate(monkeypatch, tmp_path, url) == 2
    err = capsys.readouterr().err
    assert err.startswith("plusone migrate: the database refused: ") and err.count("\n") == 1


def _upgrade_to(connection: Any, revision: str, config: Any, script: Any) -> None:
    with EnvironmentContext(
        config, script, fn=lambda rev, _ctx: script._upgrade_revs(revision, rev), destination_rev=revision
    ) as env:
        env.configure(connection=connection, **context_options(connection))
        with env.begin_transaction():
            env.run_migrations()


async def test_shared_saved_replies_become_each_pages_own(empty: AsyncEngine) -> None:
    config = await asyncio.to_thread(alembic_config)
    script = await asyncio.to_thread(load_scripts, config)
    async with empty.begin() as conn:
        await conn.run_sync(_upgrade_to, "ee8d985535b2", config, script)  # before saved replies were per Page
        await conn.execute(
            text(
                "INSERT INTO inbox_user (id, name, password_hash, role, active, created_at) VALUES "
                "(1, 'a', 'x', 'owner', true, '2026-01-01'), (2, 'b', 'x', 'owner', true, '2026-01-01')"
            )
        )
        await conn.execute(
            text("INSERT INTO inbox_user_page (user_id, page_id) VALUES (1, '101'), (1, '102'), (2, '102')")
        )
        await conn.execute(
            text("INSERT INTO inbox_saved_reply (title, text, created_at) VALUES ('Hours', 'At 10.', '2026-01-01')")
        )
    await upgrade(empty)
    async with empty.connect() as conn:
        rows = (await conn.execute(text("SELECT page_id, title, text FROM inbox_page_saved_reply"))).all()
        epochs = (await conn.execute(text("SELECT session_epoch FROM inbox_user"))).scalars().all()
    assert sorted(map(tuple, rows)) == [("101", "Hours", "At 10."), ("102", "Hours", "At 10.")]
    assert epochs == [0, 0]
