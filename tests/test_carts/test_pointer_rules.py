"""The "now selling" pointer's rules: what was on screen when a viewer commented, and the live's chapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carts.pointer_rules import Chapter, PointerMove, chapters, check_grace, on_screen

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# A at 0 s, B at 60 s, nothing at 120 s, C at 200 s.
MOVES = [PointerMove("A", at(0)), PointerMove("B", at(60)), PointerMove(None, at(120)), PointerMove("C", at(200))]


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        (-5, ()),  # before the first move: nothing was ever on screen
        (10, ("A",)),  # A since 0 s; the window [-5, 10] saw only A (nothing before it counts as no product)
        (59, ("A",)),
        (60, ("A", "B")),  # B at 60 s: a viewer 0-15 s late may have seen either
        (74, ("A", "B")),  # A left 14 s ago: still inside the 15 s window
        (75, ("B",)),  # the window opens at 60 s, when B came: A is out (at its edge B was already showing)
        (130, ("B",)),  # nothing on screen since 120 s, but the viewer may still see B
        (136, ()),  # 16 s of nothing: the window holds no product
        (205, ("C",)),
    ],
)
def test_the_products_on_screen_in_the_viewers_delay(created: float, expected: tuple[str, ...]) -> None:
    assert on_screen(MOVES, at(created), 15) == expected


def test_a_move_after_the_comment_is_not_seen_and_a_product_back_on_screen_counts_once() -> None:
    moves = [PointerMove("A", at(0)), PointerMove("B", at(5)), PointerMove("A", at(8)), PointerMove("C", at(30))]
    assert on_screen(moves, at(10), 15) == ("A", "B")
    assert on_screen(moves, at(10), 0) == ("A",)  # no delay allowed: what is on screen at that moment


def test_chapters_are_the_products_time_on_screen() -> None:
    moves = [*MOVES, PointerMove("C", at(210))]  # pointing at C again goes on with C's chapter
    assert chapters(moves) == [
        Chapter("A", at(0), at(60)),
        Chapter("B", at(60), at(120)),
        Chapter("C", at(200), None),
    ]
    assert chapters([]) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [(15, 15), ("0", 0), ("60", 60), (" 8 ", 8)],
)
def test_a_grace_window_in_bounds(value: object, expected: int) -> None:
    assert check_grace(value) == expected


@pytest.mark.parametrize("value", [-1, 61, "61", "1.5", 1.5, "", "abc", True, None, "１５"])
def test_a_grace_window_out_of_bounds_is_refused_with_the_bounds(value: object) -> None:
    assert check_grace(value) == "grace_s must be whole seconds from 0 to 60"
