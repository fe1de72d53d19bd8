"""The `plusone` command as a new user runs it: real processes on embedded defaults."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUSONE_")}
    env.update(extra)
    return env


def plusone(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def spawn(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", *args],
        env=env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(predicate, what: str, limit: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def test_serve_on_embedded_defaults_then_simulate(tmp_path: Path) -> None:
    # With no Page token configured, `serve` runs in demo mode: the Graph emulator plays Meta.
    port = free_port()
    env = clean_env(
        PLUSONE_PORT=str(port),
        PLUSONE_DEMO_EMULATOR_PORT="0",
        PLUSONE_DEMO_STRIPE_PORT="0",
        PLUSONE_DEMO_SMTP_PORT="0",
        PYTHONPATH=str(ROOT),
    )
    server = spawn("serve", env=env, cwd=tmp_path)
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz")["status"] == "ok", "server up")
        secrets_file = tmp_path / "data" / "secrets.toml"
        assert secrets_file.exists()
        # The demo loads the sample shop: a comment on its campaign post is answered privately with the cart.
        # The worker process beside the web may still be starting (healthz does not wait for it), and
        # `simulate` itself starts at once: allow the first reply the time that start takes on a busy machine
        # (under the 60 s the helper gives the process).
        result = plusone(
            "simulate", "comment", "--text", "A1+2", "--name", "Amy", "--wait", "45", env=env, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        assert shown["webhook_status"] == 200
        assert shown["received"] == ["Hi Amy!\n✅ A1 Silk scarf ×2 added\n\n🛒 Cart: 2 items · HK$901"]
        result = plusone("simulate", "message", "--text", "營業時間？", env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        # The sample shop's FAQ answers the opening hours.
        assert shown["received"] == [
            "We're open every day 11:00–20:00 (public holidays 12:00–18:00).\n"
            "營業時間：每日 11:00–20:00（公眾假期 12:00–18:00）。"
        ]

        def processed() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            return (
                'plusone_events_total{kind="comment",outcome="processed"} 1.0' in text
                and 'plusone_events_total{kind="message",outcome="processed"} 1.0' in text
            )

        wait_for(processed, "both events processed")
    finally:
        code, err = stop(server)
    assert code == 0, err
    assert "PLUSONE_VERIFY_TOKEN=" in err  # the first run says what it generated and how to set real ones
    assert "PLUSONE_APP_SECRET" in err
    assert "Demo mode" in err
    assert "event loop: uvloop" in err  # the default
    assert "worker: 1 process beside this one" in err  # auto, on this machine's two cores
    assert not (tmp_path / "data" / "emulator.url").exists()  # the demo emulator stopped with the server
    assert not (tmp_path / "data" / "redis.sock").exists()  # the embedded Redis was stopped with the server
    assert (tmp_path / "data" / "redis.aof").exists()
    # What the demo's Meta knows is kept too: the shopper who wrote has an open 24-hour window.
    kept = json.loads((tmp_path / "data" / "emulator-state.json").read_text())
    assert len(kept["activity"]) == 1 and len(kept["comments"]) == 1

    # A second run reuses the secrets silently and still has what the first one stored; asyncio's own
    # event loop serves as well as uvloop. It runs three days ahead (a demo of what happens later): the
    # demo's Meta runs on the same clock.
    second = {**env, "PLUSONE_EVENT_LOOP": "asyncio", "PLUSONE_WORKER_PROCESSES": "0", "PLUSONE_CLOCK_OFFSET": "3d"}
    server = spawn("serve", env=second, cwd=tmp_path)
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz")["status"] == "ok", "server up again")
        emulator = (tmp_path / "data" / "emulator.url").read_text().strip().rstrip("/")
        assert [c["id"] for c in get_json(f"{emulator}/_emulator/comments")["comments"]] == [
            c["id"] for c in kept["comments"]
        ]
        clock = get_json(f"{emulator}/_emulator/clock")
        assert clock["offset_s"] == 3 * 86400
        assert abs(clock["now"] - (time.time() + 3 * 86400)) < 600
    finally:
        code, err = stop(server)
    assert code == 0 and "generated" not in err
    assert "event loop: asyncio" in err
    assert "worker: in this process" in err
    assert "the clock runs 3 days, 0:00:00 ahead of the machine's" in err


def test_separate_worker_process_reads_the_embedded_redis(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        PLUSONE_PORT=str(port),
        PLUSONE_DEMO_EMULATOR_PORT="0",
        PLUSONE_DEMO_STRIPE_PORT="0",
        PLUSONE_DEMO_SMTP_PORT="0",
        PYTHONPATH=str(ROOT),
    )
    result = plusone("worker", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "PLUSONE_REDIS_URL is not set and no embedded Redis runs" in result.stderr

    web = spawn("serve", "--no-worker", env=env, cwd=tmp_path)
    worker = None
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz")["status"] == "ok", "server up")
        assert plusone("simulate", "message", "--text", "hello", env=env, cwd=tmp_path).returncode == 0
        assert get_json(f"http://127.0.0.1:{port}/healthz")["checks"]["stream"]["backlog"] == 1
        emulator = (tmp_path / "data" / "emulator.url").read_text().strip().rstrip("/")
        subscriptions = f"{emulator}/_emulator/calls?path_contains=subscribed_apps"
        assert get_json(subscriptions) == []  # the web process alone keeps no subscription
        worker = spawn("worker", env=env, cwd=tmp_path)
        wait_for(
            lambda: get_json(f"http://127.0.0.1:{port}/healthz")["checks"]["stream"]["backlog"] == 0,
            "worker drained the stream",
        )
        # The worker process runs what the single process runs beside its web: here the subscription keeper.
        wait_for(lambda: len(get_json(subscriptions)) > 0, "the worker's subscription keeper checked the Page")
        code, err = stop(worker)
        assert code == 0, err
        assert "stopped" in err
    finally:
        if worker and worker.poll() is None:
            worker.kill()
        stop(web)


def test_a_second_serve_on_the_same_data_dir_is_refused_and_leaves_the_first_untouched(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        PLUSONE_PORT=str(port),
        PLUSONE_DEMO_EMULATOR_PORT="0",
        PLUSONE_DEMO_STRIPE_PORT="0",
        PLUSONE_DEMO_SMTP_PORT="0",
        PYTHONPATH=str(ROOT),
    )
    first = spawn("serve", "--no-worker", env=env, cwd=tmp_path)
    worker = None
    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz")["status"] == "ok", "server up")
        marker = (tmp_path / "data" / "emulator.url").read_text()

        # On another port, so only the shared data dir can stop it.
        second = plusone("serve", "--no-worker", env={**env, "PLUSONE_PORT": str(free_port())}, cwd=tmp_path)

        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "listening" not in second.stderr, second.stderr
        assert f"(pid {first.pid}) is already running on the data directory" in lines[0]
        assert first.poll() is None
        assert (tmp_path / "data" / "emulator.url").read_text() == marker
        # The first one's Redis still takes webhooks, and a worker still joins it.
        assert plusone("simulate", "message", "--text", "hello", env=env, cwd=tmp_path).returncode == 0
        worker = spawn("worker", env=env, cwd=tmp_path)
        wait_for(
            lambda: get_json(f"http://127.0.0.1:{port}/healthz")["checks"]["stream"]["backlog"] == 0,
            "the worker drained the stream",
        )
        code, err = stop(worker)
        assert code == 0, err
    finally:
        if worker and worker.poll() is None:
            worker.kill()
        code, err = stop(first)
    assert code == 0, err


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["serve"], {"PLUSONE_PORT": "eighty"}, "plusone: PLUSONE_PORT: Input should be a valid integer"),
        (["worker"], {"PLUSONE_REDIS_URL": "localhost"}, "plusone: PLUSONE_REDIS_URL: Value error"),
        (
            ["serve"],
            {"PLUSONE_WORKER_PROCESSES": "two"},
            "plusone: PLUSONE_WORKER_PROCESSES: Value error, must be auto",
        ),
        (
            ["serve"],
            {"PLUSONE_EVENT_LOOP": "trio"},
            "plusone: PLUSONE_EVENT_LOOP: Input should be 'uvloop' or 'asyncio'",
        ),
        (
            ["serve"],
            {"PLUSONE_CLOCK_OFFSET": "soon"},
            "plusone: PLUSONE_CLOCK_OFFSET: Value error, 'soon' is not a time offset",
        ),
        (["simulate", "message", "--text", "hi"], {}, "plusone simulate: no app secret"),
    ],
)
def test_bad_settings_exit_2_with_one_line(tmp_path: Path, args: list[str], env: dict[str, str], message: str) -> None:
    result = plusone(*args, env=clean_env(PYTHONPATH=str(ROOT), **env), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_simulate_reports_an_unreachable_server(tmp_path: Path) -> None:
    env = clean_env(PYTHONPATH=str(ROOT), PLUSONE_APP_SECRET="s", PLUSONE_PORT=str(free_port()))
    result = plusone("simulate", "comment", "--text", "A+1", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
