"""The "now selling" pointer of a live, decided: what was on screen when a viewer commented. Pure, no I/O.

The merchant moves the pointer to the product the host shows (or to nothing); each move is a row
(`bot.store.pointer`). Viewers see the stream 10-15 s late, so a comment without a code is matched to
every product that was on screen at some moment of [created - grace, created] (the comment's creation
time as Meta gives it): one candidate orders it, several are asked about, none is today's answer to a
comment without a code. The same moves, read in order, are the chapters of the replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_GRACE_S = 15  # viewers see a live 10-15 s late (issue 20)
MIN_GRACE_S = 0
MAX_GRACE_S = 60  # beyond a minute the host has long moved on: "which one?" for every comment


@dataclass(frozen=True)
class PointerMove:
    """The pointer moved to `code` (a campaign's order code), or to nothing on screen (None), at `moved_at`."""

    code: str | None
    moved_at: datetime


@dataclass(frozen=True)
class Chapter:
    """A stretch of the live with one product on screen: from `start` to `end` (None: still on screen)."""

    code: str
    start: datetime
    end: datetime | None


def check_grace(value: object) -> int | str:
    """The grace window in whole seconds, or why `value` is not one (English, for the API and the logs)."""
    if isinstance(value, bool):
        return f"grace_s must be whole seconds from {MIN_GRACE_S} to {MAX_GRACE_S}"
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit()):
            return f"grace_s must be whole seconds from {MIN_GRACE_S} to {MAX_GRACE_S}"
        value = int(value)
    if not isinstance(value, int) or not MIN_GRACE_S <= value <= MAX_GRACE_S:
        return f"grace_s must be whole seconds from {MIN_GRACE_S} to {MAX_GRACE_S}"
    return value


def on_screen(moves: Sequence[PointerMove], created: datetime, grace_s: int) -> tuple[str, ...]:
    """The products on screen at any moment of [created - grace, created], oldest first, each once.

    `moves` in the order they were made. The product on screen when the window opened counts (the viewer
    may have seen it that late), and so does each one pointed at inside it; a move after `created` does
    not (the viewer cannot have seen it yet).
    """
    opened = created - timedelta(seconds=grace_s)
    found: list[str] = []
    before: str | None = None
    for move in moves:
        if move.moved_at <= opened:
            before = move.code
        elif move.moved_at <= created:
            if before is not None and before not in found:
                found.append(before)
            before = None
            if move.code is not None and move.code not in found:
                found.append(move.code)
    if before is not None and before not in found:
        found.insert(0, before)
    return tuple(found)


def chapters(moves: Sequence[PointerMove]) -> list[Chapter]:
    """The live's chapters: each product's time on screen, in order (a move to the same product goes on)."""
    found: list[Chapter] = []
    for move in moves:
        if found and found[-1].end is None:
            if found[-1].code == move.code:
                continue
            found[-1] = Chapter(found[-1].code, found[-1].start, move.moved_at)
        if move.code is not None:
            found.append(Chapter(move.code, move.moved_at, None))
    return found
