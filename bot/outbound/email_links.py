"""The links in our e-mails: `/u/<signed token>` (unsubscribe) and `/o/<open token>.gif` (the open pixel).

An unsubscribe token names the e-mail it came in (`<email_outbox id>.<signature>`): no address in the URL,
and the row says whose it is. The signature is HMAC-SHA256 over the id with the link key (`link_key`:
the `link_secret` setting, else one derived from the app secret), cut to 128 bits, compared in constant
time: a changed id or signature is no token at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from config.settings import Settings

_LABEL = b"plusone e-mail links v1"


def link_key(settings: Settings) -> bytes:
    if settings.link_secret is not None:
        return settings.link_secret.get_secret_value().encode()
    if settings.app_secret is None:
        raise ValueError("no link_secret and no app_secret: e-mail links cannot be signed")
    # Derived, not the app secret itself: a leaked link key never signs a webhook.
    return hmac.new(settings.app_secret.get_secret_value().encode(), _LABEL, hashlib.sha256).digest()


def _signature(key: bytes, email_id: int) -> str:
    digest = hmac.new(key, f"unsubscribe:{email_id}".encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def unsubscribe_token(key: bytes, email_id: int) -> str:
    return f"{email_id}.{_signature(key, email_id)}"


def read_unsubscribe_token(key: bytes, token: str) -> int | None:
    """The e-mail id a token names, or None when it was not signed by us (tampered, truncated, made up)."""
    number, _, signature = token.partition(".")
    if not (number.isascii() and number.isdigit() and 0 < len(number) <= 18 and signature):
        return None
    email_id = int(number)
    if not hmac.compare_digest(_signature(key, email_id).encode(), signature.encode("utf-8", "replace")):
        return None
    return email_id


def unsubscribe_url(base_url: str, key: bytes, email_id: int) -> str:
    return f"{base_url}/u/{unsubscribe_token(key, email_id)}"


def pixel_url(base_url: str, open_token: str) -> str:
    return f"{base_url}/o/{open_token}.gif"
