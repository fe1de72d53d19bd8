"""localstripe (a stateful fake of Stripe's API, from PyPI) as a child process, for the card payment tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.runtime.localstripe import start_blocking, stop_blocking


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """Start localstripe on a free port, wait until it listens, stop it after the session."""
    process, url = start_blocking()
    try:
        yield url
    finally:
        stop_blocking(process)
