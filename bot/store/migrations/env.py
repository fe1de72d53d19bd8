"""Alembic's environment for the `alembic` API (revisions, `python -m bot.store.migrations`), async engines.

The program itself migrates through `bot.store.migrations.upgrade`, which shares these options. Here, as in
Alembic's async template: a connection handed in `config.attributes["connection"]` is used as it is;
otherwise an engine is made for `config.attributes["url"]` (default: the settings' database) and the
migrations run on it through `connection.run_sync`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.migrations import context_options, take_lock

config = context.config


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **_offline_options())
    with context.begin_transaction():
        context.run_migrations()


def _offline_options() -> dict:
    from bot.store.migrations import target_metadata

    return {"target_metadata": target_metadata(), "compare_type": True}


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, **context_options(connection))
    with context.begin_transaction():
        take_lock(connection)
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    from bot.store.db import create_engine

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = config.attributes.get("url")
    if url is None:
        from config.settings import load_settings

        url = load_settings().sqlalchemy_url
    asyncio.run(run_async_migrations(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
