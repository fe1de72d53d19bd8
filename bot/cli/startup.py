"""How the long-running commands (`serve`, `worker`) start: logging and the event loop, from the settings."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["configure_logging", "new_event_loop"]


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def new_event_loop(settings: Settings) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind `PLUSONE_EVENT_LOOP` names (uvloop by default)."""
    if settings.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
