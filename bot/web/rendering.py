"""The one Jinja2 environment of the server-rendered pages: the checkout and the merchant inbox.

Templates live under bot/web/templates/ (the inbox's in its inbox/ folder) and are named by their path
there: "checkout.html", "inbox/list.html". They are read and compiled once, in a thread (file reads would
block the event loop), then answered from memory. Autoescape is on: shoppers' and products' names are
text, never markup.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from carts.core import CartLineInfo, format_money

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_environment: jinja2.Environment | None = None


def variant_json(line: CartLineInfo) -> str:
    """A cart line's variant as its claims store it (canonical JSON, "" for none): the inbox's cart forms
    post it back to name the line."""
    return json.dumps(dict(line.variant), sort_keys=True, ensure_ascii=False) if line.variant else ""


def _hhmm(moment: datetime | None) -> str:
    return moment.strftime("%d %b %H:%M") if moment else ""


def _load() -> jinja2.Environment:
    sources = {
        path.relative_to(TEMPLATE_DIR).as_posix(): path.read_text("utf-8") for path in TEMPLATE_DIR.rglob("*.html")
    }
    env = jinja2.Environment(loader=jinja2.DictLoader(sources), autoescape=True)
    env.filters["money"] = format_money
    env.filters["hhmm"] = _hhmm
    env.filters["urlq"] = lambda text: quote(str(text), safe="")
    env.globals["variant_json"] = variant_json
    for name in sources:
        env.get_template(name)  # compile now; DictLoader then answers from memory
    return env


async def environment() -> jinja2.Environment:
    """The environment, built on first use (in a thread) and kept."""
    global _environment
    if _environment is None:
        _environment = await asyncio.to_thread(_load)
    return _environment


async def render_page(
    name: str, context: Mapping[str, Any], *, headers: Mapping[str, str], status: int = 200
) -> web.Response:
    """Template `name` rendered with `context`, as an HTML response with the caller's security headers."""
    html = (await environment()).get_template(name).render(**context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8", headers=headers)
