"""The inbox's pure rules: list filters, the reply box's mode, message states in words, labels. No I/O."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import regex

from bot.outbound.messaging_rules import HUMAN_AGENT_WINDOW, STANDARD_WINDOW, Author, RefusalCode, decide_message
from parsers.normalize import normalize_text

MAX_REPLY = 2000  # Meta's text limit; the outbox splits nothing an agent typed
MAX_NOTE = 4000
MAX_LABELS = 10
MAX_LABEL = 30


class ListFilter(StrEnum):
    """The conversation list's filters (query `filter=`)."""

    CART = "cart"  # has held stock
    UNPAID = "unpaid"  # an order waits for payment
    VARIANT = "variant"  # a comment item still needs a size or colour
    PERSON = "person"  # the shopper asked for a person
    MINE = "mine"  # assigned to me


FILTER_TITLES = {
    ListFilter.CART: "Has a cart",
    ListFilter.UNPAID: "Unpaid order",
    ListFilter.VARIANT: "Needs a variant",
    ListFilter.PERSON: "Asked for a person",
    ListFilter.MINE: "Assigned to me",
}


# The bot's messages that answer nothing (outbox keys' prefixes): "we'll reply soon" (bot.handlers.fallback),
# "a person will answer" (bot.handlers.faq), "that button is no longer active". The shopper's message before
# one of them still waits for a person, so it stays unread; any other bot message answered it.
NOT_AN_ANSWER = ("fallback:", "agent_request:", "stale:")

_PHONE_SEARCH = regex.compile(r"[+()\d][\d\s().+-]*")
_ORDER_SEARCH = regex.compile(r"(?i)(?:po[\s-]?)?0*(\d{1,12})")


def phone_digits_searched(text: str) -> str | None:
    """The digits to look for when a search is a phone number as people type one ("9123 4567",
    "+852 9123-4567"): at least 6 digits and nothing but separators; None for any other search. Only the
    last 8 digits of a longer one, so that a number typed with its country code (+852, +886) finds the
    same number typed without it, and the other way round."""
    text = text.strip()
    digits = "".join(c for c in text if c.isdigit())
    return digits[-8:] if len(digits) >= 6 and _PHONE_SEARCH.fullmatch(text) else None


def order_number_searched(text: str) -> int | None:
    """The order id a search names ("PO-000012", "po-12", "PO12"); None when it names none. A bare number
    is an order id only when it has the PO- prefix or the number's leading zeros ("000012")."""
    text = text.strip()
    match = _ORDER_SEARCH.fullmatch(text)
    if match is None or not (text[:1].isalpha() or text.startswith("0")):
        return None
    return int(match.group(1)) or None


@dataclass(frozen=True)
class ListQuery:
    search: str = ""
    filters: frozenset[ListFilter] = frozenset()
    label: str = ""


def parse_list_query(query: Mapping[str, str], getall: Sequence[str] = ()) -> ListQuery:
    """The list's query string: unknown filters are ignored (an old bookmark still opens)."""
    filters = frozenset(ListFilter(f) for f in getall if f in ListFilter.__members__.values())
    return ListQuery(
        search=(query.get("q") or "").strip()[:100],
        filters=filters,
        label=normalize_label(query.get("label") or ""),
    )


class ReplyMode(StrEnum):
    NORMAL = "normal"
    HUMAN_AGENT = "human_agent"
    DISABLED = "disabled"


@dataclass(frozen=True)
class ReplyState:
    """What the reply box allows now, and until when (Meta's windows, `bot.outbound.messaging_rules`)."""

    mode: ReplyMode
    tag: str | None
    until: datetime | None
    why: str


def reply_state(now: datetime, last_user_at: datetime | None, human_agent: bool = False) -> ReplyState:
    """`human_agent`: the app has Meta's Human Agent permission (settings.human_agent_permission)."""
    decision = decide_message(now, last_user_at, Author.AGENT, human_agent=human_agent)
    if decision.refusal is RefusalCode.NO_HUMAN_AGENT:
        return ReplyState(
            ReplyMode.DISABLED,
            None,
            None,
            "Replying from here is closed: more than 24 hours since the shopper last wrote. Meta lets a person "
            "answer for 7 days only from an app with its Human Agent permission (App Review), and this shop has "
            "not said it has it (setting human_agent_permission). Order updates still reach the shopper as an "
            "approved utility template; anything else waits for the shopper's next message.",
        )
    if not decision.allowed:
        return ReplyState(ReplyMode.DISABLED, None, None, f"Replying is closed: {decision.reason}.")
    assert last_user_at is not None
    if decision.tag is None:
        until = last_user_at + STANDARD_WINDOW
        return ReplyState(ReplyMode.NORMAL, None, until, f"Inside the 24-hour window ({_left(now, until)} left).")
    until = last_user_at + HUMAN_AGENT_WINDOW
    return ReplyState(
        ReplyMode.HUMAN_AGENT,
        decision.tag,
        until,
        f"After 24 hours only a person may answer: sent with the HUMAN_AGENT tag ({_left(now, until)} left).",
    )


def _left(now: datetime, until: datetime) -> str:
    return describe_duration(until - now)


def describe_duration(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days {hours % 24} h"


# Meta's error codes, in the merchant's words (docs/meta-platform.md §4, Errors).
_META_WORDS = {
    (10, 2018278): "Meta refused it: outside the 24-hour window (the shopper has to write first)",
    (10, None): "Meta refused it: not allowed by the messaging window",
    (551, None): "Meta refused it: this person isn't available right now (blocked the Page or left)",
    (100, 2018001): "Meta refused it: no such person for this Page",
    (190, None): "Meta refused the Page token: sending is paused until it is fixed",
    (613, None): "Meta's rate limit: it will be retried",
    (200, None): "Meta refused it: the Page lacks the messaging permission",
}


def describe_failure(code: int | None, subcode: int | None, message: str | None) -> str:
    """A failed send's reason in words; Meta's own message kept after it."""
    words = _META_WORDS.get((code or 0, subcode)) or _META_WORDS.get((code or 0, None))
    if words and message:
        return f"{words} ({message})"
    return words or message or "failed"


@dataclass(frozen=True)
class MessageState:
    label: str  # sending | sent | delivered | read | failed | refused | received
    reason: str | None = None


def message_state(
    direction: str,
    status: str | None,
    delivered_at: datetime | None,
    read_at: datetime | None,
    error: str | None,
    error_code: int | None = None,
    error_subcode: int | None = None,
    outbox_status: str | None = None,
) -> MessageState:
    if direction == "in":
        return MessageState("received")
    if status in (None, "pending", "sending") and outbox_status in ("sent", "failed", "refused"):
        status = outbox_status  # Meta's echo confirmed the outbox row before the sender recorded it
    if status in ("failed", "refused"):
        return MessageState(status, describe_failure(error_code, error_subcode, error) if error_code else error)
    if read_at is not None:
        return MessageState("read")
    if delivered_at is not None:
        return MessageState("delivered")
    if status in (None, "pending", "sending"):
        return MessageState("sending")
    return MessageState("sent")


# A shopper asking for a person (English and Chinese); the FAQ bot's hand-off may set this too.
_PERSON = regex.compile(
    r"\b(human|real person|a person|agent|staff|someone|customer service|talk to (?:you|someone))\b"
    r"|真人|客服|人工|職員|职员|店員|店员|有人嗎|有人吗",
    regex.IGNORECASE,
)


def asks_for_person(text: str | None) -> bool:
    return bool(text) and _PERSON.search(normalize_text(text or "")) is not None


def normalize_label(text: str) -> str:
    return " ".join(text.replace(",", " ").split())[:MAX_LABEL].casefold() if text.strip() else ""


def parse_labels(text: str) -> list[str]:
    """Labels typed as `vip, friday live`: trimmed, lower case, unique, at most MAX_LABELS."""
    seen: list[str] = []
    for part in text.split(","):
        label = " ".join(part.split())[:MAX_LABEL].casefold()
        if label and label not in seen:
            seen.append(label)
    return seen[:MAX_LABELS]


def labels_column(labels: Iterable[str]) -> str:
    """Stored with delimiters on both sides so that `LIKE '%,vip,%'` matches whole labels only."""
    labels = list(labels)
    return f",{','.join(labels)}," if labels else ""


def labels_of(column: str | None) -> list[str]:
    return [label for label in (column or "").split(",") if label]


def display_name(name: str | None, psid: str) -> str:
    return name or f"Shopper …{psid[-4:]}"


# What a saved reply may say in braces, filled for the conversation it is inserted into.
PLACEHOLDERS = {"name": "the shopper's name", "order": "their latest order's number"}
_PLACEHOLDER = regex.compile(r"\{([^{}\s]{1,30})\}")


def unknown_placeholders(text: str) -> list[str]:
    """The `{word}`s of a saved reply that are no placeholder, to refuse it before anyone inserts it."""
    return [m.group(0) for m in _PLACEHOLDER.finditer(text) if m.group(1) not in PLACEHOLDERS]


def fill_placeholders(text: str, values: Mapping[str, str | None]) -> str:
    """A saved reply for one conversation; a placeholder with no value (no order yet) stays, for the agent
    to see and edit before sending."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or m.group(0), text)


TRAIL_COLUMNS = ("received_at", "author", "comment", "parsed_as", "outcome", "reply_status", "reply_error")


def trail_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """The comment trail as CSV for a spreadsheet (`spreadsheet_csv`)."""
    return spreadsheet_csv(TRAIL_COLUMNS, ([row.get(column) for column in TRAIL_COLUMNS] for row in rows))


# A separator a spreadsheet may split on (its locale's list separator, or a re-import with other settings),
# followed by what starts a formula once spaces are stripped: = + - @ tab CR.
_FORMULA_START = regex.compile(r"(^|[,;\t|\r\n])(?=[ \u00a0]*[=+\-@\t\r])")


def spreadsheet_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV that Excel and Sheets open as text, never as formulas, whatever their separator; UTF-8 BOM first.

    Every cell is quoted, and every place in a cell where a spreadsheet could start a new cell with a
    formula (its start, or after any of , ; tab | and line breaks, even past spaces) gets a `'`, so a
    comment like `x;=1+1;` stays text in a `;` locale too. The BOM makes Excel read UTF-8 (Chinese) right.
    """
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow([spreadsheet_cell(column) for column in header])
    for row in rows:
        writer.writerow([spreadsheet_cell(value) for value in row])
    return "\ufeff" + out.getvalue()


def spreadsheet_cell(value: Any) -> str:
    """A cell's text with every formula start neutralised by a `'` (CSV injection)."""
    return _FORMULA_START.sub(lambda m: m.group(1) + "'", "" if value is None else str(value))


def parsed_as(detail: str | None) -> str:
    """A comment's items as the parser read them: `A ×1 (M), B ×2`."""
    import json

    try:
        items = json.loads(detail or "{}").get("items", [])
    except (ValueError, AttributeError):
        return ""
    parts = []
    for item in items:
        if not isinstance(item, dict):
            continue
        code = item.get("code") or (f"#{item['product_id']}" if item.get("product_id") else "?")
        variant = item.get("variant")
        variant_text = (
            f" ({' / '.join(str(v) for v in variant.values())})" if isinstance(variant, dict) and variant else ""
        )
        parts.append(f"{code} ×{item.get('qty', '?')}{variant_text}: {item.get('outcome', '')}")
    return ", ".join(parts)
