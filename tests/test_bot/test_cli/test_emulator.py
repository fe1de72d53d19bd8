"""`plusone emulator`: the --page flag, bad flags exit 2, and the command prints its base URL and serves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.emulator.config import EmulatedPage

ROOT = Path(__file__).resolve().parents[3]


def test_page_flag_parsing() -> None:
    import argparse

    from bot.cli.emulator import parse_page

    page_id, page = parse_page("1000000000001:tok:PlusOne Demo Shop:plusonedemo")
    assert page_id == "1000000000001" and page == EmulatedPage("tok", "PlusOne Demo Shop", "plusonedemo")
    assert parse_page("42:tok")[1].name == "Page 42"
    for bad in ("42", ":tok", "42:", "shop:tok"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_page(bad)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUSONE_")}
    env.update({"PLUSONE_DATA_DIR": str(tmp_path / "data"), **extra})
    return env


def test_command_bad_flags_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    from bot.cli.emulator import main

    for name in [k for k in os.environ if k.startswith("PLUSONE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PLUSONE_DATA_DIR", str(tmp_path / "data"))
    for args in (["--page", "nope"], ["--port", "99999"]):
        assert main([*args, "--app-secret", "s"]) == 2, args
        assert "emulator" in capsys.readouterr().err, args
    assert main(["--page", "1:a", "--page", "1:b", "--app-secret", "s"]) == 2
    assert "twice" in capsys.readouterr().err
    assert main(["--page", "1:a", "--page", "2:a", "--app-secret", "s"]) == 2
    assert "own token" in capsys.readouterr().err
    assert main([]) == 2
    assert "app secret" in capsys.readouterr().err


def test_command_prints_its_base_url_and_serves(tmp_path: Path) -> None:
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli.emulator", "--port", "0", "--no-echoes"],
        env=_env(tmp_path, PLUSONE_APP_SECRET="cli-secret"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/")
        url = f"{base_url}v26.0/1000000000001?fields=name,username&access_token=demo-page-token"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert json.load(resp) == {"id": "1000000000001", "name": "PlusOne Demo Shop", "username": "plusonedemo"}
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
        stderr = process.stderr.read() if process.stderr else ""
    assert code == 0, stderr
    assert "webhooks to http://127.0.0.1:8080/webhook" in stderr
