"""`plusone` starts fast: its help, `parse`, `faq-test` and `simulate` load none of the server's libraries.

Each case runs the real command under `python -X importtime`, which names every module imported (on
standard error), and fails if aiohttp, Redis, SQLAlchemy, SQLModel, Alembic or python-facebook-api shows
up: a module-level import in a command module, or in what it imports, would bring them back.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from bot.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "config" / "samples" / "demo_shop.yaml"
HEAVY = frozenset({"aiohttp", "redis", "sqlalchemy", "sqlmodel", "alembic", "pyfacebook", "facebook"})
COMMANDS = (
    "serve",
    "worker",
    "simulate",
    "demo-shop",
    "parse",
    "emulator",
    "load",
    "user",
    "faq-test",
    "migrate",
    "page-token",
    "draw",
)


def imported_packages(*args: str, cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `plusone ARGS` under -X importtime; the process and the top-level packages it imported."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLUSONE_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.cli.main", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Lines read "import time: self [us] | cumulative | name", the name indented by its nesting.
    packages = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    packages.discard("imported package")  # the header line
    return done, packages


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["simulate", "--help"],
        ["parse", "--codes", "A,B", "A+1"],
        ["faq-test", "--shop", str(SAMPLE), "hours", "真人"],
    ],
    ids=["help", "simulate-help", "parse", "faq-test"],
)
def test_light_commands_load_no_server_library(tmp_path: Path, args: list[str]) -> None:
    done, packages = imported_packages(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "argparse" in packages  # the import-time report was read
    assert packages.isdisjoint(HEAVY), sorted(packages & HEAVY)


def test_draw_verify_loads_no_server_library(tmp_path: Path) -> None:
    (tmp_path / "entrants.txt").write_text("3000000000001\n3000000000002\n", encoding="utf-8")
    done, packages = imported_packages(
        "draw", "verify", "--seed", "ab" * 16, "--entrants", "entrants.txt", "--winners", "2", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(json.loads(done.stdout)["winners"]) == ["3000000000001", "3000000000002"]
    assert packages.isdisjoint(HEAVY), sorted(packages & HEAVY)


class _Webhook(http.server.BaseHTTPRequestHandler):
    """Answers a webhook delivery as our server does, and keeps its signature header."""

    signatures: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.signatures.append(self.headers["X-Hub-Signature-256"])
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"EVENT_RECEIVED")

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/webhook"
    finally:
        server.shutdown()
        server.server_close()


def test_simulate_posts_a_signed_webhook_with_the_standard_library(tmp_path: Path, webhook: str) -> None:
    _Webhook.signatures.clear()
    done, packages = imported_packages(
        "simulate", "comment", "--text", "A+1", "--url", webhook, cwd=tmp_path, PLUSONE_APP_SECRET="s"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"status": 200' in done.stdout and '"reply": "EVENT_RECEIVED"' in done.stdout
    assert len(_Webhook.signatures) == 1 and (_Webhook.signatures[0] or "").startswith("sha256=")
    assert packages.isdisjoint(HEAVY), sorted(packages & HEAVY)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^    (\S+)", out, re.MULTILINE)  # one per command; wrapped help is indented deeper
    assert listed == list(COMMANDS), out
