"""What every admin JSON API reads and answers: one JSON body reader, `{"error": ...}` on a 4xx, JSON
bodies with text left unescaped.

Shared by the shop, orders, FAQ, hand-off, live video, members and operations APIs, so a refusal reads
the same everywhere. A request body is read by `read_json_object` (or `read_text` for a shop file,
`read_body` for the bytes a signature covers): too large 413, not UTF-8 or not JSON or no object 400, a
lone surrogate escape (`"\\ud800"`) anywhere in it 400 (no text of it could be stored or answered).
"""

from __future__ import annotations

import functools
import json
import re
from decimal import Decimal
from typing import Any, NoReturn

from aiohttp import web

_dumps_unescaped = functools.partial(json.dumps, ensure_ascii=False)


def dumps(value: Any, **kwargs: Any) -> str:
    """JSON with text left unescaped, unless it holds a lone surrogate (a YAML file's `"\\ud800"` named in a
    refusal): UTF-8 cannot carry one, so that answer escapes its text instead of failing with a 500."""
    text = _dumps_unescaped(value, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, **kwargs)
    return text


NOT_AN_OBJECT = "the body must be a JSON object"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads decodes "\\ud800" alone to one


def fail(exc_class: type[web.HTTPException], message: str, **extra: Any) -> NoReturn:
    """Raise `exc_class` with `{"error": message, **extra}` as its JSON body."""
    raise exc_class(text=dumps({"error": message, **extra}), content_type="application/json")


def respond(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=dumps)


async def read_body(request: web.Request) -> bytes:
    """The raw body; over the app's `client_max_size`, 413 with a JSON reason (aiohttp's own is text)."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        # max_size only shapes aiohttp's default text, which the JSON body replaces.
        raise web.HTTPRequestEntityTooLarge(
            max_size=0, text=dumps({"error": f"the body is too large: {exc.text}"}), content_type="application/json"
        ) from None


async def read_text(request: web.Request) -> str:
    """The body as UTF-8 text (a byte-order mark allowed); 400 when it is not UTF-8."""
    try:
        return (await read_body(request)).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(web.HTTPBadRequest, f"the body is not UTF-8 text (byte {exc.start})")


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number JSON allows")


async def read_json_object(
    request: web.Request, *, expected: str = NOT_AN_OBJECT, optional: bool = False
) -> dict[str, Any]:
    """The body as a JSON object, or a 4xx with `{"error": reason}`.

    Numbers with a fraction are read as `Decimal`, so a price of 12.30 is exactly 12.30; NaN and Infinity
    are refused (JSON has no such numbers). `expected` is the refusal of JSON that is no object: it says
    what to send. `optional`: an empty body reads as `{}`.
    """
    text = await read_text(request)
    if optional and not text.strip():
        return {}
    try:
        body = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except ValueError as exc:
        fail(web.HTTPBadRequest, f"{NOT_AN_OBJECT}: {exc}")
    except RecursionError:  # `[[[[...` deeper than the parser's recursion allows
        fail(web.HTTPBadRequest, f"{NOT_AN_OBJECT}: too deeply nested")
    if not isinstance(body, dict):
        fail(web.HTTPBadRequest, expected)
    where = _lone_surrogate_in(body)
    if where is not None:
        # Refused, not replaced: a program sent it, and a name or a code quietly changed is worse.
        fail(web.HTTPBadRequest, f"{where}: a lone surrogate (\\ud800-\\udfff) is no Unicode text; send the whole pair")
    return body


def _lone_surrogate_in(body: dict[str, Any]) -> str | None:
    """Where in `body` a text (or a key) holds a lone surrogate, like `lines[0].code`; None if nowhere.

    A loop, not recursion: the body may be nested as deep as the JSON parser allowed."""
    stack: list[tuple[str, object]] = [("body", body)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _LONE_SURROGATE.search(value):
                return where
        elif isinstance(value, dict):
            for key, item in value.items():
                # The key itself is not quoted: it is what cannot be written.
                if _LONE_SURROGATE.search(key):
                    return f"{where} (a key)"
                stack.append((key if where == "body" else f"{where}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
    return None


def path_page_id(request: web.Request) -> str:
    """The `{page_id}` of the URL: a Page id is digits, anything else is no Page (404)."""
    page_id = request.match_info["page_id"]
    if not page_id.isdigit() or len(page_id) > 64:
        fail(web.HTTPNotFound, f"{page_id!r} is not a Page id (digits, like 1000000000001)")
    return page_id
