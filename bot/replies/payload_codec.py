"""Quick-reply and postback payloads: the one place they are built and read. Pure, no I/O.

Every payload the bot puts on a button or quick reply is `v1:<ACTION>[:<arg>...]`, each argument
percent-encoded (so `:` inside a comment id or a size cannot split it), at most 1,000 characters (Meta's
limit). A tap comes back as a webhook, possibly days later, possibly forged by anyone who can type
into a webhook replay: `decode_payload` never raises; it answers a `Payload` or a `PayloadProblem` that
a handler turns into a friendly answer (`STALE_PAYLOAD_TEXT`).

Get Started is configured on the Page's Messenger profile, not by us, so its usual spellings
(`GET_STARTED`, `GET_STARTED_PAYLOAD`) are read as the GET_STARTED action. Payloads from before this
module (`CART:v1`, `PICK:v1:...`) are still in shoppers' chats and are read as their v1 meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote, unquote

__all__ = [
    "MAX_PAYLOAD",
    "PAYLOAD_VERSION",
    "STALE_PAYLOAD_TEXT",
    "Payload",
    "PayloadAction",
    "PayloadErrorCode",
    "PayloadProblem",
    "decode_payload",
    "encode_payload",
]

PAYLOAD_VERSION = "v1"
MAX_PAYLOAD = 1000
# The English text (the catalog's msgid); handlers answer in the shopper's language (bot.replies.chat).
STALE_PAYLOAD_TEXT = "Sorry, that button is no longer active. Please type your question, or comment the code again."


class PayloadAction(StrEnum):
    GET_STARTED = "GET_STARTED"
    CART = "CART"  # show the cart
    PICK = "PICK"  # a size or colour for an item: comment id, code, then option/value pairs
    FAQ = "FAQ"  # answer with an FAQ rule: its key
    AGENT = "AGENT"  # the shopper asks for a person
    CHECKOUT = "CHECKOUT"  # the checkout link of the cart (the Messenger profile's menu)
    POINTS = "POINTS"  # the member card: tier and points (the Messenger profile's menu)
    LANGUAGE = "LANGUAGE"  # the shopper chooses the language the bot writes in: the locale
    ORDER = "ORDER"  # which product or how many for an item the parser asked about: comment id, code, quantity
    POINT = "POINT"  # which product on screen a comment without a code meant: comment id, order code
    SURVEY = "SURVEY"  # a journey survey's stars: the journey message's id, 1..5
    SURVEY_SKIP = "SURVEY_SKIP"  # no comment after the stars: the journey message's id


# How many arguments each action takes: (at least, at most); None for no upper bound.
_ARITY: dict[PayloadAction, tuple[int, int | None]] = {
    PayloadAction.GET_STARTED: (0, 0),
    PayloadAction.CART: (0, 0),
    PayloadAction.PICK: (2, None),
    PayloadAction.FAQ: (1, 1),
    PayloadAction.AGENT: (0, 0),
    PayloadAction.CHECKOUT: (0, 0),
    PayloadAction.POINTS: (0, 0),
    PayloadAction.LANGUAGE: (1, 1),
    PayloadAction.ORDER: (3, 3),
    PayloadAction.POINT: (2, 2),
    PayloadAction.SURVEY: (2, 2),
    PayloadAction.SURVEY_SKIP: (1, 1),
}
_PROFILE_GET_STARTED = frozenset({"GET_STARTED", "GET_STARTED_PAYLOAD"})
_LEGACY_CART = "CART:v1"
_LEGACY_PICK = "PICK:v1:"


class PayloadErrorCode(StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNKNOWN_VERSION = "unknown_version"  # an older (or future) format, or not ours at all
    UNKNOWN_ACTION = "unknown_action"
    BAD_ARGUMENTS = "bad_arguments"


@dataclass(frozen=True, slots=True)
class Payload:
    action: PayloadAction
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PayloadProblem:
    code: PayloadErrorCode
    raw: str
    action: PayloadAction | None = None  # what it seems meant for (`PICK:v0:...` is a size choice), if anything

    @property
    def text(self) -> str:
        """What to tell the shopper who tapped it."""
        return STALE_PAYLOAD_TEXT


def encode_payload(action: PayloadAction, *args: str) -> str:
    """The payload for `action`; raises ValueError for a wrong argument count or a payload over Meta's limit."""
    low, high = _ARITY[action]
    if len(args) < low or (high is not None and len(args) > high):
        raise ValueError(f"{action.value} takes {low}..{high if high is not None else 'n'} arguments, not {len(args)}")
    payload = ":".join([PAYLOAD_VERSION, action.value, *(quote(arg, safe="") for arg in args)])
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload is {len(payload)} characters; Meta allows {MAX_PAYLOAD}")
    return payload


def decode_payload(raw: str | None) -> Payload | PayloadProblem:
    """What a tapped payload asks for, or why it cannot be used. Never raises."""
    decoded = _decode(raw)
    if isinstance(decoded, PayloadProblem) and decoded.action is None:
        # Either order of version and action, any version: lets a handler answer in its own words.
        for part in decoded.raw.split(":", 2)[:2]:
            if part in PayloadAction.__members__:
                return PayloadProblem(decoded.code, decoded.raw, PayloadAction(part))
    return decoded


def _decode(raw: str | None) -> Payload | PayloadProblem:
    if not raw:
        return PayloadProblem(PayloadErrorCode.EMPTY, raw or "")
    if len(raw) > MAX_PAYLOAD:
        return PayloadProblem(PayloadErrorCode.TOO_LONG, raw[:80])
    if raw in _PROFILE_GET_STARTED:
        return Payload(PayloadAction.GET_STARTED)
    if raw == _LEGACY_CART:
        return Payload(PayloadAction.CART)
    if raw.startswith(_LEGACY_PICK):
        return _legacy_pick(raw)
    version, _, rest = raw.partition(":")
    if version != PAYLOAD_VERSION:
        return PayloadProblem(PayloadErrorCode.UNKNOWN_VERSION, raw)
    name, *encoded = rest.split(":")
    try:
        action = PayloadAction(name)
    except ValueError:
        return PayloadProblem(PayloadErrorCode.UNKNOWN_ACTION, raw)
    args = tuple(unquote(arg) for arg in encoded)
    low, high = _ARITY[action]
    if len(args) < low or (high is not None and len(args) > high) or any(not arg for arg in args[:low]):
        return PayloadProblem(PayloadErrorCode.BAD_ARGUMENTS, raw)
    return Payload(action, args)


def _legacy_pick(raw: str) -> Payload | PayloadProblem:
    """`PICK:v1:<comment>:<code>:k=v&k=v` (percent-encoded parts), as the first release wrote it."""
    try:
        comment_id, code, rest = raw[len(_LEGACY_PICK) :].split(":", 2)
        pairs: list[str] = []
        for pair in filter(None, rest.split("&")):
            key, value = pair.split("=", 1)
            pairs += [unquote(key), unquote(value)]
    except ValueError:
        return PayloadProblem(PayloadErrorCode.BAD_ARGUMENTS, raw)
    if not comment_id or not code:
        return PayloadProblem(PayloadErrorCode.BAD_ARGUMENTS, raw)
    return Payload(PayloadAction.PICK, (unquote(comment_id), unquote(code), *pairs))
