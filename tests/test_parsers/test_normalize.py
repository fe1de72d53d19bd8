"""Tests for parsers.normalize: one table of what shoppers type and what matchers see, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.normalize import normalize_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("A+1", "a+1", id="ascii-lowered"),
        pytest.param("Ａ＋１，Ｂ＋２", "a+1,b+2", id="full-width-to-ascii"),
        pytest.param("Ｆｌｏｗｅｒ", "flower", id="full-width-word"),
        pytest.param("FLOWER", "flower", id="upper-case"),
        pytest.param("Straße", "strasse", id="casefold-not-just-lower"),
        pytest.param("A\u200b+\u200c1\u200d", "a+1", id="zero-width-dropped"),
        pytest.param("\ufeffA+1", "a+1", id="bom-dropped"),
        pytest.param("A\u2060+1", "a+1", id="word-joiner-dropped"),
        pytest.param("A\u00ad+1", "a+1", id="soft-hyphen-dropped"),
        pytest.param("\u202eA+1\u202c", "a+1", id="bidi-controls-dropped"),
        pytest.param("A\u3000+\u30001", "a + 1", id="ideographic-space"),
        pytest.param("A\u00a0+1", "a +1", id="no-break-space"),
        pytest.param("A\t\t+1", "a +1", id="tabs-collapse"),
        pytest.param("  A   +1  ", "a +1", id="runs-collapse-and-strip"),
        pytest.param("A+1\nB+1", "a+1 b+1", id="newline-is-a-space"),
        pytest.param("A+1\r\n\r\nB+1", "a+1 b+1", id="crlf-is-a-space"),
        pytest.param("①", "1", id="circled-digit"),
        pytest.param("我要Ａ＋１", "我要a+1", id="chinese-kept"),
        pytest.param("❤️", "❤\ufe0f", id="emoji-kept"),
        pytest.param("café", "café", id="composed"),
        pytest.param("cafe\u0301", "café", id="decomposed-composes"),
        pytest.param("", "", id="empty"),
        pytest.param(" \u3000\u200b ", "", id="only-blank"),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("A+1\nL", "a+1\nl", id="newline-kept"),
        pytest.param("A+1 \r\n \n  L  ", "a+1\nl", id="blank-lines-and-spaces-fold-into-one"),
        pytest.param("A+1\u2028L", "a+1\nl", id="line-separator"),
        pytest.param("A+1\u3000\u3000L", "a+1 l", id="spaces-stay-spaces"),
        pytest.param("\n\nA+1\n", "a+1", id="stripped"),
    ],
)
def test_normalize_text_keep_newlines(text: str, expected: str) -> None:
    assert normalize_text(text, keep_newlines=True) == expected


@settings(max_examples=300)
@given(st.text())
def test_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    kept = normalize_text(text, keep_newlines=True)
    assert normalize_text(kept, keep_newlines=True) == kept


@settings(max_examples=200)
@given(st.text())
def test_no_invisible_or_odd_whitespace_left(text: str) -> None:
    out = normalize_text(text, keep_newlines=True)
    assert not any(c in out for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad\u3000\t\r")
    assert "  " not in out
    assert out == out.strip()


def _full_width(text: str) -> str:
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_full_width_ascii_is_ascii(text: str) -> None:
    assert normalize_text(_full_width(text)) == normalize_text(text)
