"""Tests for parsers.order_comment (issue 4).

One big table (the shape of arq's tests/test_cron.py): a catalog, a comment, and everything the parse
must say about it, written by hand from the grammar in the issue. Then hypothesis properties, and
hostile 10 KB comments that must parse without catastrophic backtracking.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from parsers.normalize import normalize_text
from parsers.order_comment import (
    EMPTY_PARSE,
    MAX_FRAGMENTS,
    CatalogEntry,
    OrderParse,
    OrderParser,
    ParseNoteCode,
    check_code,
    check_option_value,
    parse_order_comment,
)

SIZES = ("S", "M", "L", "XL")
COLOURS = ("Red", "Black", "紅色", "Light Blue")
MAIN = OrderParser(
    [
        CatalogEntry("A", "Floral dress", {"size": SIZES, "colour": COLOURS}),
        CatalogEntry("A1", "Silk scarf"),
        CatalogEntry("B", "Linen shirt"),
        CatalogEntry("C", "Canvas bag"),
        CatalogEntry("Flower", "Dried flowers"),
        CatalogEntry("玫瑰", "Roses", {"顏色": ("紅色", "白色")}),
    ]
)
# The same codes without options: words after an item never matter here.
PLAIN = OrderParser.from_codes(["A", "A1", "B", "C", "Flower", "玫瑰"])
SINGLE = OrderParser([CatalogEntry("A", "Floral dress", {"size": ("S", "M", "L")})])
SINGLE_PLAIN = OrderParser([CatalogEntry("Flower")])
# B and BX both exist: the longest code that makes an item wins.
FITS = OrderParser.from_codes(["B", "BX", "A", "A1", "A12"])
CATALOGS = {"main": MAIN, "plain": PLAIN, "single": SINGLE, "single_plain": SINGLE_PLAIN, "fits": FITS}

UNKNOWN_CODE = ParseNoteCode.UNKNOWN_CODE.value
AMBIGUOUS = ParseNoteCode.AMBIGUOUS_QUANTITY.value
INVALID = ParseNoteCode.INVALID_QUANTITY.value
UNKNOWN_VARIANT = ParseNoteCode.UNKNOWN_VARIANT.value
CONFLICT = ParseNoteCode.CONFLICTING_VARIANT.value


@dataclass(frozen=True)
class Want:
    """What a parse must say. Items and removals are (code, qty) or (code, qty, variant)."""

    items: tuple[tuple[Any, ...], ...] = ()
    removals: tuple[tuple[Any, ...], ...] = ()
    unknown: tuple[str, ...] = ()
    ambiguous: tuple[int, ...] = ()
    words: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def case(catalog: str, text: str, *items: tuple[Any, ...], **rest: Any) -> Any:
    want = Want(items=items, **{k: tuple(v) for k, v in rest.items()})
    return pytest.param(catalog, text, want, id=f"{catalog}:{text!r}")


def nothing(catalog: str, text: str, **rest: Any) -> Any:
    return case(catalog, text, **rest)


def sized(size: str) -> dict[str, str]:
    return {"size": size}


TABLE = [
    # --- The product card's three ways, and the basic item forms ---------------------------------
    case("main", "A+1", ("A", 1)),
    case("main", "a+1", ("A", 1)),
    case("main", "A+1, B+1", ("A", 1), ("B", 1)),
    case("main", "a + 2", ("A", 2)),
    case("main", "B x2", ("B", 2)),
    case("main", "B×3", ("B", 3)),
    case("main", "C*2", ("C", 2)),
    case("main", "Bx2", ("B", 2)),
    case("main", "B X2", ("B", 2)),
    case("main", "B x 2", ("B", 2)),
    case("main", "C * 2", ("C", 2)),
    case("main", "A +1", ("A", 1)),
    case("main", "A+ 1", ("A", 1)),
    case("main", "A+12", ("A", 12)),
    case("main", "A+999", ("A", 999)),
    case("main", "A+01", ("A", 1)),
    case("main", "A+1.", ("A", 1)),
    case("main", "B+1+1", ("B", 1)),
    # --- Quantities that are no item --------------------------------------------------------------
    nothing("main", "A+0", notes=[INVALID]),
    nothing("main", "A+00", notes=[INVALID]),
    nothing("main", "A+1000", notes=[INVALID]),
    nothing("main", "A+99999999999999999999999999999", notes=[INVALID]),
    nothing("main", "A+1.5", notes=[INVALID]),
    nothing("main", "A-0", notes=[INVALID]),
    nothing("main", "B-2024", notes=[INVALID]),
    nothing("main", "A+"),
    nothing("main", "A"),
    nothing("main", "A+B"),
    nothing("main", "Ax"),
    nothing("main", "A-"),
    # --- Full-width, Chinese input mode, separators -----------------------------------------------
    case("main", "Ａ＋１", ("A", 1)),
    case("main", "ａ＋２", ("A", 2)),
    case("main", "Ａ＋１，Ｂ＋２", ("A", 1), ("B", 2)),
    case("main", "Ｂｘ３", ("B", 3)),
    case("main", "Ｃ＊２", ("C", 2)),
    case("main", "Ｂ　＋　１", ("B", 1)),
    case("main", "我要A+1", ("A", 1)),
    case("main", "我要Ａ＋１謝謝", ("A", 1), words=["謝謝"], notes=[UNKNOWN_VARIANT]),
    case("main", "A+1、B+1", ("A", 1), ("B", 1)),
    case("main", "A+1，B+1", ("A", 1), ("B", 1)),
    case("main", "A+1 B+1", ("A", 1), ("B", 1)),
    case("main", "A+1/B+1", ("A", 1), ("B", 1)),
    case("main", "A+1&B+1", ("A", 1), ("B", 1)),
    case("main", "A+1\nB+1", ("A", 1), ("B", 1)),
    case("main", "A+1B+1", ("A", 1), ("B", 1)),
    case("main", "A+1 and B+1", ("A", 1), ("B", 1), words=["and"], notes=[UNKNOWN_VARIANT]),
    case("plain", "A+1 and B+1", ("A", 1), ("B", 1)),
    case("main", "A+1和B+1", ("A", 1), ("B", 1), words=["和"], notes=[UNKNOWN_VARIANT]),
    case("plain", "A+1和B+1", ("A", 1), ("B", 1)),
    case("main", "A+1。B+2。", ("A", 1), ("B", 2)),
    case("main", "A\u3000+\u30001", ("A", 1)),
    case("main", "A\u200b+1", ("A", 1)),
    case("main", "\ufeffB+1", ("B", 1)),
    case("main", "C+1B", ("C", 1)),
    # --- Word and Chinese codes ----------------------------------------------------------------
    case("main", "玫瑰+1", ("玫瑰", 1)),
    case("main", "我要玫瑰+2", ("玫瑰", 2)),
    case("main", "玫瑰x2", ("玫瑰", 2)),
    case("main", "玫瑰 ＋ 3", ("玫瑰", 3)),
    case("main", "Flower+1", ("Flower", 1)),
    case("main", "flower+1", ("Flower", 1)),
    case("main", "FLOWER x 2", ("Flower", 2)),
    case("main", "Ｆｌｏｗｅｒ＋１", ("Flower", 1)),
    case("main", "A+1 B+1 C+1 A1+1 Flower+1 玫瑰+1", *[(c, 1) for c in ("A", "B", "C", "A1", "Flower", "玫瑰")]),
    # --- Emoji, mentions, brackets ---------------------------------------------------------------
    case("main", "❤️B+1", ("B", 1)),
    case("main", "B+1❤️", ("B", 1)),
    case("main", "😍😍A1+1😍", ("A1", 1)),
    case("main", "👉C+2👈", ("C", 2)),
    case("main", "@Mary Chen A+1", ("A", 1)),
    case("main", "@Amy B+1 @Bob", ("B", 1)),
    case("main", "A+1 @Mary", ("A", 1)),
    case("main", "#A+1", ("A", 1)),
    case("main", "(A+1)", ("A", 1)),
    case("main", "[B+2]", ("B", 2)),
    case("main", "A+1!", ("A", 1)),
    case("main", "B+1好", ("B", 1)),
    # --- Longest code wins -------------------------------------------------------------------------
    case("main", "A1+1", ("A1", 1)),
    case("main", "a1+2", ("A1", 2)),
    case("main", "A1 x2", ("A1", 2)),
    case("main", "A+1 A1+1", ("A", 1), ("A1", 1)),
    case("fits", "BX+1", ("BX", 1)),
    case("fits", "BX2", ("B", 2)),
    case("fits", "bx x2", ("BX", 2)),
    case("fits", "A12+1", ("A12", 1)),
    case("fits", "A1+1 A12+1 A+1", ("A1", 1), ("A12", 1), ("A", 1)),
    nothing("main", "A11+1", unknown=["A11"], notes=[UNKNOWN_CODE]),
    nothing("main", "A2+1", unknown=["A2"], notes=[UNKNOWN_CODE]),
    # --- A code never matches inside a Latin word; digits, Chinese, emoji, punctuation are boundaries
    nothing("main", "BA+1"),
    nothing("main", "Pizza+1"),
    nothing("main", "sunflower+1"),
    nothing("main", "Flowers+1"),
    nothing("main", "cab+1"),
    nothing("main", "sofa+1"),
    nothing("main", "me+1"),
    nothing("main", "haha+1"),
    nothing("main", "éA+1"),
    nothing("main", "ΩA+1"),
    nothing("main", "cancelA"),
    case("main", "2A+1", ("A", 1)),
    case("main", "1A+1", ("A", 1)),
    case("main", "我A+1", ("A", 1)),
    case("main", "pizza1B+1", ("B", 1)),
    # --- Things that are not orders ------------------------------------------------------------
    nothing("main", "$100"),
    nothing("main", "NT$390"),
    nothing("main", "100元"),
    nothing("main", "0912-345-678"),
    nothing("main", "+886 912 345 678"),
    nothing("main", "+886912345678"),
    nothing("main", "+1 (555) 123-4567"),
    nothing("main", "+1-555-1234"),
    nothing("main", "2+2=4"),
    nothing("main", "1+1"),
    nothing("main", "3.5+1"),
    nothing("main", "好漂亮"),
    nothing("main", "how much?"),
    nothing("main", ""),
    nothing("main", "   "),
    nothing("main", "cancel"),
    nothing("main", "取消"),
    nothing("main", "x2"),
    nothing("main", "size 2XL please"),
    nothing("main", "10:30"),
    nothing("main", "2024-01-01"),
    nothing("main", "E-1"),
    nothing("main", "iphone x2"),
    # --- A lone +N -------------------------------------------------------------------------------
    case("single_plain", "+1", ("Flower", 1)),
    case("single_plain", "我要+1", ("Flower", 1)),
    case("single_plain", "+2", ("Flower", 2)),
    case("single_plain", "+1 +1", ("Flower", 2)),
    case("single_plain", "hi +1", ("Flower", 1)),
    case("single_plain", "❤️+1", ("Flower", 1)),
    case("single_plain", "＋１", ("Flower", 1)),
    case("single_plain", "Flower+1 +1", ("Flower", 2)),
    nothing("single_plain", "hi+1"),
    nothing("single_plain", "3+1"),
    nothing("single_plain", "+0"),
    nothing("single_plain", "+1000"),
    nothing("single_plain", "+1.5"),
    nothing("single_plain", "+886 912 345 678"),
    case("single", "+1", ("A", 1)),
    case("single", "+1 L", ("A", 1, sized("L"))),
    case("single", "我要+1 M號", ("A", 1, sized("M")), words=["號"], notes=[UNKNOWN_VARIANT]),
    nothing("main", "+1", ambiguous=[1], notes=[AMBIGUOUS]),
    nothing("main", "我要+2", ambiguous=[2], notes=[AMBIGUOUS]),
    nothing("main", "+1 +2", ambiguous=[1, 2], notes=[AMBIGUOUS, AMBIGUOUS]),
    case("main", "A+1 +1", ("A", 1), ambiguous=[1], notes=[AMBIGUOUS]),
    nothing("main", "+0"),
    # --- Variants ----------------------------------------------------------------------------------
    case("main", "A+1 L", ("A", 1, sized("L"))),
    case("main", "A+1 l", ("A", 1, sized("L"))),
    case("main", "A+1L", ("A", 1, sized("L"))),
    case("main", "A+1 L red", ("A", 1, {"size": "L", "colour": "Red"})),
    case("main", "A+1 RED L", ("A", 1, {"size": "L", "colour": "Red"})),
    case("main", "A+1 xl", ("A", 1, sized("XL"))),
    case("main", "A+1 XL", ("A", 1, sized("XL"))),
    case("main", "A+1紅色", ("A", 1, {"colour": "紅色"})),
    case("main", "A+1 紅色 M", ("A", 1, {"size": "M", "colour": "紅色"})),
    case("main", "A+1紅色L", ("A", 1, {"size": "L", "colour": "紅色"})),
    case("main", "A+1 light blue", ("A", 1, {"colour": "Light Blue"})),
    case("main", "A+1 Light  Blue S", ("A", 1, {"size": "S", "colour": "Light Blue"})),
    case("main", "A+1 要紅色的", ("A", 1, {"colour": "紅色"})),
    case("main", "Ａ＋１ Ｌ", ("A", 1, sized("L"))),
    case("main", "A x2 black", ("A", 2, {"colour": "Black"})),
    case("main", "A+1 L 紅色 @Amy", ("A", 1, {"size": "L", "colour": "紅色"})),
    case("main", "A+1 ❤️", ("A", 1, None)),
    case("main", "A+1 XXL", ("A", 1, None), words=["xxl"], notes=[UNKNOWN_VARIANT]),
    case("main", "A+1 L purple", ("A", 1, sized("L")), words=["purple"], notes=[UNKNOWN_VARIANT]),
    case("main", "A+1 thanks", ("A", 1), words=["thanks"], notes=[UNKNOWN_VARIANT]),
    case("main", "A+1 S M", ("A", 1, None), notes=[CONFLICT]),
    case("main", "A+1 S red M", ("A", 1, {"colour": "Red"}), notes=[CONFLICT]),
    case("main", "A+1 L L", ("A", 1, sized("L"))),
    case("main", "A+1 L, B+1", ("A", 1, sized("L")), ("B", 1)),
    case("main", "A+1, L", ("A", 1, None)),
    case("main", "A+1\nL", ("A", 1, None)),
    case("main", "A+1 L\nB+1", ("A", 1, sized("L")), ("B", 1)),
    case("main", "A+1 L. thanks", ("A", 1, sized("L"))),
    case("main", "A+1 L A+1 L", ("A", 2, sized("L"))),
    case("main", "A+1 L A+1 M", ("A", 1, sized("L")), ("A", 1, sized("M"))),
    case("main", "A+1 L A+1", ("A", 1, sized("L")), ("A", 1, None)),
    case("main", "A+2 L B+1 red", ("A", 2, sized("L")), ("B", 1)),
    case("main", "B+1 L", ("B", 1, None)),
    case("main", "玫瑰+1 白色", ("玫瑰", 1, {"顏色": "白色"})),
    case("main", "玫瑰+1白色", ("玫瑰", 1, {"顏色": "白色"})),
    case("main", "玫瑰+2紅色的", ("玫瑰", 2, {"顏色": "紅色"})),
    case("main", "玫瑰+1 L", ("玫瑰", 1, None), words=["l"], notes=[UNKNOWN_VARIANT]),
    case("plain", "A+1 L red", ("A", 1, None)),
    # --- The same code and variant add up ----------------------------------------------------------
    case("main", "A+1 A+1", ("A", 2)),
    case("main", "A1+1 A1+2", ("A1", 3)),
    case("main", "B+1, b+1", ("B", 2)),
    case("main", "Bx2 B*3 B+1", ("B", 6)),
    case("main", "A+1 B+1 A+1", ("A", 2), ("B", 1)),
    case("main", "B+999 B+999", ("B", 1998)),
    case("main", "flower+1 FLOWER+1 Ｆｌｏｗｅｒ+1", ("Flower", 3)),
    # --- Reductions and cancels ------------------------------------------------------------------
    nothing("main", "A-1", removals=[("A", 1)]),
    nothing("main", "A - 2", removals=[("A", 2)]),
    nothing("main", "B−1", removals=[("B", 1)]),
    nothing("main", "Ｂ－１", removals=[("B", 1)]),
    nothing("main", "cancel A", removals=[("A", None)]),
    nothing("main", "CANCEL B", removals=[("B", None)]),
    nothing("main", "Cancel flower", removals=[("Flower", None)]),
    nothing("main", "取消A", removals=[("A", None)]),
    nothing("main", "取消 A", removals=[("A", None)]),
    nothing("main", "取消玫瑰", removals=[("玫瑰", None)]),
    nothing("main", "取消A1", removals=[("A1", None)]),
    nothing("main", "我要取消B謝謝", removals=[("B", None)]),
    nothing("main", "cancel A+2", removals=[("A", 2)]),
    nothing("main", "取消B x2", removals=[("B", 2)]),
    nothing("main", "cancel A L", removals=[("A", None, sized("L"))]),
    nothing("main", "A-1 L", removals=[("A", 1, sized("L"))]),
    nothing("main", "取消A 取消A", removals=[("A", None)]),
    nothing("main", "A-1 A-1", removals=[("A", 2)]),
    nothing("main", "A-1 cancel A", removals=[("A", None)]),
    case("main", "B+2 B-1", ("B", 2), removals=[("B", 1)]),
    case("main", "取消A，B+1", ("B", 1), removals=[("A", None)]),
    nothing("main", "cancelled A"),
    nothing("main", "cancel order"),
    nothing("main", "取消訂單"),
    nothing("main", "取消D", unknown=["D"], notes=[UNKNOWN_CODE]),
    nothing("main", "cancel d12", unknown=["D12"], notes=[UNKNOWN_CODE]),
    # --- Unknown codes ---------------------------------------------------------------------------
    nothing("main", "D+1", unknown=["D"], notes=[UNKNOWN_CODE]),
    nothing("main", "d+1", unknown=["D"], notes=[UNKNOWN_CODE]),
    nothing("main", "D12+1", unknown=["D12"], notes=[UNKNOWN_CODE]),
    nothing("main", "AB1+1", unknown=["AB1"], notes=[UNKNOWN_CODE]),
    nothing("main", "Z x2", unknown=["Z"], notes=[UNKNOWN_CODE]),
    nothing("main", "Ｄ＋１", unknown=["D"], notes=[UNKNOWN_CODE]),
    case("main", "B+1 D+1", ("B", 1), unknown=["D"], notes=[UNKNOWN_CODE]),
    nothing("main", "D+1 D+2", unknown=["D"], notes=[UNKNOWN_CODE, UNKNOWN_CODE]),
    nothing("main", "D+0"),
    nothing("main", "D12345+1"),
]


def _simple(parse: OrderParse) -> Want:
    def line(code: str, qty: int | None, variant: Any) -> tuple[Any, ...]:
        return (code, qty, None if variant is None else dict(variant))

    return Want(
        items=tuple(line(i.code, i.qty, i.variant) for i in parse.items),
        removals=tuple(line(r.code, r.qty, r.variant) for r in parse.removals),
        unknown=parse.unknown,
        ambiguous=parse.ambiguous,
        words=parse.unknown_variant_words,
        notes=tuple(n.code.value for n in parse.notes),
    )


def _expand(want: Want) -> Want:
    # (code, qty) means "no variant chosen"
    def full(lines: tuple[tuple[Any, ...], ...]) -> tuple[tuple[Any, ...], ...]:
        return tuple(line if len(line) == 3 else (*line, None) for line in lines)

    return Want(
        items=full(want.items),
        removals=full(want.removals),
        unknown=want.unknown,
        ambiguous=want.ambiguous,
        words=want.words,
        notes=want.notes,
    )


def test_table_is_big_enough() -> None:
    assert len(TABLE) >= 150
    assert len({p.id for p in TABLE}) == len(TABLE), "duplicate rows"


@pytest.mark.parametrize(("catalog", "text", "want"), TABLE)
def test_parse_order_comment(catalog: str, text: str, want: Want) -> None:
    assert _simple(parse_order_comment(text, CATALOGS[catalog])) == _expand(want)


# --- The result's shape ---------------------------------------------------------------------------


def test_result_carries_configured_code_and_json_shape() -> None:
    result = MAIN.parse("a+1 l 紅色, flower x2, 取消b, d+1")
    assert result.to_dict() == {
        "items": [
            {"code": "A", "qty": 1, "variant": {"size": "L", "colour": "紅色"}},
            {"code": "Flower", "qty": 2, "variant": None},
        ],
        "removals": [{"code": "B", "qty": None, "variant": None}],
        "unknown": ["D"],
        "ambiguous": [],
        "unknown_variant_words": [],
        "notes": [{"code": "unknown_code", "fragment": "d+1", "product": None}],
    }


def test_notes_name_the_product_and_fragment() -> None:
    result = MAIN.parse("A+1 XXL, B+0")
    assert [(n.code, n.fragment, n.product) for n in result.notes] == [
        (ParseNoteCode.UNKNOWN_VARIANT, "xxl", "A"),
        (ParseNoteCode.INVALID_QUANTITY, "b+0", "B"),
    ]


def test_chatter_is_the_shared_empty_result() -> None:
    assert MAIN.parse("好漂亮 ❤️") is EMPTY_PARSE
    assert MAIN.parse("how much?").is_empty
    assert not MAIN.parse("D+1").is_empty


def test_results_are_immutable() -> None:
    item = MAIN.parse("A+1 L").items[0]
    with pytest.raises(AttributeError):
        item.qty = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        item.variant["size"] = "S"  # type: ignore[index]


def test_empty_catalog_orders_nothing() -> None:
    empty = OrderParser([])
    assert empty.parse("A+1").unknown == ("A",)
    assert empty.parse("+1").ambiguous == (1,)
    assert empty.parse("\x00+1 cancel \x00").items == ()


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("A", None),
        ("A1", None),
        ("Flower", None),
        ("玫瑰", None),
        ("ａ１", None),
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        ("1A", "starting with a letter"),
        ("12", "starting with a letter"),
        ("A-1", "letters and digits only"),
        ("A B", "letters and digits only"),
        ("A+", "letters and digits only"),
        ("X" * 33, "at most 32"),
    ],
)
def test_check_code(code: str, problem: str | None) -> None:
    found = check_code(code)
    assert found is None if problem is None else problem in (found or "")


def test_parser_rejects_bad_catalogs() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        OrderParser.from_codes(["A", "a"])
    with pytest.raises(ValueError, match="starting with a letter"):
        OrderParser.from_codes(["1"])
    with pytest.raises(ValueError, match="also"):
        OrderParser([CatalogEntry("A", variants={"size": ("M",), "fit": ("m",)})])
    assert check_option_value("!!") is not None
    assert check_option_value("2XL") is None


# --- Properties -------------------------------------------------------------------------------------

CODES = {"A", "A1", "B", "C", "Flower", "玫瑰"}
PIECES = [
    "A", "a", "A1", "B", "b", "C", "Flower", "FLOWER", "玫瑰", "D", "BA", "pizza",
    "+", "+", "x", "X", "×", "*", "-", "1", "2", "12", "999", "1000", "0", ".", "5",
    " ", " ", ",", "、", "/", "\n", "L", "red", "紅色", "light", "blue", "XXL", "取消", "cancel",
    "我要", "謝謝", "❤️", "😍", "@amy", "#sale", "$", "(", ")",
]  # fmt: skip


def _full_width(text: str) -> str:
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


comments = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), comments), st.sampled_from(sorted(CATALOGS)))
def test_never_raises_and_orders_only_catalog_codes(text: str, catalog: str) -> None:
    parser = CATALOGS[catalog]
    result = parser.parse(text)
    assert isinstance(result, OrderParse)
    codes = set(parser.codes)
    assert all(item.code in codes and item.qty >= 1 for item in result.items)
    assert all(r.code in codes and (r.qty is None or r.qty >= 1) for r in result.removals)
    assert all(isinstance(n.code, ParseNoteCode) for n in result.notes)
    assert not (set(result.unknown) & {code.upper() for code in codes})


@settings(max_examples=300)
@given(comments, st.sampled_from(["main", "single", "fits"]))
def test_case_and_width_change_nothing(text: str, catalog: str) -> None:
    parser = CATALOGS[catalog]
    expected = parser.parse(text).to_dict()
    assert parser.parse(text.upper()).to_dict() == expected
    assert parser.parse(text.swapcase()).to_dict() == expected
    assert parser.parse(_full_width(text)).to_dict() == expected


@settings(max_examples=200)
@given(st.text())
def test_width_changes_nothing_on_any_text(text: str) -> None:
    assert MAIN.parse(_full_width(text)) == MAIN.parse(text)


@settings(max_examples=200)
@given(st.text())
def test_parsing_the_normalised_text_changes_nothing(text: str) -> None:
    assert MAIN.parse(normalize_text(text, keep_newlines=True)) == MAIN.parse(text)


# Words that hold no code: letters of several scripts and emoji, no digits, no markers.
filler_words = st.lists(
    st.text(
        alphabet=st.sampled_from("abcdefghijklmnopqrstuvwyzéüÅßΩж我要好美的謝喔😍❤"),
        min_size=1,
        max_size=8,
    ),
    max_size=4,
).map(" ".join)


def _holds_no_code(words: str, codes: set[str]) -> bool:
    norm = normalize_text(words)
    return not any(normalize_text(word) in norm for word in (*codes, "cancel", "取消"))


orders = st.lists(
    st.tuples(
        st.sampled_from(sorted(CODES)),
        st.sampled_from(["+", "x", " x", "×", "*", " + ", "-"]),
        st.integers(1, 999),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300)
@given(orders, st.sampled_from([", ", " ", "、", "/", "\n", "&"]), filler_words, filler_words)
def test_words_without_codes_around_an_order_change_nothing(
    lines: list[tuple[str, str, int]], sep: str, before: str, after: str
) -> None:
    assume(_holds_no_code(before + " " + after, CODES))
    order = sep.join(f"{code}{marker}{qty}" for code, marker, qty in lines)
    expected = PLAIN.parse(order)
    assert PLAIN.parse(f"{before} {order} {after}") == expected
    # With options, words right after an item are its variant words; after a separator they are not.
    expected = MAIN.parse(order)
    assert MAIN.parse(f"{before} {order}, {after}") == expected


@settings(max_examples=300)
@given(orders, st.sampled_from([", ", " ", "、", "\n", "，", " and "]), st.booleans())
def test_every_way_of_writing_items_adds_up(lines: list[tuple[str, str, int]], sep: str, shout: bool) -> None:
    text = sep.join(f"{code}{marker}{qty}" for code, marker, qty in lines)
    if shout:
        text = _full_width(text.upper())
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    for code, marker, qty in lines:
        (removed if marker == "-" else added)[code] += qty
    result = PLAIN.parse(text)
    assert {i.code: i.qty for i in result.items} == dict(added)
    assert {r.code: r.qty for r in result.removals} == dict(removed)
    assert result.notes == ()


# --- Hostile input: no catastrophic backtracking ---------------------------------------------------
# Bounded time is what is tested here (pytest-timeout stops a runaway); speed is measured in
# bench/bench_parser.py, because wall-clock assertions make tests flaky on a shared machine.

TEN_KB = 10_000


def _fill(unit: str) -> str:
    return (unit * (TEN_KB // len(unit) + 1))[:TEN_KB]


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("unit", "want"),
    [
        ("+", {}),
        ("1", {}),
        ("A", {}),
        ("A ", {}),
        ("A+", {}),
        ("a1", {}),
        ("ax", {}),
        ("+ ", {}),
        ("取消", {"truncated": True}),
        ("BA+1", {"truncated": True}),
        ("我要", {}),
        ("A+1", {"items": {"A": MAX_FRAGMENTS}, "truncated": True}),
        ("B+1 ", {"items": {"B": MAX_FRAGMENTS}, "truncated": True}),
        ("Bx2", {"items": {"B": 2 * MAX_FRAGMENTS}, "truncated": True}),
        ("A-1", {"removals": {"A": MAX_FRAGMENTS}, "truncated": True}),
        ("D+1", {"unknown": ["D"], "truncated": True}),
        ("+1 ", {"ambiguous": MAX_FRAGMENTS, "truncated": True}),
        ("取消A", {"removals": {"A": None}, "truncated": True}),
    ],
)
def test_ten_kilobytes_of_pluses_digits_and_codes(unit: str, want: dict[str, Any]) -> None:
    result = MAIN.parse(_fill(unit))
    assert {i.code: i.qty for i in result.items} == want.get("items", {})
    assert {r.code: r.qty for r in result.removals} == want.get("removals", {})
    assert list(result.unknown) == want.get("unknown", [])
    assert len(result.ambiguous) == want.get("ambiguous", 0)
    truncated = [n for n in result.notes if n.code is ParseNoteCode.TRUNCATED]
    assert len(truncated) == (1 if want.get("truncated") else 0)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "text",
    [
        "A+1 " + "L " * 5000,
        "A+1 " + "紅" * 10_000,
        "A+1 " + "紅色" * 5000,
        "A+1" + " " * 10_000 + "L",
        "+" + "1" * 10_000,
        "A+" + "9" * 10_000,
        "A+1." + "5" * 10_000,
        "cancel " * 1500,
        "\u200b" * 10_000 + "A+1",
        "Ａ＋１" * 3000,
        "😍" * 5000 + "B+1",
        "1+" * 5000,
        "a1+" * 3333,
    ],
    ids=lambda text: repr(text[:12]),
)
def test_ten_kilobytes_of_other_hostile_input(text: str) -> None:
    result = MAIN.parse(text)
    assert len(result.items) <= 2
    assert len(result.notes) <= MAX_FRAGMENTS + 1


# --- The compiled code list -----------------------------------------------------------------------------


@settings(max_examples=200)
@given(
    st.sets(st.text(alphabet="ab1玫", min_size=1, max_size=4), min_size=1, max_size=8),
    st.text(alphabet="ab1玫+x", max_size=10),
)
def test_code_trie_matches_like_a_longest_first_alternation(codes: set[str], text: str) -> None:
    """The trie must pick the same code as `longest|...|shortest` would, backtracking included."""
    import re

    from parsers.order_comment import _alternation

    naive = "|".join(re.escape(c) for c in sorted(codes, key=lambda c: (-len(c), c)))
    for tail in (r"\+", "x?"):
        trie_match = re.match(f"(?:{_alternation(codes)}){tail}", text)
        naive_match = re.match(f"(?:{naive}){tail}", text)
        assert (trie_match and trie_match[0]) == (naive_match and naive_match[0])
