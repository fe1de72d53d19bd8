"""Text normalisation shared by the comment parsers (orders now, FAQ keywords later). Pure, no I/O.

A shopper on a phone can write the same comment many ways: full-width characters from a Chinese input
method (`Ａ＋１`), capitals, invisible characters pasted from elsewhere, odd spaces. `normalize_text`
folds all of them into one canonical string so that matchers only ever compare canonical forms:
normalise the pattern (a product code, a keyword) and the text with the same function.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "storable_text"]

# Invisible format characters that copy-paste and emoji keyboards leave in text: soft hyphen, Mongolian
# vowel separator, zero-width space / non-joiner / joiner, bidi marks, embeddings and isolates, word
# joiner, invisible operators, byte-order mark. They would split `A<ZWSP>+1` so they are dropped.
# (A regex rather than str.translate: translate looks up every character and costs ~0.1 us each,
# a millisecond on a 10 KB comment.)
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")

# A lone UTF-16 surrogate: JSON may carry one (`"\\ud83d"` is valid JSON) and Python keeps it, but no
# UTF-8 encoder (SQL drivers, Redis, an HTTP answer) can write it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD, so that it can be written as UTF-8 anywhere."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def normalize_text(text: str, *, keep_newlines: bool = False) -> str:
    """Return `text` in canonical form for matching.

    - Unicode NFKC: full-width and other compatibility forms become their plain form (`Ａ＋１，` is
      `A+1,`, `①` is `1`).
    - Case folded (`Flower` and `FLOWER` are `flower`; `ß` is `ss`).
    - Zero-width and other invisible format characters dropped.
    - Every run of whitespace (tabs, no-break and ideographic spaces included) becomes one space, and
      the ends are stripped. With `keep_newlines=True` a run that contains a line break becomes one
      `"\\n"` instead, for callers to whom a new line means something (the order parser ends a
      product's variant words there).

    The function is idempotent: normalising a normalised string changes nothing.
    """
    if text.isascii():
        # ASCII is already NFKC and has no invisible characters; lower() is casefold() on ASCII.
        # Most comments take this path, which keeps the parser's throughput up.
        folded = text.lower()
    else:
        if _INVISIBLE.search(text):
            text = _INVISIBLE.sub("", text)
        folded = unicodedata.normalize("NFKC", text).casefold()
        # Case folding can leave a string that is not NFKC any more (e.g. `ǰ` folds to j + combining
        # caron); a second pass keeps the function idempotent. The check is cheap when nothing changes.
        if not unicodedata.is_normalized("NFKC", folded):
            folded = unicodedata.normalize("NFKC", folded)
    if keep_newlines:
        lines = folded.splitlines()
        if len(lines) > 1:
            kept = (" ".join(line.split()) for line in lines)
            return "\n".join(line for line in kept if line)
    return " ".join(folded.split())
