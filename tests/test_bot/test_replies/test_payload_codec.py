"""Versioned quick-reply and postback payloads: built in one place, read without ever raising."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.replies.carts import parse_pick_payload, pick_payload
from bot.replies.payload_codec import (
    MAX_PAYLOAD,
    Payload,
    PayloadAction,
    PayloadErrorCode,
    PayloadProblem,
    decode_payload,
    encode_payload,
)


@pytest.mark.parametrize(
    ("action", "args", "encoded"),
    [
        (PayloadAction.CART, (), "v1:CART"),
        (PayloadAction.FAQ, ("hours",), "v1:FAQ:hours"),
        (PayloadAction.AGENT, (), "v1:AGENT"),
        (PayloadAction.PICK, ("123_456", "玫瑰", "size", "M:L"), "v1:PICK:123_456:%E7%8E%AB%E7%91%B0:size:M%3AL"),
    ],
)
def test_encode_and_decode(action: PayloadAction, args: tuple[str, ...], encoded: str) -> None:
    assert encode_payload(action, *args) == encoded
    assert decode_payload(encoded) == Payload(action, args)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GET_STARTED", Payload(PayloadAction.GET_STARTED)),
        ("GET_STARTED_PAYLOAD", Payload(PayloadAction.GET_STARTED)),
        ("CART:v1", Payload(PayloadAction.CART)),  # buttons sent before the codec
        (
            "PICK:v1:c1:A:size=L&colour=Light%20Blue",
            Payload(PayloadAction.PICK, ("c1", "A", "size", "L", "colour", "Light Blue")),
        ),
    ],
)
def test_profile_and_older_payloads_still_read(raw: str, expected: Payload) -> None:
    assert decode_payload(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code", "action"),
    [
        (None, PayloadErrorCode.EMPTY, None),
        ("", PayloadErrorCode.EMPTY, None),
        ("x" * (MAX_PAYLOAD + 1), PayloadErrorCode.TOO_LONG, None),
        ("v0:CART", PayloadErrorCode.UNKNOWN_VERSION, PayloadAction.CART),
        ("v2:FAQ:hours", PayloadErrorCode.UNKNOWN_VERSION, PayloadAction.FAQ),
        ("PICK:v0:c1:A:size=L", PayloadErrorCode.UNKNOWN_VERSION, PayloadAction.PICK),
        ("v1:REFUND_ALL", PayloadErrorCode.UNKNOWN_ACTION, None),
        ("v1:FAQ", PayloadErrorCode.BAD_ARGUMENTS, PayloadAction.FAQ),
        ("v1:FAQ:", PayloadErrorCode.BAD_ARGUMENTS, PayloadAction.FAQ),
        ("v1:FAQ:a:b", PayloadErrorCode.BAD_ARGUMENTS, PayloadAction.FAQ),
        ("v1:CART:extra", PayloadErrorCode.BAD_ARGUMENTS, PayloadAction.CART),
        ("v1:PICK:c1", PayloadErrorCode.BAD_ARGUMENTS, PayloadAction.PICK),
        ("PICK:v1:c1:A:size", PayloadErrorCode.BAD_ARGUMENTS, PayloadAction.PICK),
        ("hello", PayloadErrorCode.UNKNOWN_VERSION, None),
    ],
)
def test_old_or_forged_payloads_are_problems_not_errors(
    raw: str | None, code: PayloadErrorCode, action: PayloadAction | None
) -> None:
    problem = decode_payload(raw)
    assert isinstance(problem, PayloadProblem)
    assert (problem.code, problem.action) == (code, action)
    assert "no longer active" in problem.text


def test_encode_refuses_what_meta_or_the_reader_would_refuse() -> None:
    with pytest.raises(ValueError, match=r"FAQ takes 1\.\.1 arguments"):
        encode_payload(PayloadAction.FAQ)
    with pytest.raises(ValueError, match="Meta allows 1000"):
        encode_payload(PayloadAction.FAQ, "x" * 1000)


def test_pick_payloads_use_the_codec() -> None:
    payload = pick_payload("123_456", "B", {"size": "L", "colour": "Red"})
    assert payload == "v1:PICK:123_456:B:colour:Red:size:L"
    assert parse_pick_payload("v1:PICK:123_456:B:size") is None  # an option without its value


@given(action=st.sampled_from(list(PayloadAction)), args=st.lists(st.text(min_size=1, max_size=20), max_size=6))
def test_whatever_encodes_decodes_to_itself(action: PayloadAction, args: list[str]) -> None:
    try:
        encoded = encode_payload(action, *args)
    except ValueError:
        return  # wrong number of arguments for this action
    assert decode_payload(encoded) == Payload(action, tuple(args))


@given(raw=st.text(max_size=60))
def test_decoding_never_raises(raw: str) -> None:
    assert isinstance(decode_payload(raw), Payload | PayloadProblem)
