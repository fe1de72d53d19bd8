"""How the long-running commands (`serve`, `worker`) start: logging and the event loop, from the settings."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["configure_logging", "new_event_loop", "set_clock"]


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def set_clock(settings: Settings) -> None:
    """This process's clock, `clock_offset` ahead of the machine's: every process of one serve alike."""
    from bot.runtime.clock import set_offset

    set_offset(settings.clock_offset)
    if settings.clock_offset:
        logging.getLogger("plusone").warning("the clock runs %s ahead of the machine's", settings.clock_offset)


def new_event_loop(settings: Settings) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind `PLUSONE_EVENT_LOOP` names (uvloop by default)."""
    if settings.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
