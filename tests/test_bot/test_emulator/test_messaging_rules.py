"""What a Send API message may hold: Meta's documented limits on text, quick replies, buttons and templates.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import PAGE_ID
from tests.test_bot.test_emulator.conftest import error_of, send


def _quick_replies(n: int, title: str = "Red") -> list[dict[str, str]]:
    return [{"content_type": "text", "title": title, "payload": f"P{i}"} for i in range(n)]


def _button_template(text: str, buttons: int) -> dict[str, Any]:
    payload = {
        "template_type": "button",
        "text": text,
        "buttons": [{"type": "postback", "title": f"B{i}", "payload": f"P{i}"} for i in range(buttons)],
    }
    return {"attachment": {"type": "template", "payload": payload}}


def _generic(elements: int, title: str = "Hat", buttons: int = 1) -> dict[str, Any]:
    element = {
        "title": title,
        "subtitle": "A hat",
        "buttons": [{"type": "web_url", "url": "https://example.com", "title": f"B{i}"} for i in range(buttons)],
    }
    payload = {"template_type": "generic", "elements": [element] * elements}
    return {"attachment": {"type": "template", "payload": payload}}


@pytest.mark.parametrize(
    ("message", "ok"),
    [
        ({"text": "x" * 2000}, True),
        ({"text": "買" * 2000}, True),
        ({"text": "x" * 2001}, False),
        ({"text": "買" * 2001}, False),
        ({"text": ""}, False),
        ({}, False),
        ({"metadata": "only metadata"}, False),
        ({"text": "hi", "attachment": {"type": "image", "payload": {"url": "https://x/y.png"}}}, False),
        ({"attachment": {"type": "image", "payload": {"url": "https://x/y.png"}}}, True),
        ({"attachment": {"type": "sticker", "payload": {"url": "https://x/y.png"}}}, False),
        ({"text": "pick", "quick_replies": _quick_replies(13)}, True),
        ({"text": "pick", "quick_replies": _quick_replies(14)}, False),
        ({"text": "pick", "quick_replies": _quick_replies(1, "x" * 20)}, True),
        ({"text": "pick", "quick_replies": _quick_replies(1, "x" * 21)}, False),
        ({"text": "pick", "quick_replies": [{"content_type": "user_email"}]}, True),
        (_button_template("x" * 640, 3), True),
        (_button_template("x" * 641, 1), False),
        (_button_template("ok", 0), False),
        (_button_template("ok", 4), False),
        (_generic(10), True),
        (_generic(11), False),
        (_generic(1, title="x" * 80), True),
        (_generic(1, title="x" * 81), False),
        (_generic(1, buttons=4), False),
        ({"text": "hi", "metadata": "k" * 1000}, True),
        ({"text": "hi", "metadata": "k" * 1001}, False),
    ],
)
async def test_message_validation_follows_meta_limits(emulator, http, message: dict[str, Any], ok: bool) -> None:
    await emulator.open_window(PAGE_ID, "7201")
    status, body = await send(http, emulator, {"id": "7201"}, message=message)
    if ok:
        assert status == 200, body
    else:
        assert status == 400 and error_of(body) == (100, None), body
