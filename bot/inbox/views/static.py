"""`GET /inbox/static/{name}`: the inbox's scripts and stylesheet (bot/inbox/static/: inbox.js, inbox.css,
console.js, pointer.js, journeys.js)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

routes = web.RouteTableDef()
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_TYPES = {
    "inbox.js": "text/javascript",
    "inbox.css": "text/css",
    "console.js": "text/javascript",
    "pointer.js": "text/javascript",
    "journeys.js": "text/javascript",
}
_static: dict[str, bytes] = {}


@routes.get("/inbox/static/{name}")
async def static_file(request: web.Request) -> web.Response:
    """The script and the stylesheet (read once, in a thread; there is nothing else to serve)."""
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        raise web.HTTPNotFound()
    if name not in _static:
        _static[name] = await asyncio.to_thread((STATIC_DIR / name).read_bytes)
    return web.Response(
        body=_static[name],
        content_type=STATIC_TYPES[name],
        charset="utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
