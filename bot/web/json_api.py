"""What every admin JSON API answers with: `{"error": ...}` on a 4xx, JSON bodies with text left unescaped.

Shared by the shop, orders, live video and members APIs, so a refusal reads the same everywhere.
"""

from __future__ import annotations

import functools
import json
from typing import Any, NoReturn

from aiohttp import web

dumps = functools.partial(json.dumps, ensure_ascii=False)


def fail(exc_class: type[web.HTTPException], message: str, **extra: Any) -> NoReturn:
    """Raise `exc_class` with `{"error": message, **extra}` as its JSON body."""
    raise exc_class(text=dumps({"error": message, **extra}), content_type="application/json")


def respond(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=dumps)
