"""The baseline: a bare aiohttp endpoint that reads the body and answers 200, nothing else.

It runs on uvloop, as `plusone serve` does by default, so the comparison is of the work per request alone."""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web


async def receive(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="EVENT_RECEIVED")


def main() -> None:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/webhook", receive)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
