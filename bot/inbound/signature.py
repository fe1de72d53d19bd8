"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`. Pure.

Always over the raw bytes: Meta escapes non-ASCII as \\uXXXX, so re-serialised JSON would not match.
"""

from __future__ import annotations

import hashlib
import hmac

from bot.runtime.secret_compare import same_secret

PREFIX = "sha256="


def sign_body(body: bytes, app_secret: str) -> str:
    """The header value Meta would send for `body`."""
    return PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, app_secret: str) -> bool:
    """Constant-time check of the header against the body."""
    if not header or not header.startswith(PREFIX):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return same_secret(header[len(PREFIX) :].strip().lower(), expected)
