"""aiohttp's server log, with a client's faults in one line: a malformed request (bad request line, header
or body framing) or a client that went away mid-request (an aborted upload) is the client's doing, and
aiohttp would log each as a 20-line ERROR traceback. They are logged at INFO, one line each; any other
error keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

server_log = logging.getLogger("aiohttp.server")


def client_fault(exc: BaseException | None) -> str | None:
    """What the client did wrong, in one line; None when `exc` is no client's fault."""
    if isinstance(exc, HttpProcessingError):
        return f"malformed request ({exc.message or type(exc).__name__})".replace("\n", " ")[:300]
    if isinstance(exc, ConnectionResetError):
        return "the client went away before the request was done"
    return None


class ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Passed to aiohttp's request handler as its `logger`."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        fault = client_fault(exc)
        if fault is None:
            self.logger.error(msg, *args, exc_info=exc_info, **kwargs)
        else:
            self.logger.info(f"{msg}: %s", *args, fault)


def server_logger() -> logging.LoggerAdapter:  # type: ignore[type-arg]
    return ServerLog(server_log, {})
