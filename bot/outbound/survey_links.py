"""The survey link in a journey's e-mail: `/s/<message id>.<signature>`, the star page of that message.

Signed like the unsubscribe links (bot.outbound.email_links: HMAC-SHA256 with the link key, cut to 128 bits,
compared in constant time) but over its own label, so an unsubscribe token is never a survey token. The
link names only the journey message; whose it is, the message row says: a changed id or signature is no
token at all, so nobody answers another member's survey by editing the link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def _signature(key: bytes, message_id: int) -> str:
    digest = hmac.new(key, f"survey:{message_id}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def survey_token(key: bytes, message_id: int) -> str:
    return f"{message_id}.{_signature(key, message_id)}"


def read_survey_token(key: bytes, token: str) -> int | None:
    """The journey message a token names, or None when we did not sign it (tampered, truncated, made up)."""
    number, _, signature = token.partition(".")
    if not (number.isascii() and number.isdigit() and 0 < len(number) <= 18 and signature):
        return None
    message_id = int(number)
    if not hmac.compare_digest(_signature(key, message_id).encode(), signature.encode("utf-8", "replace")):
        return None
    return message_id


def survey_url(base_url: str, key: bytes, message_id: int) -> str:
    return f"{base_url}/s/{survey_token(key, message_id)}"
