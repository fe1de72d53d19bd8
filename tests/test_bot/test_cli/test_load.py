"""Tests for `plusone load` (bot/cli/load.py): exit codes, the one-line errors and the summary, in-process
through `main` and once as a real process, on a data dir of its own."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.load import main

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "config" / "samples" / "demo_shop.yaml"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only PLUSONE_DATA_DIR set: the database is the default SQLite file in it."""
    for name in list(os.environ):
        if name.startswith("PLUSONE_"):
            monkeypatch.delenv(name)
    data = tmp_path / "data"  # not created yet: `load` makes it
    monkeypatch.setenv("PLUSONE_DATA_DIR", str(data))
    return data


def rows(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(data_dir / "plusone.db") as db:
        return db.execute(sql).fetchall()


def test_loads_the_sample_then_changes_nothing(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"Blossom Florist & Boutique 花漾小店 (HKD, Asia/Hong_Kong) from {SAMPLE}",
        "shop: 1 created, 0 updated, 0 unchanged",
        "products: 8 created, 0 updated, 0 unchanged, 0 deactivated",
        "campaigns: 2 created, 0 updated, 0 unchanged, 0 ended",
        "faq rules: 5 created, 0 updated, 0 unchanged, 0 deleted",
    ]
    assert err == ""
    assert rows(data_dir, "SELECT key FROM campaign ORDER BY id") == [("demo-post",), ("next-live",)]

    assert main([str(SAMPLE)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "shop: 0 created, 0 updated, 1 unchanged",
        "products: 0 created, 0 updated, 8 unchanged, 0 deactivated",
        "campaigns: 0 created, 0 updated, 2 unchanged, 0 ended",
        "faq rules: 0 created, 0 updated, 5 unchanged, 0 deleted",
    ]


def test_invalid_file_exits_2_with_one_line_and_changes_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(SAMPLE)]) == 0
    before = rows(data_dir, "SELECT * FROM product ORDER BY id")
    capsys.readouterr()
    broken = tmp_path / "shop.yaml"
    broken.write_text(
        SAMPLE.read_text(encoding="utf-8")
        .replace("price: 1280", "price: 999")
        .replace("ends_at: 2030-12-31 23:59", "ends_at: 2025-12-31 23:59"),
        encoding="utf-8",
    )

    assert main([str(broken)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"plusone load: {broken}:68: campaigns[0].ends_at: must be after starts_at\n"
    assert rows(data_dir, "SELECT * FROM product ORDER BY id") == before


def test_missing_file_exits_2(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-shop.yaml"]) == 2
    assert capsys.readouterr().err == "plusone load: no-such-shop.yaml: no such file\n"
    assert not data_dir.exists()  # nothing opened


def test_stock_below_held_and_sold_exits_1_and_changes_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(SAMPLE)]) == 0
    with sqlite3.connect(data_dir / "plusone.db") as db:  # shoppers hold 4 and bought 3 of A
        db.execute("UPDATE product SET held = 4, sold = 3 WHERE code = 'A'")
    before = rows(data_dir, "SELECT * FROM product ORDER BY id")
    capsys.readouterr()
    lower = tmp_path / "shop.yaml"
    text = SAMPLE.read_text(encoding="utf-8").replace("stock: 12", "stock: 6").replace("stock: 30", "stock: 31")
    lower.write_text(text, encoding="utf-8")

    assert main([str(lower)]) == 1

    err = capsys.readouterr().err
    assert err == (
        f"plusone load: {lower}:13: products[0].stock: 6 is below the 7 units of product 'A' already taken "
        "(4 held in carts, 3 sold); stock must be at least 7; nothing was changed\n"
    )
    assert rows(data_dir, "SELECT * FROM product ORDER BY id") == before


def test_bad_setting_exits_2(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLUSONE_DATABASE_URL", "mysql://nope")
    assert main([str(SAMPLE)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("plusone load: ") and "DATABASE_URL" in err and err.count("\n") == 1


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "FILE" in capsys.readouterr().err


def test_as_a_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUSONE_")}
    env.update(PLUSONE_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "bot.cli.load"]

    ok = subprocess.run([*command, str(SAMPLE)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    missing = subprocess.run([*command, "nope.yaml"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.splitlines()[2] == "products: 8 created, 0 updated, 0 unchanged, 0 deactivated"
    assert (missing.returncode, missing.stdout, missing.stderr) == (2, "", "plusone load: nope.yaml: no such file\n")
