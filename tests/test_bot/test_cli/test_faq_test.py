"""Tests for `plusone faq-test` (bot/cli/faq_test.py): the answering rule and why, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.faq_test import main

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "config" / "samples" / "demo_shop.yaml"


def test_shows_the_answering_rule_and_why_the_others_lost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--shop", str(SAMPLE), "same day delivery？"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "message: same day delivery？"
    assert lines[1].startswith("  → same-day-delivery: Same-day flower delivery in Kowloon")
    assert '  ✔ same-day-delivery: answers (matched "same day", "delivery"; all, priority 5)' in lines
    assert '  ✘ delivery: matched "delivery" but lost to same-day-delivery: lower priority (0 < 5)' in lines


def test_no_rule_and_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--shop", str(SAMPLE), "showers", "真人"]) == 0
    out = capsys.readouterr().out
    assert "message: showers\n  → no rule answers: the fallback would (at most once in a while)\n" in out
    assert "  ✘ hours: no match: none of" in out
    assert "message: 真人\n  → asks for a person" in out


def test_a_file_without_faq_or_the_wrong_page_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shop = tmp_path / "shop.yaml"
    shop.write_text("shop: {name: X, currency: HKD}\nproducts: [{code: A, name: a, price: 1}]\n", encoding="utf-8")
    assert main(["--shop", str(shop), "hi"]) == 2
    assert (
        capsys.readouterr().err
        == f"plusone faq-test: {shop}: has no faq: section (see config/samples/demo_shop.yaml)\n"
    )
    assert main(["--shop", str(SAMPLE), "--page", "42", "hi"]) == 2
    assert capsys.readouterr().err == f"plusone faq-test: {SAMPLE}: has no FAQ for Page 42\n"


def test_process_invalid_file_exits_2_with_file_line_and_field(tmp_path: Path) -> None:
    shop = tmp_path / "shop.yaml"
    text = SAMPLE.read_text(encoding="utf-8").replace("match: all", "match: most")
    shop.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "faq-test", "--shop", str(shop), "hours"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2, done
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "match: most" in row)
    assert done.stderr == f"plusone faq-test: {shop}:{line}: faq.rules[4].match: must be any, all or exact\n"
    assert done.stdout == ""
