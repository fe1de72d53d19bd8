"""The payment methods' admin API (bot/web/payments_api.py): the same section as the shop file, read back
and shown at checkout; a bad field refused by name with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_web.test_checkout import ADMIN, comment_and_wait

METHODS: dict[str, Any] = {
    "fps": {"id": "1234567", "name": "Blossom"},
    "payme": {"link": "https://payme.hsbc/blossom", "name": "Blossom"},
    "cash_on_pickup": True,
}


async def test_put_then_get_then_the_checkout_offers_those_methods(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    empty = await bot_stack.client.get("/api/shop/payments", headers=ADMIN)
    assert empty.status == 200 and (await empty.json())["payments"] == {}
    # when: the merchant sets FPS, PayMe and cash on pickup
    put = await bot_stack.client.put("/api/shop/payments", json=METHODS, headers=ADMIN)
    body = await put.json()
    assert put.status == 200 and body["changed"] is True and body["payments"] == METHODS
    again = await bot_stack.client.put("/api/shop/payments", json=METHODS, headers=ADMIN)
    assert (await again.json())["changed"] is False
    # then: GET reads the same section back, and the checkout offers exactly those methods
    got = await (await bot_stack.client.get("/api/shop/payments", headers=ADMIN)).json()
    assert got == {"payments": METHODS, "language": "en"}
    token = await comment_and_wait(bot_stack, "A+1")
    html = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert 'value="fps"' in html and 'value="payme"' in html and 'value="cash_on_pickup"' in html
    assert 'value="bank_transfer"' not in html and 'value="stripe"' not in html


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"fps": {"id": "12", "name": "Blossom"}}, "fps.id", "7 to 9 digits"),
        ({"fps": {"id": "1234567"}}, "fps.name", "missing"),
        ({"payme": {"name": "Blossom"}}, "payme", "either link"),
        ({"payme": {"link": "https://evil.example/x", "name": "B"}}, "payme.link", "PayMe link"),
        ({"bank_transfer": {"bank": "HSBC", "account": "abc", "name": "B"}}, "bank_transfer.account", "digits"),
        ({"cash_on_pickup": "yes"}, "cash_on_pickup", "true or false"),
        ({"stripe": {"enabled": "on"}}, "stripe.enabled", "true or false"),
        ({"paypal": {}}, "paypal", "unknown payment method"),
        ({"fps": {"id": "1234567", "name": "B", "colour": "red"}}, "fps.colour", "unknown field"),
    ],
)
async def test_a_bad_field_is_refused_by_name_and_nothing_changes(
    bot_stack: Stack, body: dict[str, Any], field: str, words: str
) -> None:
    await bot_stack.client.put("/api/shop/payments", json=METHODS, headers=ADMIN)
    response = await bot_stack.client.put("/api/shop/payments", json=body, headers=ADMIN)
    answer = await response.json()
    assert response.status == 400 and answer["field"] == field and words in answer["error"]
    assert answer["error"].startswith(f"{field}: ")
    got = await (await bot_stack.client.get("/api/shop/payments", headers=ADMIN)).json()
    assert got["payments"] == METHODS


async def test_a_body_that_is_no_object_is_refused(bot_stack: Stack) -> None:
    response = await bot_stack.client.put("/api/shop/payments", data=b'["fps"]', headers=ADMIN)
    assert response.status == 400 and "payments: section" in (await response.json())["error"]
