"""Tests for `plusone parse` (bot/cli/parse.py): in-process through `register`, and as real processes so
that exit codes and stdout/stderr are what a merchant sees."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.parse import main, register, run_parse

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "tests" / "data" / "catalog_sample.yaml"


def _args(*argv: str) -> argparse.Namespace:
    root = argparse.ArgumentParser(prog="plusone")
    register(root.add_subparsers(dest="command", required=True))
    return root.parse_args(["parse", *argv])


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_prints_the_issue_shape_one_line_per_comment(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args("--catalog", str(SAMPLE), "A+1 L", "我要玫瑰+2 白色, 取消B", "D+1")
    assert args.func is run_parse
    assert run_parse(args) == 0
    out = capsys.readouterr().out
    assert "玫瑰" in out  # ensure_ascii=False: Chinese stays readable
    first, second, third = _lines(out)
    assert list(first)[:4] == ["text", "items", "removals", "unknown"]
    assert first["text"] == "A+1 L"
    assert first["items"] == [{"code": "A", "qty": 1, "variant": {"size": "L"}}]
    assert second["items"] == [{"code": "玫瑰", "qty": 2, "variant": {"顏色": "白色"}}]
    assert second["removals"] == [{"code": "B", "qty": None, "variant": None}]
    assert third["items"] == []
    assert third["unknown"] == ["D"]
    assert third["notes"] == [{"code": "unknown_code", "fragment": "d+1", "product": None}]


def test_codes_without_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_parse(_args("--codes", "A, b，Flower", "a+1 B x2 flower*3 L")) == 0
    (line,) = _lines(capsys.readouterr().out)
    assert line["items"] == [
        {"code": "A", "qty": 1, "variant": None},
        {"code": "b", "qty": 2, "variant": None},
        {"code": "Flower", "qty": 3, "variant": None},
    ]


def test_reads_standard_input_lines_when_no_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("A+1\r\n\n   \n取消A\n+1"))
    assert run_parse(_args("--codes", "A")) == 0
    lines = _lines(capsys.readouterr().out)
    assert [line["text"] for line in lines] == ["A+1", "取消A", "+1"]
    assert lines[2]["items"] == [{"code": "A", "qty": 1, "variant": None}]


@pytest.mark.parametrize(
    ("argv", "stderr"),
    [
        (["--codes", "1A", "x"], "plusone parse: --codes: code '1A': must be letters and digits only"),
        (["--codes", "A,a", "x"], "plusone parse: --codes: code 'a': duplicate of 'A'"),
        (["--codes", " , ", "x"], "plusone parse: --codes: give at least one product code"),
        (["--catalog", "missing.yaml", "x"], "plusone parse: missing.yaml: no such file"),
    ],
)
def test_bad_catalog_exits_2_naming_the_problem(
    argv: list[str], stderr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(stderr)


@pytest.mark.parametrize("argv", [["x"], ["--codes", "A", "--catalog", "f.yaml", "x"]])
def test_needs_exactly_one_of_catalog_and_codes(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "--catalog" in capsys.readouterr().err


# --- As real processes ---------------------------------------------------------------------------------


def _run(*args: str, stdin: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )


MAIN = "from bot.cli.parse import main; raise SystemExit(main())"  # main() reads sys.argv[1:]


def test_process_invalid_catalog_exits_2_with_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text("products:\n  - code: A\n    name: Dress\n    price: -5\n", encoding="utf-8")
    done = _run("-c", MAIN, "--catalog", "shop.yaml", "A+1", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "plusone parse: shop.yaml:4: products[0].price: must be a number >= 0\n"


def test_process_missing_catalog_exits_2(tmp_path: Path) -> None:
    done = _run("-c", MAIN, "--catalog", "nope.yaml", "A+1", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", "plusone parse: nope.yaml: no such file\n")


def test_process_parses_stdin_with_the_sample_catalog() -> None:
    done = _run("-m", "bot.cli.parse", "--catalog", str(SAMPLE), stdin="Ａ＋１ Ｌ 紅色\n好漂亮\n")
    assert done.returncode == 0, done.stderr
    first, second = _lines(done.stdout)
    assert first == {
        "text": "Ａ＋１ Ｌ 紅色",
        "items": [{"code": "A", "qty": 1, "variant": {"size": "L", "colour": "紅色"}}],
        "removals": [],
        "unknown": [],
        "ambiguous": [],
        "unknown_variant_words": [],
        "notes": [],
    }
    assert second["items"] == [] and second["notes"] == []


def test_process_through_the_plusone_command() -> None:
    done = _run("-m", "bot.cli.main", "parse", "--codes", "A,B", "A+1, B+1")
    assert done.returncode == 0, done.stderr
    (line,) = _lines(done.stdout)
    assert line["items"] == [{"code": "A", "qty": 1, "variant": None}, {"code": "B", "qty": 1, "variant": None}]


def test_now_selling_prints_pointed_items(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args("--catalog", str(SAMPLE), "--now-selling", "a", "+1 M", "我要兩件", "好靚", "B+1")
    assert run_parse(args) == 0
    plus, two, chatter, coded = _lines(capsys.readouterr().out)
    assert plus["pointed"] == [{"code": "A", "qty": 1, "variant": {"size": "M"}}]
    assert plus["items"] == [] and plus["ambiguous"] == []
    assert two["pointed"] == [{"code": "A", "qty": 2, "variant": None}]
    assert chatter["pointed"] == [] and chatter["items"] == []
    assert coded["pointed"] == [] and coded["items"] == [{"code": "B", "qty": 1, "variant": None}]


def test_now_selling_an_unknown_code_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_parse(_args("--codes", "A,B", "--now-selling", "Z", "+1")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--now-selling" in captured.err and "'Z'" in captured.err and "A, B" in captured.err
