"""Helpers shared by the benchmarks: free ports, child servers, waiting, printing a table."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return  # it answers: up
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {limit}s")


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PLUSONE_")}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    # Its log goes to a file: a pipe nobody reads fills up and then blocks the server mid-run.
    folder, name = Path(cwd or tempfile.gettempdir()), Path(args[-1]).name or "child"
    log_path, n = folder / f"{name}.log", 1
    while log_path.exists():  # several workers: one log each
        n += 1
        log_path = folder / f"{name}-{n}.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, *args], env=full_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log_file, text=True
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def print_table(rows: list[dict[str, object]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def save(name: str, data: object) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    return path
