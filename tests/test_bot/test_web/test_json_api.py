"""The one JSON body reader of the admin APIs (bot/web/json_api.py): every refusal is a 4xx with
`{"error": reason}`, on a small app of its own and on the running bot's operations API."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.web.json_api import dumps, fail, read_json_object, respond
from tests.conftest import ADMIN_TOKEN
from tests.test_bot.stack import Stack

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LIMIT = 1024
Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(aiohttp_client: Any) -> Client:
    async def echo(request: web.Request) -> web.Response:
        body = await read_json_object(request, expected="send an object", optional="optional" in request.query)
        return respond({"types": {key: type(value).__name__ for key, value in body.items()}})

    app = web.Application(client_max_size=LIMIT)
    app.router.add_post("/echo", echo)
    return await aiohttp_client(app)


async def test_an_object_is_read_with_exact_decimals(client: Client) -> None:
    response = await client.post("/echo", data='\ufeff{"price": 12.30, "qty": 2, "name": "花"}'.encode())
    assert response.status == 200
    assert await response.json() == {"types": {"price": Decimal.__name__, "qty": "int", "name": "str"}}


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (b"", 400, "the body must be a JSON object: Expecting value: line 1 column 1 (char 0)"),
        (
            b"{",
            400,
            "the body must be a JSON object: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (b'{"a": NaN}', 400, "the body must be a JSON object: NaN is not a number JSON allows"),
        (b"[" * 100_000, 413, None),  # over the app's limit before it is parsed
        (b"[" * 1000, 400, "the body must be a JSON object: too deeply nested"),
        (b"[1]", 400, "send an object"),
        (b'"text"', 400, "send an object"),
        (b'{"a": "\xff"}', 400, "the body is not UTF-8 text (byte 7)"),
        (b"x" * (LIMIT + 1), 413, None),
    ],
)
async def test_a_refused_body_answers_json_with_the_reason(
    client: Client, data: bytes, status: int, error: str | None
) -> None:
    response = await client.post("/echo", data=data)
    assert response.status == status
    assert response.content_type == "application/json"
    reason = (await response.json())["error"]
    if error is None:
        assert reason.startswith("the body is too large: ") and str(LIMIT) in reason
    else:
        assert reason == error


async def test_an_optional_body_may_be_empty(client: Client) -> None:
    response = await client.post("/echo?optional=1", data=b" ")
    assert response.status == 200 and await response.json() == {"types": {}}


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/api/dead-letters?limit=x", 400, "limit: a whole number from 1 to 1000"),
        ("GET", "/api/dead-letters?limit=0", 400, "limit: a whole number from 1 to 1000"),
        ("GET", "/api/dead-letters?after=1-2-3", 400, "after must be a dead-letter id like 1700000000000-0"),
        ("POST", "/api/dead-letters/1-0/retry", 404, "no dead letter 1-0"),
        ("GET", "/api/outbox?limit=1001", 400, "limit: a whole number from 1 to 1000"),
        ("POST", "/api/pages/x/resume", 400, "page id must be numeric"),
        ("POST", "/api/pages/1000000000009/resume", 404, "Page 1000000000009 is not paused"),
    ],
)
async def test_the_operations_api_refuses_in_the_same_json_shape(
    stack: Stack, method: str, path: str, status: int, error: str
) -> None:
    response = await stack.client.request(method, path, headers=ADMIN)
    assert response.status == status
    assert await response.json() == {"error": error}


async def test_a_body_over_the_servers_limit_is_refused_as_json(stack: Stack) -> None:
    too_big = b" " * (stack.settings.max_body_bytes + 1)
    response = await stack.client.patch("/api/products/A", data=too_big, headers=ADMIN)
    assert response.status == 413
    assert (await response.json())["error"].startswith("the body is too large")


def test_a_refusal_naming_a_lone_surrogate_is_still_json() -> None:
    """A shop file's key `"\\ud800"` (YAML decodes it to a lone surrogate) named in a refusal: the answer is
    JSON that UTF-8 can carry, with the text escaped, not a 500 (tests/test_fuzz.py found it)."""
    with pytest.raises(web.HTTPBadRequest) as refused:
        fail(web.HTTPBadRequest, "unknown field '\ud800x'")
    body = refused.value.text
    assert body is not None
    body.encode("utf-8")  # raised UnicodeEncodeError before
    assert json.loads(body) == {"error": "unknown field '\ud800x'"}
    assert dumps({"name": "陳大文"}) == '{"name": "陳大文"}'  # everything else stays unescaped
