"""The lucky draw's rules, pure: who may win, the committed seed, and the documented algorithm anyone can re-run.

How a draw is made, so that a viewer can check it (docs/merchant-guide.md, "Lucky draw"):

1. **Announce.** The merchant sets the rules (keyword, ordered, paid, member, exclusions, number of
   winners). PlusOne makes a secret seed with `secrets` (32 hex digits) and shows only its
   **commitment**, `sha256(seed)` in hex, on the board: the merchant shows it on the live before anyone
   knows who will enter, and it cannot change afterwards.
2. **Entrants.** At the draw, every commenter of the campaign's post or live who meets the rules, once,
   by Page-scoped id (PSID), **sorted as text** (Unicode code points, which for PSIDs' digits of one
   length is numeric order).
3. **Draw.** `key = sha256(seed + "\\n" + "\\n".join(entrants))` (UTF-8). A partial Fisher-Yates shuffle
   picks the winners in order: for i = 0 … k-1, swap entrant i with entrant i + u(n - i), where u(m) takes
   the next block `sha256(key + counter as 8 bytes, big-endian)` (counter from 0, +1 per block) as a
   256-bit big-endian number x, skips it when x ≥ 2^256 − (2^256 mod m) (so every value is equally
   likely), and else is x mod m. The first k entrants are the winners, in draw order.
4. **Reveal.** The seed, the entrants and the winners are published on the draw's page; anyone checks
   `sha256(seed)` against the commitment shown before, and re-runs step 3 (`plusone draw verify`).

Standard library only (plus the parsers' text normalisation for the keyword), no I/O.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from parsers.normalize import normalize_text

MAX_WINNERS = 100
MAX_KEYWORD = 40
SEED_BYTES = 16  # 128 bits: nobody guesses it from its commitment


@dataclass(frozen=True)
class DrawRules:
    """Who may win: every condition given must hold (they combine with AND)."""

    winners: int = 1
    keyword: str = ""  # the comment contains it (case, width and spacing as the parser reads them); "": any
    ordered: bool = False  # made an order comment in this campaign that still stands (held, sold or waiting)
    paid: bool = False  # paid an order with something of this campaign in it
    member: bool = False  # is a member of the shop's programme
    exclude_blocked: bool = True  # blocked buyers cannot win
    exclude_page: bool = True  # the shop's own Page (its comments) cannot win
    exclude_winners: bool = True  # who won an earlier draw of this sale cannot win again (several rounds)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DrawRules:
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class DrawRuleError(ValueError):
    """A draw form that cannot be used: the field it is about and the reason (a msgid with its values)."""

    def __init__(self, field: str, msgid: str, **params: object) -> None:
        super().__init__(msgid)
        self.field, self.msgid, self.params = field, msgid, params


def parse_draw_form(form: Mapping[str, str]) -> DrawRules:
    """The rules from a form's fields (checkboxes are present when ticked); DrawRuleError names a bad field."""
    text = (form.get("winners") or "").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_WINNERS:
        raise DrawRuleError("winners", "Winners: a whole number from 1 to {max}.", max=MAX_WINNERS)
    keyword = " ".join((form.get("keyword") or "").split())
    if len(keyword) > MAX_KEYWORD:
        raise DrawRuleError("keyword", "Keyword: at most {max} characters.", max=MAX_KEYWORD)
    return DrawRules(
        winners=int(text),
        keyword=keyword,
        ordered=bool(form.get("ordered")),
        paid=bool(form.get("paid")),
        member=bool(form.get("member")),
        exclude_blocked=bool(form.get("exclude_blocked")),
        exclude_page=bool(form.get("exclude_page")),
        exclude_winners=bool(form.get("exclude_winners")),
    )


def keyword_matches(keyword: str, message: str | None) -> bool:
    """Whether a comment says the keyword: read as the order parser reads text (full-width, case, spaces)."""
    if not keyword:
        return True
    wanted = normalize_text(keyword)
    return bool(wanted) and wanted in normalize_text(message or "")


def new_seed() -> str:
    return secrets.token_hex(SEED_BYTES)


def commitment(seed: str) -> str:
    """What is shown before the draw: sha256 of the seed's text, in hex."""
    return hashlib.sha256(seed.encode()).hexdigest()


def order_entrants(psids: Iterable[str]) -> list[str]:
    """The entrants in the documented order: each once, sorted as text."""
    return sorted(set(psids))


def draw_winners(seed: str, entrants: list[str], count: int) -> list[str]:
    """The winners, in draw order (see the module's docstring). `entrants` in the documented order."""
    if not 0 < count <= len(entrants):
        raise ValueError(f"cannot draw {count} winners among {len(entrants)} entrants")
    key = hashlib.sha256((seed + "\n" + "\n".join(entrants)).encode()).digest()
    counter = 0
    span = 1 << 256

    def below(m: int) -> int:
        nonlocal counter
        limit = span - span % m
        while True:
            x = int.from_bytes(hashlib.sha256(key + counter.to_bytes(8, "big")).digest(), "big")
            counter += 1
            if x < limit:
                return x % m

    pool = list(entrants)
    for i in range(count):
        j = i + below(len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:count]
