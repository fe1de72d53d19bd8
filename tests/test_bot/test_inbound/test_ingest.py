"""The ingest stream's ids, as the ops API and the inbox's dead-letter page check them before Redis sees them."""

from __future__ import annotations

import pytest

from bot.inbound.ingest import is_stream_id


@pytest.mark.parametrize("text", ["0-0", "1700000000000-0", "1-18446744073709551615"])
def test_a_redis_stream_id_is_accepted(text: str) -> None:
    assert is_stream_id(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "1",
        "1-",
        "-1",
        "1-2-3",
        "a-1",
        "1-18446744073709551616",  # past 64 bits: Redis refuses it
        "١-٠",  # Arabic-Indic digits are digits to Python, not to Redis
        "³-1",
        " 1-1",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    assert not is_stream_id(text)
