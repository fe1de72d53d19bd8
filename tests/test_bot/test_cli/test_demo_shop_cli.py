"""`plusone demo-shop` on the command line: without a running demo it says so and exits non-zero."""

from __future__ import annotations

import pytest

from bot.cli.main import main as plusone


def test_demo_shop_without_a_running_demo_says_so(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PLUSONE_DATA_DIR", str(tmp_path))
    assert plusone(["demo-shop"]) == 2
    assert "no demo emulator runs" in capsys.readouterr().err
