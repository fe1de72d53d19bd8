"""Tests for the now-selling pointer's side of the parser (issue 20): bare orders go to `pointed`.

A comment that names no product (`+1`, `2`, `要`, `我要兩件`, `want 2`, `+1 M`) orders the product on
screen when the caller passes `now_selling`; those items are kept apart from `items`. A code in the
comment always wins, and without `now_selling` nothing changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.order_comment import (
    CatalogEntry,
    OrderParser,
    ParseNoteCode,
    chinese_number,
    parse_order_comment,
)

DRESS = CatalogEntry("A", "Floral dress", {"size": ("S", "M", "L", "XL"), "colour": ("Red", "紅色", "Light Blue")})
SHOP = OrderParser([DRESS, CatalogEntry("B", "Linen shirt"), CatalogEntry("玫瑰", "Roses")])
ONLY = OrderParser([CatalogEntry("Flower")])


def pointed(text: str, on: str = "A", parser: OrderParser = SHOP) -> list[tuple[Any, ...]]:
    result = parse_order_comment(text, parser, now_selling=on)
    assert result.items == () and result.removals == ()
    return [(i.code, i.qty, None if i.variant is None else dict(i.variant)) for i in result.pointed]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("+1", [("A", 1, None)]),
        ("+2", [("A", 2, None)]),
        ("＋１", [("A", 1, None)]),
        ("+1 +1", [("A", 2, None)]),
        ("我要+1", [("A", 1, None)]),
        ("1", [("A", 1, None)]),
        ("2", [("A", 2, None)]),
        ("２", [("A", 2, None)]),
        ("12", [("A", 12, None)]),
        ("2件", [("A", 2, None)]),
        ("2 pcs", [("A", 2, None)]),
        ("兩件", [("A", 2, None)]),
        ("一個", [("A", 1, None)]),
        ("要", [("A", 1, None)]),
        ("我要", [("A", 1, None)]),
        ("我都要!!", [("A", 1, None)]),
        ("我要😍", [("A", 1, None)]),
        ("want", [("A", 1, None)]),
        ("Want 2", [("A", 2, None)]),
        ("i want 3", [("A", 3, None)]),
        ("我要兩件", [("A", 2, None)]),
        ("我要三件 唔該", [("A", 3, None)]),
        ("要2件", [("A", 2, None)]),
        ("x2", [("A", 2, None)]),
        ("+1 M", [("A", 1, {"size": "M"})]),
        ("+1 紅色", [("A", 1, {"colour": "紅色"})]),
        ("+1紅色L", [("A", 1, {"size": "L", "colour": "紅色"})]),
        ("2 M", [("A", 2, {"size": "M"})]),
        ("要 XL 唔該", [("A", 1, {"size": "XL"})]),
        ("我要紅色嘅", [("A", 1, {"colour": "紅色"})]),
        ("要兩件 light blue", [("A", 2, {"colour": "Light Blue"})]),
        ("@Amy 我要", [("A", 1, None)]),
        ("+1", [("B", 1, None)]),
    ],
    ids=repr,
)
def test_bare_orders_are_pointed(text: str, want: list[tuple[Any, ...]]) -> None:
    on = want[0][0]
    assert pointed(text, on) == want


@pytest.mark.parametrize(
    "text",
    [
        "好靚",
        "1樓",
        "10:30",
        "2點開始?",
        "100",
        "0",
        "1.5",
        "我要問",
        "要唔要",
        "唔要",
        "want to see",
        "M",
        "2 M L",
        "2 XXL",
        "how much",
        "我要睇下",
        "幾錢",
        "+0",
        "+886 912 345 678",
        "",
    ],
    ids=repr,
)
def test_chatter_points_at_nothing(text: str) -> None:
    result = parse_order_comment(text, SHOP, now_selling="A")
    assert result.pointed == () and result.items == ()


def test_a_plus_with_an_unknown_size_is_pointed_and_says_so() -> None:
    result = SHOP.parse("+1 XXL", now_selling="A")
    assert [(i.code, i.qty, i.variant) for i in result.pointed] == [("A", 1, None)]
    assert result.unknown_variant_words == ("xxl",)
    assert [n.code for n in result.notes] == [ParseNoteCode.UNKNOWN_VARIANT]


@pytest.mark.parametrize(
    "text",
    ["A+1", "B+1 +1", "A+1 +2", "取消A", "cancel B +1", "D+1 +1", "玫瑰+1 2", "A-1"],
)
def test_a_code_in_the_comment_always_wins(text: str) -> None:
    assert SHOP.parse(text, now_selling="B") == SHOP.parse(text)


@pytest.mark.parametrize("text", ["要", "我要", "1", "2", "want 2", "我要兩件", "2件", "x2"])
def test_without_now_selling_bare_words_stay_chatter(text: str) -> None:
    assert SHOP.parse(text).is_empty
    assert ONLY.parse(text).is_empty


def test_without_now_selling_a_lone_plus_keeps_todays_rules() -> None:
    assert SHOP.parse("+1").ambiguous == (1,)
    assert SHOP.parse("+1").pointed == ()
    assert [(i.code, i.qty) for i in ONLY.parse("+2").items] == [("Flower", 2)]
    # With the pointer, the only product's `+2` is pointed too: the handler decides.
    only = ONLY.parse("+2", now_selling="flower")
    assert only.items == () and [(i.code, i.qty) for i in only.pointed] == [("Flower", 2)]


def test_unknown_now_selling_code_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="now_selling"):
        SHOP.parse("+1", now_selling="Z")
    with pytest.raises(ValueError, match="now_selling"):
        parse_order_comment("A+1", SHOP, now_selling="")


def test_now_selling_matches_codes_like_comments_do() -> None:
    assert [i.code for i in SHOP.parse("+1", now_selling="ａ").pointed] == ["A"]


def test_json_shape_keeps_todays_keys_and_adds_pointed() -> None:
    assert "pointed" not in SHOP.parse("A+1").to_dict()
    assert SHOP.parse("A+1").to_dict(with_pointed=True)["pointed"] == []
    assert SHOP.parse("要", now_selling="B").to_dict()["pointed"] == [{"code": "B", "qty": 1, "variant": None}]
    assert not SHOP.parse("要", now_selling="B").is_empty


@pytest.mark.parametrize(
    ("text", "value"),
    [("一", 1), ("兩", 2), ("二", 2), ("十", 10), ("十一", 11), ("二十", 20), ("廿", 20), ("廿三", 23),
     ("九十九", 99), ("一十", 10), ("百", None), ("十兩", None), ("兩十", None), ("", None), ("一二", None)],
)  # fmt: skip
def test_chinese_numbers(text: str, value: int | None) -> None:
    assert chinese_number(text) == value


_UNITS = "一二三四五六七八九"


def _chinese(n: int) -> str:
    tens, units = divmod(n, 10)
    head = "" if tens == 0 else "十" if tens == 1 else _UNITS[tens - 1] + "十"
    return head + ("" if units == 0 else _UNITS[units - 1])


@given(st.integers(1, 99))
def test_every_chinese_numeral_round_trips(n: int) -> None:
    assert chinese_number(_chinese(n)) == n
    assert [i.qty for i in SHOP.parse(f"我要{_chinese(n)}件", now_selling="B").pointed] == [n]


# Comments that name a product: codes with markers, with free words around them.
named = st.tuples(
    st.sampled_from(["A", "a", "B", "玫瑰", "Ａ", "取消A", "cancel b", "D"]),
    st.sampled_from(["+1", "x2", " + 3", "-1", "", "+1 L"]),
    st.sampled_from(["", " +1", " 2", " 要", " 我要兩件", " ❤️", " 紅色"]),
).map("".join)


@settings(max_examples=300)
@given(named, st.sampled_from(["A", "B", "玫瑰"]))
def test_now_selling_never_changes_a_comment_that_names_a_product(text: str, on: str) -> None:
    plain = SHOP.parse(text)
    if plain.items or plain.removals or plain.unknown:
        assert SHOP.parse(text, now_selling=on) == plain


@settings(max_examples=300)
@given(st.text(max_size=40), st.sampled_from(["A", "B", "玫瑰"]))
def test_pointed_never_raises_and_only_points_at_the_product_on_screen(text: str, on: str) -> None:
    result = SHOP.parse(text, now_selling=on)
    assert all(i.code == on and i.qty >= 1 for i in result.pointed)
    if result.pointed:
        assert result.items == () and result.removals == () and result.ambiguous == ()
    without = SHOP.parse(text)
    assert result.items == without.items and result.removals == without.removals
