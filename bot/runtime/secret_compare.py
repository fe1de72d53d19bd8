"""Comparing a secret a client sent (a header, a cookie, a form field) with ours, in constant time.

`hmac.compare_digest` refuses str with non-ASCII characters (TypeError), and aiohttp hands over header
bytes that are not UTF-8 as lone surrogates, which `str.encode()` refuses (UnicodeEncodeError): either
was a 500 for any stranger. Both sides are compared as bytes, every str encodable.
"""

from __future__ import annotations

import hmac


def _bytes(text: str) -> bytes:
    # surrogatepass: a lone surrogate (a byte aiohttp could not decode) encodes too, and so never matches.
    return text.encode("utf-8", "surrogatepass")


def same_secret(given: str | None, expected: str) -> bool:
    """Whether `given` is `expected`, in time independent of where they differ; None or "" never is."""
    return bool(given) and hmac.compare_digest(_bytes(given or ""), _bytes(expected))
