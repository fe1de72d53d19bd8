"""Coupons from the console (owners) and the admin API: made by hand, listed with their terms in words and
their figures, changed, stopped; bad input named by field with nothing changed, the same refusals from the
page and from the API, in the reader's language."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from carts.coupon_tables import Coupon, CouponCode
from carts.tables import ShopInfo
from tests.conftest import ADMIN_TOKEN, PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_console_catalog import _field_error, _owner, _post
from tests.test_bot.test_inbox.test_inbox import sign_in
from tests.test_bot.test_web.test_checkout import VALID, comment_and_wait, form_of, post

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def coupon_form(**changes: str) -> dict[str, str]:
    form = {
        "title": "Ten off",
        "mode": "shared",
        "code": "ten",
        "kind": "amount",
        "value": "10",
        "min_spend": "",
        "starts_at": "",
        "ends_at": "",
        "products": "",
        "campaigns": "",
        "budget": "",
        "per_member_limit": "1",
    }
    return {**form, **changes}


async def coupons_count(stack: Stack) -> int:
    return (await stack.rows(select(func.count()).select_from(Coupon)))[0]


def figure(page: str, name: str) -> str:
    found = re.search(rf'<dd class="fig-{name}">([^<]*)</dd>', page)
    assert found, f"no figure {name}"
    return found.group(1)


async def test_an_owner_makes_a_coupon_a_shopper_uses_it_and_the_list_shows_what_it_gave(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    status, _ = await _post(
        bot_stack,
        "/inbox/coupons",
        "/inbox/coupons",
        **coupon_form(min_spend="300", products="a", ends_at="2027-06-30T23:59", budget="50"),
    )
    assert status == 303
    [coupon] = await bot_stack.rows(select(Coupon))
    assert (coupon.code, coupon.min_spend, coupon.budget, coupon.source) == ("TEN", Decimal(300), 50, "manual")
    assert coupon.ends_at is not None and coupon.ends_at.strftime("%H:%M") == "15:59"  # 23:59 in Hong Kong

    listing = await (await bot_stack.client.get("/inbox/coupons")).text()
    assert "HK$10 off · from HK$300" in listing and "on A" in listing and "valid until Jun 30, 2027 23:59" in listing
    assert "uses in all: 50" in listing and "per member: 1" in listing and "made by hand" in listing
    chinese = await (await bot_stack.client.get("/inbox/coupons?lang=zh_Hant")).text()
    assert "減HK$10" in chinese and "共可用：50次" in chinese and "每位會員：1次" in chinese and "人手建立" in chinese

    # A shopper types it at checkout and pays: the list counts the use, the discount and the sale.
    token = await comment_and_wait(bot_stack, "A+1", psid="3000000000701")
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    status, _ = await post(bot_stack, token, {**VALID, **form_of(page), "coupon": "Ten"})
    assert status == 200
    assert (await bot_stack.client.post("/api/orders/PO-000001/paid", headers=ADMIN)).status == 200
    listing = await (await bot_stack.client.get("/inbox/coupons")).text()
    assert (figure(listing, "redeemed"), figure(listing, "cost"), figure(listing, "sales")) == ("1", "HK$10", "HK$370")
    assert (figure(listing, "returned"), figure(listing, "cancelled"), figure(listing, "reserved")) == ("0", "0", "0")

    # Two more shoppers: one cancels before paying, one pays and returns it all. Each use comes back, and
    # the list says which way; the first order's figures stay.
    for n, psid in ((2, "3000000000703"), (3, "3000000000704")):
        token = await comment_and_wait(bot_stack, "A+1", psid=psid, number=n)
        page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
        status, _ = await post(bot_stack, token, {**VALID, **form_of(page), "coupon": "TEN"})
        assert status == 200
    assert (await bot_stack.client.post("/api/orders/PO-000002/cancel", headers=ADMIN)).status == 200
    assert (await bot_stack.client.post("/api/orders/PO-000003/paid", headers=ADMIN)).status == 200
    back = await bot_stack.client.post(
        "/api/orders/PO-000003/return", headers=ADMIN, json={"lines": [{"code": "A", "qty": 1}]}
    )
    assert back.status == 200
    listing = await (await bot_stack.client.get("/inbox/coupons")).text()
    assert (figure(listing, "redeemed"), figure(listing, "returned"), figure(listing, "cancelled")) == ("1", "1", "1")
    assert (figure(listing, "cost"), figure(listing, "sales")) == ("HK$10", "HK$370")

    # Changed by hand: the next orders get the new terms; the page shows them.
    status, _ = await _post(
        bot_stack, f"/inbox/coupons/{coupon.id}", f"/inbox/coupons/{coupon.id}", **coupon_form(value="20", budget="")
    )
    assert status == 303
    page = await (await bot_stack.client.get(f"/inbox/coupons/{coupon.id}")).text()
    assert "HK$20 off" in page and "no limit of uses" in page and 'value="TEN"' in page

    status, _ = await _post(bot_stack, f"/inbox/coupons/{coupon.id}/stop", f"/inbox/coupons/{coupon.id}")
    assert status == 303
    page = await (await bot_stack.client.get(f"/inbox/coupons/{coupon.id}?done=stopped")).text()
    assert "Stopped: no order takes it any more." in page and "Stop the coupon" not in page


async def test_bad_coupons_are_refused_beside_the_field_and_nothing_is_made(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    bad = [
        ({"title": ""}, "title", "Give the coupon a name, like Welcome 10% off."),
        ({"value": "0"}, "value", "The discount must be more than zero."),
        ({"kind": "percent", "value": "120"}, "value", "A percentage can be at most 100."),
        ({"code": "a b!"}, "code", "A code is 2 to 40 letters, digits or hyphens, like SALE10."),
        ({"budget": "-1"}, "budget", "Uses in all: a whole number, like 100, or empty for no limit."),
        ({"ends_at": "tomorrow"}, "ends_at", "A date and a time, like 2026-12-20 23:59, or empty."),
        ({"products": "ZZZ"}, "products", "No product has the code ZZZ."),
    ]
    for change, field, reason in bad:
        status, page = await _post(bot_stack, "/inbox/coupons", "/inbox/coupons", **coupon_form(**change))
        assert status == 400 and _field_error(page, field) == reason, change
        typed = next(iter(change.values()))
        assert not typed or f'value="{typed}"' in page.replace("&#34;", '"'), change  # what was typed stays
    status, page = await _post(bot_stack, "/inbox/coupons?lang=zh_Hant", "/inbox/coupons", **coupon_form(value="0"))
    assert status == 400 and _field_error(page, "value") == "折扣必須大於零。"
    status, page = await _post(bot_stack, "/inbox/coupons?lang=zh_Hant", "/inbox/coupons", **coupon_form(products="Q9"))
    assert status == 400 and _field_error(page, "products") == "沒有產品的編號是 Q9。"
    assert await coupons_count(bot_stack) == 0


async def test_an_agent_gets_the_403_page(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    assert (await sign_in(bot_stack, "agent"))[0] == 303
    assert (await bot_stack.client.get("/inbox/coupons")).status == 403
    assert "/inbox/coupons" not in await (await bot_stack.client.get("/inbox")).text()


async def api(stack: Stack, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    response = await stack.client.request(method, path, json=body, headers=ADMIN)
    return response.status, await response.json()


async def test_the_admin_api_makes_changes_lists_and_stops_coupons_with_the_same_checks(bot_stack: Stack) -> None:
    await _owner(bot_stack)
    good = {"title": "VIP", "mode": "personal", "kind": "percent", "value": 15, "per_member_limit": 1}
    refusals = [
        ({"value": 0}, 400, "value"),
        ({"kind": "percent", "value": 101}, 400, "value"),
        ({"ends_at": "2026-12-20T23:59"}, 400, "ends_at"),  # no offset: the API has no zone to assume
        ({"products": ["nope"]}, 400, "products"),
        ({"colour": "red"}, 400, "colour"),
    ]
    for change, code, field in refusals:
        status, body = await api(bot_stack, "POST", "/api/coupons", {**good, **change})
        assert status == code and "error" in body and body.get("field") == field, (change, body)
    status, body = await api(bot_stack, "POST", "/api/coupons", {**good, "products": ["nope"]})
    assert body["error"] == "products: No product has the code nope."
    assert await coupons_count(bot_stack) == 0

    status, body = await api(bot_stack, "POST", "/api/coupons", {**good, "ends_at": "2027-01-31T23:59:00+08:00"})
    assert status == 201
    coupon = body["coupon"]
    assert (coupon["mode"], coupon["code"], coupon["value"], coupon["ends_at"], coupon["codes_issued"]) == (
        "personal",
        None,
        "15",
        "2027-01-31T15:59:00+00:00",
        0,
    )
    # A member's own code, on demand: the same one when asked again.
    path = f"/api/coupons/{coupon['id']}/codes"
    status, first = await api(bot_stack, "POST", path, {"page_id": PAGE_ID, "psid": "3000000000702"})
    assert status == 200 and first["code"].startswith("VIP-")
    assert (await api(bot_stack, "POST", path, {"page_id": PAGE_ID, "psid": "3000000000702"}))[1] == first
    assert len(await bot_stack.rows(select(CouponCode))) == 1
    assert (await api(bot_stack, "POST", path, {"page_id": PAGE_ID, "psid": "x"}))[0] == 400

    status, body = await api(bot_stack, "PUT", f"/api/coupons/{coupon['id']}", {**good, "value": 20})
    assert status == 200 and body["coupon"]["value"] == "20" and body["coupon"]["codes_issued"] == 1
    status, body = await api(bot_stack, "GET", "/api/coupons")
    assert status == 200 and [c["id"] for c in body["coupons"]] == [coupon["id"]] and body["signup_coupon_id"] is None
    status, body = await api(bot_stack, "POST", f"/api/coupons/{coupon['id']}/stop")
    assert status == 200 and body["coupon"]["status"] == "stopped"
    assert (await api(bot_stack, "POST", "/api/coupons/999/stop"))[0] == 404
    assert (await api(bot_stack, "PUT", "/api/coupons/999", good))[0] == 404
    # A stopped coupon is no sign-up coupon: refused, nothing changed.
    status, body = await api(bot_stack, "PUT", "/api/coupons/signup", {"coupon_id": coupon["id"]})
    assert status == 409 and body["field"] == "coupon_id"
    assert (await bot_stack.rows(select(ShopInfo.signup_coupon_id)))[0] is None
