"""Keyword FAQ matching: which of a Page's FAQ rules answers a shopper's message, and why. Pure, no I/O.

A rule has several keywords or phrases (synonyms, in English and Chinese), a match mode, a priority and
a reply. Text and keywords are compared in `parsers.normalize` form (full-width folded, case folded,
spaces collapsed), so `ＨＯＵＲＳ` is `hours`.

- Latin keywords match whole words only, by Unicode word segmentation (the `regex` package's `WORD`
  flag, UAX #29): `hours` matches `opening hours?` and `想問hours係幾點`, never `hourse` or `showers`.
- Chinese keywords match inside text (Chinese has no spaces between words): `地址` matches `你哋地址喺邊`.
  Word segmentation puts a boundary between every two ideographs, so one pattern serves both.
- Modes: `any` (one keyword is enough), `all` (every keyword must appear), `exact` (the whole message,
  without surrounding punctuation, is one of the keywords: for short words like `hi` that should not
  fire inside a longer question).
- The winner: the highest priority; on a tie, the more specific mode (exact, then all, then any), then the
  longer matched keywords, then the rule listed first. `match_faq` returns the winner and an outcome per
  rule (matched keywords, and why it lost or did not match) for `plusone faq-test`.
- `is_agent_request`: a whole message asking for a person (`agent`, `真人`, `人工`), which the bot answers
  by handing over before any FAQ rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

import regex

from parsers.normalize import normalize_text

__all__ = [
    "AGENT_WORDS",
    "FaqButton",
    "FaqMatch",
    "FaqQuickReply",
    "FaqReply",
    "FaqRule",
    "MatchMode",
    "RuleOutcome",
    "exact_form",
    "is_agent_request",
    "keyword_found",
    "match_faq",
]


class MatchMode(StrEnum):
    ANY = "any"
    ALL = "all"
    EXACT = "exact"


# On equal priority the more specific mode wins: an exact answer to "hi" beats a rule that merely
# contains one of its words.
_SPECIFICITY = {MatchMode.EXACT: 2, MatchMode.ALL: 1, MatchMode.ANY: 0}


@dataclass(frozen=True, slots=True)
class FaqQuickReply:
    """A quick reply under the answer; tapping it answers with the rule `rule` (e.g. hours → address)."""

    title: str
    rule: str


@dataclass(frozen=True, slots=True)
class FaqButton:
    """A button under the answer: a link (`url`) or another rule's answer (`rule`)."""

    title: str
    url: str | None = None
    rule: str | None = None


@dataclass(frozen=True, slots=True)
class FaqReply:
    """A rule's answer: `text`, or one per language (`texts`: (locale, text) pairs, `en` and `zh_Hant`) of
    which a shopper gets theirs, else the other one. `text` is then the first of them (explanations show it)."""

    text: str
    quick_replies: tuple[FaqQuickReply, ...] = ()
    buttons: tuple[FaqButton, ...] = ()
    texts: tuple[tuple[str, str], ...] = ()

    def text_for(self, locale: str) -> str:
        """The answer a shopper reading `locale` gets: theirs, else another language's, else the one text."""
        found = dict(self.texts)
        return found.get(locale) or next(iter(found.values()), "") or self.text


@dataclass(frozen=True, slots=True)
class FaqRule:
    """One FAQ entry of a Page. `key` names it (in payloads, the admin API and explanations)."""

    key: str
    keywords: tuple[str, ...]
    reply: FaqReply
    match: MatchMode = MatchMode.ANY
    priority: int = 0
    line: int = field(default=0, compare=False)  # where the shop file defined it, for messages


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """How one rule fared against a message."""

    key: str
    matched: tuple[str, ...]  # the rule's keywords found in the message, as the rule writes them
    missing: tuple[str, ...]  # for `all`: the keywords not found
    won: bool
    reason: str  # in words: why it won, lost, or did not match


@dataclass(frozen=True, slots=True)
class FaqMatch:
    rule: FaqRule | None
    outcomes: tuple[RuleOutcome, ...]

    def explain(self) -> list[str]:
        """One line per rule, the winner first: what `plusone faq-test` prints."""
        ordered = sorted(self.outcomes, key=lambda o: not o.won)
        return [f"{'✔' if o.won else '✘'} {o.key}: {o.reason}" for o in ordered]


# Punctuation and symbols (emoji included) around a message do not change what it asks: `hi!!` is `hi`.
_EDGES = regex.compile(r"^[\p{P}\p{S}\s]+|[\p{P}\p{S}\s]+$")


def exact_form(text: str) -> str:
    """`text` as the `exact` mode compares it: normalised, without punctuation or symbols at its ends."""
    return _EDGES.sub("", normalize_text(text))


# Whole messages that ask for a person (compared without case, width or punctuation). Whole messages
# only: 人工 inside a message is usually something else (人工花 is an artificial flower).
AGENT_WORDS = frozenset(
    exact_form(word)
    for word in (
        "agent",
        "human",
        "person",
        "real person",
        "talk to a person",
        "talk to agent",
        "talk to an agent",
        "speak to a person",
        "customer service",
        "真人",
        "人工",
        "人工客服",
        "真人客服",
        "轉人工",
        "转人工",
        "客服",
        "搵真人",
        "找真人",
    )
)


def is_agent_request(text: str | None) -> bool:
    """A message that asks for a person: the bot hands the conversation over before any FAQ rule answers."""
    return bool(text) and exact_form(text or "") in AGENT_WORDS


@lru_cache(maxsize=4096)
def _pattern(keyword: str) -> regex.Pattern[str] | None:
    """The search pattern of one keyword (normalised), or None for a keyword that normalises to nothing."""
    if not keyword:
        return None
    # A word boundary only at an edge that is a Latin-like word character: `a+1` or `?` at an edge have
    # none to give, and Chinese (Japanese, Korean) keywords match inside text, whatever precedes them
    # (a stray combining mark left by NFKC, as `¸` leaves, would otherwise hide `地` in `¸地址`).
    left = r"\b" if _WORDLIKE.match(keyword[0]) else ""
    right = r"\b" if _WORDLIKE.match(keyword[-1]) else ""
    return regex.compile(left + regex.escape(keyword) + right, regex.WORD | regex.V1)


_WORDLIKE = regex.compile(r"[\w--[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]]", regex.V1)


def keyword_found(keyword: str, normalized_text: str) -> bool:
    """Whether `keyword` occurs in already normalised text (whole words for Latin, anywhere for Chinese)."""
    pattern = _pattern(normalize_text(keyword))
    return pattern is not None and pattern.search(normalized_text) is not None


def _evaluate(rule: FaqRule, text: str, exact: str) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """(matched keywords, missing keywords, does the rule apply)."""
    if rule.match is MatchMode.EXACT:
        matched = tuple(k for k in rule.keywords if exact and exact_form(k) == exact)
        return matched, (), bool(matched)
    matched = tuple(k for k in rule.keywords if keyword_found(k, text))
    missing = tuple(k for k in rule.keywords if k not in matched)
    if rule.match is MatchMode.ALL:
        return matched, missing, bool(rule.keywords) and not missing
    return matched, (), bool(matched)


def _quote(words: Sequence[str]) -> str:
    return ", ".join(f'"{w}"' for w in words)


def match_faq(rules: Sequence[FaqRule], text: str) -> FaqMatch:
    """The rule that answers `text` (None if none applies), with every rule's outcome."""
    normalized = normalize_text(text)
    exact = exact_form(text)
    evaluated = [(index, rule, *_evaluate(rule, normalized, exact)) for index, rule in enumerate(rules)]
    applying = [e for e in evaluated if e[4]]

    def rank(entry: tuple[int, FaqRule, tuple[str, ...], tuple[str, ...], bool]) -> tuple[int, int, int, int]:
        index, rule, matched = entry[0], entry[1], entry[2]
        return (rule.priority, _SPECIFICITY[rule.match], sum(len(normalize_text(k)) for k in matched), -index)

    winner = max(applying, key=rank) if applying else None
    outcomes: list[RuleOutcome] = []
    for entry in evaluated:
        index, rule, matched, missing, applies = entry
        if winner is not None and index == winner[0]:
            reason = f"answers (matched {_quote(matched)}; {rule.match.value}, priority {rule.priority})"
        elif applies:
            assert winner is not None
            reason = f"matched {_quote(matched)} but lost to {winner[1].key}: " + _why_lost(rank(entry), rank(winner))
        elif rule.match is MatchMode.EXACT:
            reason = "no match: the whole message must be one of " + _quote(rule.keywords)
        elif rule.match is MatchMode.ALL and matched:
            reason = f"no match: needs all keywords; found {_quote(matched)}, missing {_quote(missing)}"
        else:
            reason = "no match: none of " + _quote(rule.keywords)
        outcomes.append(RuleOutcome(rule.key, matched, missing, winner is not None and index == winner[0], reason))
    return FaqMatch(rule=winner[1] if winner else None, outcomes=tuple(outcomes))


def _why_lost(mine: tuple[int, int, int, int], theirs: tuple[int, int, int, int]) -> str:
    if mine[0] != theirs[0]:
        return f"lower priority ({mine[0]} < {theirs[0]})"
    if mine[1] != theirs[1]:
        return "same priority, less specific match mode"
    if mine[2] != theirs[2]:
        return "same priority and mode, shorter matched keywords"
    return "same priority, mode and keywords; the earlier rule wins"
