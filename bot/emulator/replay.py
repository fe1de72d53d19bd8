"""A recorded-style live to play through the emulator: the host's pointer moves and the viewers' comments.

`recorded_live(codes, seed=...)` writes the script of a broadcast the way Hong Kong and Taiwan lives go:
the host shows one product after another for 40-80 s (with a pause now and then), and viewers, who see
the stream 5-14 s late, type bare orders (`+1`, `+2`, `要`, `我要兩件`, `want 2`) for what they saw,
orders with a code (`B+1`), and chatter (`好靚呀`, `幾錢?`). Some bare orders come just after the host moved
on, from viewers who still saw the product before: those are the ones a fair bot must ask about.

Each comment records the product the viewer saw (`saw`), so a test can check the bot's matching against
the script rather than against the bot's own rules. `play_live` plays the script in order: the pointer
moves through a callback (the admin API, at the script's moment on the caller's clock) and the comments
through the emulator, their `created_time` on the emulator's clock, so nothing waits for real time to pass.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.emulator.control import ControlClient

# (message, units) of bare orders: what viewers type for the product they see.
BARE_ORDERS: tuple[tuple[str, int], ...] = (
    ("+1", 1),
    ("+2", 2),
    ("要", 1),
    ("我要", 1),
    ("我要兩件", 2),
    ("want 2", 2),
    ("+1 🙏", 1),
)
CHATTER = ("好靚呀", "幾錢?", "有冇其他顏色", "hello 👋", "❤️❤️❤️", "How much is shipping?", "主播好正", "waiting~")


@dataclass(frozen=True)
class ScriptMove:
    at_s: int  # seconds after the live began
    code: str | None  # the product the host shows from then on; None: nothing on screen


@dataclass(frozen=True)
class ScriptComment:
    at_s: int  # its creation time, seconds after the live began
    user_id: str
    user_name: str
    message: str
    kind: str  # "bare" | "coded" | "chatter"
    saw: str | None = None  # a bare order's product: what was on screen when the viewer saw the stream
    code: str | None = None  # a coded order's product
    qty: int = 0


@dataclass(frozen=True)
class RecordedLive:
    moves: tuple[ScriptMove, ...]
    comments: tuple[ScriptComment, ...]
    duration_s: int

    def on_screen_at(self, at_s: float) -> str | None:
        """What the host showed at `at_s` (the script's own reading: the last move at or before it)."""
        found = None
        for move in self.moves:
            if move.at_s <= at_s:
                found = move.code
        return found


def recorded_live(
    codes: Sequence[str], *, seed: int = 20, viewers: int = 60, bare_per_product: int = 12, late_per_move: int = 3
) -> RecordedLive:
    """The script of a live selling `codes` in order (deterministic for a seed)."""
    rng = random.Random(seed)
    moves: list[ScriptMove] = []
    at = 5
    for i, code in enumerate(codes):
        moves.append(ScriptMove(at, code))
        at += rng.randint(40, 80)
        if i == 1:  # the host chats between products for a while: nothing on screen
            moves.append(ScriptMove(at, None))
            at += 25
    moves.append(ScriptMove(at, None))
    duration = at + 20
    live = RecordedLive(tuple(moves), (), duration)
    names = [f"Viewer {n:02d}" for n in range(viewers)]
    comments: list[ScriptComment] = []
    bare_users = iter(rng.sample(range(viewers), viewers))  # a viewer orders bare once (a question each)

    def viewer() -> int:
        return rng.randrange(viewers)

    def add(at_s: int, who: int, message: str, kind: str, **extra: object) -> None:
        comments.append(ScriptComment(at_s, f"39000000{who:05d}", names[who], message, kind, **extra))  # type: ignore[arg-type]

    shows = [(m, nxt) for m, nxt in itertools.pairwise(moves) if m.code is not None]
    for move, next_move in shows:
        # Viewers who saw the product while it was on screen, commenting 5-14 s later.
        for _ in range(bare_per_product):
            seen = rng.randint(move.at_s, next_move.at_s - 1)
            message, qty = rng.choice(BARE_ORDERS)
            who = next(bare_users, None)
            if who is None:
                break
            add(seen + rng.randint(5, 14), who, message, "bare", saw=move.code, qty=qty)
        # Late viewers: they saw it in its last seconds and comment 5-14 s after the host moved on.
        for _ in range(late_per_move):
            who = next(bare_users, None)
            if who is None:
                break
            seen = next_move.at_s - rng.randint(1, 4)
            message, qty = rng.choice(BARE_ORDERS)
            add(seen + rng.randint(5, 14), who, message, "bare", saw=move.code, qty=qty)
        for _ in range(4):  # orders with a code, and chatter, from anyone
            code = rng.choice(list(codes))
            qty = rng.randint(1, 2)
            add(rng.randint(move.at_s, next_move.at_s), viewer(), f"{code.lower()}+{qty}", "coded", code=code, qty=qty)
        for _ in range(9):
            add(rng.randint(move.at_s, next_move.at_s), viewer(), rng.choice(CHATTER), "chatter")
    ordered = sorted(comments, key=lambda c: c.at_s)
    return RecordedLive(live.moves, tuple(ordered), duration)


async def play_live(
    live: RecordedLive,
    emulator: ControlClient,
    video_id: str,
    started_at: float,
    move: Callable[[ScriptMove], Awaitable[None]],
) -> list[tuple[ScriptComment, str]]:
    """Play the script: moves and comments in time order (a move first at the same second); each comment's
    `created_time` is `started_at` (epoch s on the emulator's clock) plus its moment. Each comment with
    the id Meta gave it."""
    steps: list[tuple[int, int, ScriptMove | ScriptComment]] = [(m.at_s, 0, m) for m in live.moves]
    steps += [(c.at_s, 1, c) for c in live.comments]
    ids: list[tuple[ScriptComment, str]] = []
    for _at, _order, step in sorted(steps, key=lambda s: (s[0], s[1])):
        if isinstance(step, ScriptMove):
            await move(step)
            continue
        sent = await emulator.live_comment(
            video_id,
            step.user_id,
            step.message,
            to=("webhook",),
            user_name=step.user_name,
            created_time=started_at + step.at_s,
        )
        ids.append((step, sent["comment_id"]))
    return ids
