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


# --- Keywords: names and nicknames ------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from parsers.order_comment import CatalogEntry, check_keyword  # noqa: E402

DRESS = CatalogEntry("A", "Floral dress", {"size": ("S", "M", "L"), "顏色": ("紅色", "黑色")})
RED = CatalogEntry("B", "紅色裙", {"size": ("S", "M", "L")}, keywords=("紅色裙", "紅色"))
KEYED = OrderParser([DRESS, RED, CatalogEntry("C", "Butter cookies", keywords=("曲奇", "cookies"))])


def _items(result: OrderParse) -> list[tuple[Any, ...]]:
    return [(i.code, i.qty, dict(i.variant) if i.variant else None) for i in result.items]


def test_a_keyword_equal_to_an_option_value_after_its_product_is_a_variant() -> None:
    assert _items(KEYED.parse("A+1 紅色")) == [("A", 1, {"顏色": "紅色"})]
    assert _items(KEYED.parse("A 一件 紅色")) == [("A", 1, {"顏色": "紅色"})]
    assert _items(KEYED.parse("紅色+1")) == [("B", 1, None)]
    assert _items(KEYED.parse("紅色裙兩件 M")) == [("B", 2, {"size": "M"})]  # longest keyword wins


def test_latin_keywords_need_a_quantity_and_word_boundaries() -> None:
    assert KEYED.parse("i love cookies") is KEYED.parse("")
    assert KEYED.parse("我要cookies").items == ()  # a Latin name needs a number next to it
    assert _items(KEYED.parse("cookies x2")) == [("C", 2, None)]
    assert _items(KEYED.parse("2 cookies")) == [("C", 2, None)]
    assert KEYED.parse("mycookies+1").items == ()
    assert _items(KEYED.parse("要曲奇")) == [("C", 1, None)]  # a Chinese one orders with a verb alone


def test_the_same_nickname_on_two_products_is_asked_never_guessed() -> None:
    two = OrderParser([CatalogEntry("E", keywords=("玫瑰",)), CatalogEntry("F", keywords=("玫瑰", "香薰"))])
    for text in ("玫瑰+1", "我要兩枝玫瑰", "cancel 玫瑰"):
        result = two.parse(text)
        assert result.items == () and result.removals == ()
        (note,) = result.notes
        assert note.code is ParseNoteCode.AMBIGUOUS_PRODUCT and note.candidates == ("E", "F")
        assert note.to_dict()["candidates"] == ["E", "F"]
    assert _items(two.parse("香薰+1")) == [("F", 1, None)]


def test_unreadable_quantities_are_notes_not_items() -> None:
    for text, fragment in (("A幾件", "幾件"), ("曲奇好多", "好多"), ("我要多少盒曲奇", "多少盒")):
        result = KEYED.parse(text)
        assert result.items == ()
        assert [(n.code, n.fragment) for n in result.notes] == [(ParseNoteCode.UNREADABLE_QUANTITY, fragment)]


@pytest.mark.parametrize(
    ("keyword", "problem"),
    [("紅色裙", None), ("rose bouquet", None), ("tote", None), ("玫", None), ("", "empty"), ("S", "2 letters"),
     ("2件裝", "starting with a letter"), ("red-dress", "letters and digits"), ("x" * 41, "at most 40")],
)  # fmt: skip
def test_check_keyword(keyword: str, problem: str | None) -> None:
    found = check_keyword(keyword)
    assert found is None if problem is None else problem in (found or "")


def test_a_code_wins_over_a_keyword_equal_to_it() -> None:
    parser = OrderParser([CatalogEntry("AB"), CatalogEntry("B", keywords=("ab",))])
    assert [i.code for i in parser.parse("ab兩件").items] == ["AB"]
    with pytest.raises(ValueError, match="keyword"):
        OrderParser([CatalogEntry("A", keywords=("S",))])
    assert OrderParser([CatalogEntry("A", keywords=("a",))]).parse("A+1").items  # its own code: harmless


CODES = ["A", "B", "C", "A1", "Flower"]
code_only = st.lists(
    st.tuples(st.sampled_from(CODES), st.sampled_from(["+", "x", " x", "*", "-"]), st.integers(1, 999)),
    min_size=1,
    max_size=4,
).map(lambda lines: " ".join(f"{c}{m}{q}" for c, m, q in lines))
nicknames = st.lists(
    st.sampled_from(["紅裙", "花裙", "曲奇", "rose bouquet", "tote", "玫瑰", "scarf", "頸巾", "red"]),
    max_size=4,
    unique=True,
)


@settings(max_examples=300, deadline=None)  # builds parsers: no wall-clock limit on a shared machine
@given(code_only, st.sampled_from(CODES), nicknames)
def test_adding_a_nickname_never_changes_a_code_only_comment(text: str, owner: str, words: list[str]) -> None:
    plain = OrderParser.from_codes(CODES)
    keyed = OrderParser(CatalogEntry(code, keywords=tuple(words) if code == owner else ()) for code in CODES)
    assert keyed.parse(text) == plain.parse(text)


natural_lines = st.tuples(
    st.sampled_from(["A", "B", "C", "Ａ", "曲奇"]),
    st.integers(1, 99),
    st.sampled_from(["件", "個", "盒", "", " pcs"]),
    st.booleans(),
)


def _chinese(n: int) -> str:
    units = "一二三四五六七八九"
    tens, rest = divmod(n, 10)
    head = "" if tens == 0 else "十" if tens == 1 else units[tens - 1] + "十"
    return head + ("" if rest == 0 else units[rest - 1])


@settings(max_examples=300, deadline=None)  # builds parsers: no wall-clock limit on a shared machine
@given(st.lists(natural_lines, min_size=1, max_size=4), st.sampled_from(["、", "，", " ", "\n"]))
def test_natural_lines_add_up_in_digits_or_chinese(lines: list[tuple[str, int, str, bool]], sep: str) -> None:
    parser = OrderParser([CatalogEntry("A"), CatalogEntry("B"), CatalogEntry("C", keywords=("曲奇",))])
    expected: dict[str, int] = {}
    parts = []
    for name, qty, unit, chinese in lines:
        unit = unit or "件"
        parts.append(f"{name}{_chinese(qty) if chinese else qty}{unit}")
        code = "C" if name == "曲奇" else normalize(name)
        expected[code] = expected.get(code, 0) + qty
    result = parser.parse(sep.join(parts))
    assert {i.code: i.qty for i in result.items} == expected
    assert result.notes == ()


def normalize(name: str) -> str:
    return name.replace("Ａ", "A")


@pytest.mark.parametrize(
    ("text", "qty"), [("玫瑰花兩扎", 2), ("玫瑰花三束", 3), ("要兩雙玫瑰花", 2), ("玫瑰花 x2樽", 2), ("玫瑰花1袋", 1)]
)
def test_measure_words_of_flowers_shoes_and_drinks(text: str, qty: int) -> None:
    assert [(i.code, i.qty) for i in SHOP.parse(text).items] == [("E", qty)]
