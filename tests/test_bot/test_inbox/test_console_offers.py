"""First-N offers from the console (owners) and the admin API: made, followed and stopped; bad input named
by field with nothing changed, the same refusals from the page and from the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from bot.runtime.clock import utcnow
from carts.coupon_tables import Coupon, CouponOffer
from carts.tables import Campaign
from tests.conftest import ADMIN_TOKEN
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_console_catalog import _field_error, _owner, _post, _reply_to
from tests.test_bot.test_inbox.test_inbox import sign_in

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def offer_form(**changes: str) -> dict[str, str]:
    until = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    form = {"campaign": "live", "keywords": "SALE, 優惠", "quantity": "2", "kind": "percent", "value": "10"}
    return {**form, "min_spend": "", "valid_until": until, **changes}


async def offers_count(stack: Stack) -> int:
    return (await stack.rows(select(func.count()).select_from(CouponOffer)))[0]


async def test_an_owner_starts_an_offer_follows_who_got_vouchers_and_stops_it(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    status, _ = await _post(bot_stack, "/inbox/offers", "/inbox/offers", **offer_form())
    assert status == 303
    [offer] = await bot_stack.rows(select(CouponOffer))
    assert (offer.quantity, offer.given, offer.status) == (2, 0, "active")

    text = await _reply_to(bot_stack, "3000000000501", "SALE A+1", 1)
    assert "🎁 You got a voucher! Code SALE-" in text
    page = await (await bot_stack.client.get(f"/inbox/offers/{offer.id}")).text()
    assert "1 of 2 given" in page and "SALE-" in page and "not used yet" in page
    board = await (await bot_stack.client.get("/inbox/board/live")).text()  # the live board shows it too
    assert "First-N offers" in board and "1 of 2 given" in board and f"/inbox/offers/{offer.id}" in board

    status, _ = await _post(bot_stack, f"/inbox/offers/{offer.id}/stop", f"/inbox/offers/{offer.id}")
    assert status == 303
    page = await (await bot_stack.client.get(f"/inbox/offers/{offer.id}?done=stopped")).text()
    assert "Stopped: no more vouchers are given." in page and "Stop giving vouchers" not in page
    # Stopped: the next keyword comment is told politely, never silence, and gets no voucher.
    text = await _reply_to(bot_stack, "3000000000502", "sale", 2)
    assert "all the vouchers of this offer are taken" in text
    assert (await bot_stack.rows(select(CouponOffer.given)))[0] == 1

    listing = await (await bot_stack.client.get("/inbox/offers?lang=zh_Hant")).text()
    assert "已派 1 / 2 張" in listing and "減10%" in listing and "已停止" in listing


async def test_bad_offers_are_refused_by_field_and_nothing_is_made(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    past = (utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    bad = [
        ({"quantity": "0"}, "quantity", "There must be at least one voucher to give."),
        ({"value": "0"}, "value", "The discount must be more than zero."),
        ({"value": "-5"}, "value", "The discount must be more than zero."),
        ({"value": "120"}, "value", "A percentage can be at most 100."),
        ({"valid_until": past}, "valid_until", "The vouchers&#39; end must be in the future."),
        ({"keywords": ""}, "keywords", "Give at least one keyword, like SALE or 優惠."),
    ]
    for change, field, reason in bad:
        status, page = await _post(bot_stack, "/inbox/offers", "/inbox/offers", **offer_form(**change))
        assert status == 400 and _field_error(page, field) == reason, change
        assert f'value="{next(iter(change.values()))}"' in page or field == "keywords"  # what was typed stays
    # In Chinese for a reader who reads the console in Chinese.
    status, page = await _post(bot_stack, "/inbox/offers?lang=zh_Hant", "/inbox/offers", **offer_form(value="120"))
    assert status == 400 and _field_error(page, "value") == "百分比最多是100。"

    # A closed campaign takes no offer (the form does not list it; posted anyway, it is refused).
    async with bot_stack.sessions() as session, session.begin():
        await session.execute(update(Campaign).values(ends_at=utcnow() - timedelta(minutes=1)))
    status, page = await _post(bot_stack, "/inbox/offers", "/inbox/offers", **offer_form())
    assert status == 400
    assert _field_error(page, "campaign") == "This campaign has closed: an offer needs an open or coming campaign."
    assert await offers_count(bot_stack) == 0 and not await bot_stack.rows(select(Coupon))


async def test_an_agent_gets_the_403_page(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    assert (await sign_in(bot_stack, "agent"))[0] == 303
    response = await bot_stack.client.get("/inbox/offers")
    assert response.status == 403


async def api(stack: Stack, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    response = await stack.client.request(method, path, json=body, headers=ADMIN)
    return response.status, await response.json()


async def test_the_admin_api_makes_lists_and_stops_offers_with_the_same_checks(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    until = (utcnow() + timedelta(days=2)).isoformat()
    good = {"campaign": "live", "keywords": ["SALE"], "quantity": 20, "kind": "amount", "value": 50}
    refusals = [
        ({"quantity": 0}, 400, "quantity"),
        ({"value": 0}, 400, "value"),
        ({"kind": "percent", "value": 101}, 400, "value"),
        ({"valid_until": (utcnow() - timedelta(days=1)).isoformat()}, 400, "valid_until"),
        ({"valid_until": "2026-12-20T23:59"}, 400, "valid_until"),  # no offset: the API has no zone to assume
        ({"campaign": "nope"}, 404, "campaign"),
        ({"colour": "red"}, 400, None),
    ]
    for change, code, field in refusals:
        status, body = await api(bot_stack, "POST", "/api/offers", {**good, **change})
        assert status == code and "error" in body and body.get("field") == field, (change, body)
    assert await offers_count(bot_stack) == 0

    status, body = await api(bot_stack, "POST", "/api/offers", {**good, "valid_until": until, "min_spend": "300"})
    assert status == 201
    offer = body["offer"]
    assert (offer["keywords"], offer["quantity"], offer["left"], offer["kind"], offer["value"]) == (
        ["SALE"],
        20,
        20,
        "amount",
        "50",
    )
    assert offer["min_spend"] == "300" and offer["status"] == "active"
    status, body = await api(bot_stack, "GET", "/api/offers?campaign=live")
    assert status == 200 and [o["id"] for o in body["offers"]] == [offer["id"]]
    status, body = await api(bot_stack, "GET", f"/api/offers/{offer['id']}")
    assert status == 200 and body["recipients"] == []
    status, body = await api(bot_stack, "POST", f"/api/offers/{offer['id']}/stop")
    assert status == 200 and (body["offer"]["status"], body["offer"]["left"]) == ("stopped", 0)
    assert (await api(bot_stack, "POST", "/api/offers/999/stop"))[0] == 404

    # A closed campaign: a clear refusal, nothing made.
    async with bot_stack.sessions() as session, session.begin():
        await session.execute(update(Campaign).values(ends_at=utcnow() - timedelta(minutes=1)))
    status, body = await api(bot_stack, "POST", "/api/offers", good)
    assert status == 409 and body["field"] == "campaign" and "closed" in body["error"]
    assert await offers_count(bot_stack) == 1
