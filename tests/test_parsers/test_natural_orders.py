"""Natural Cantonese and Mandarin orders, names and nicknames (issue 20).

The held-out table (tests/data/natural_orders_heldout.tsv) was written before the grammar was tuned:
what live viewers in Hong Kong and Taiwan type, and how a seller reads it. Its catalog is a shop file
(tests/data/natural_orders_catalog.yaml), so nicknames go through the same loader as a shop's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from config.catalog_file import catalog_entries, load_catalog_file
from parsers.order_comment import OrderParse, OrderParser, ParseNoteCode, parse_order_comment

DATA = Path(__file__).resolve().parents[1] / "data"
HELDOUT = DATA / "natural_orders_heldout.tsv"
SHOP = OrderParser(catalog_entries(load_catalog_file(DATA / "natural_orders_catalog.yaml")))
_LINE = re.compile(r"(?P<sign>[->]?)(?P<code>[^*\[(!]+)\*(?P<qty>all|\d+)(?:\[(?P<variant>[^\]]*)\])?")
_NOTE = re.compile(r"!(?P<note>\w+)\((?P<codes>[^)]*)\)")
_ASKED = {ParseNoteCode.AMBIGUOUS_PRODUCT.value, ParseNoteCode.UNREADABLE_QUANTITY.value}


def _rows() -> list[Any]:
    rows = []
    for number, raw in enumerate(HELDOUT.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        text, now_selling, expected = ([*raw.split("\t"), "", ""])[:3]
        rows.append(pytest.param(text, now_selling or None, expected.strip(), id=f"{number}:{text}"))
    return rows


def _expected(spec: str) -> dict[str, Any]:
    want: dict[str, Any] = {"items": set(), "removals": set(), "pointed": set(), "notes": set()}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        note = _NOTE.fullmatch(part)
        if note:
            want["notes"].add((note["note"], tuple(sorted(filter(None, note["codes"].split(","))))))
            continue
        line = _LINE.fullmatch(part)
        assert line, f"bad expectation {part!r}"
        variant = tuple(sorted(tuple(kv.split("=", 1)) for kv in line["variant"].split(","))) if line["variant"] else ()
        qty = None if line["qty"] == "all" else int(line["qty"])
        key = {"-": "removals", ">": "pointed", "": "items"}[line["sign"]]
        want[key].add((line["code"], qty, variant))
    return want


def _reading(result: OrderParse) -> dict[str, Any]:
    def lines(found: Any) -> set[tuple[Any, ...]]:
        return {(x.code, x.qty, tuple(sorted((x.variant or {}).items()))) for x in found}

    notes = {
        (n.code.value, tuple(sorted(n.candidates or ((n.product,) if n.product else ()))))
        for n in result.notes
        if n.code.value in _ASKED
    }
    return {
        "items": lines(result.items),
        "removals": lines(result.removals),
        "pointed": lines(result.pointed),
        "notes": notes,
    }


ROWS = _rows()


def test_heldout_table_is_big_and_varied() -> None:
    assert len(ROWS) >= 60
    texts = [row.values[0] for row in ROWS]
    assert len(set(texts)) > 55
    assert sum(1 for row in ROWS if not row.values[2]) >= 10, "chatter that must order nothing"


@pytest.mark.parametrize(("text", "now_selling", "expected"), ROWS)
def test_heldout_natural_orders(text: str, now_selling: str | None, expected: str) -> None:
    result = parse_order_comment(text, SHOP, now_selling=now_selling)
    if not expected:
        assert not (result.items or result.removals or result.pointed), result
        assert not any(n.code.value in _ASKED for n in result.notes)
        return
    assert _reading(result) == _expected(expected)
