"""Story tests of shipping at checkout and of merging a shopper's unpaid orders (bot/web/checkout.py,
bot/web/orders_api.py, carts/orders.py)."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.runtime.clock import utcnow
from carts.order_rules import ShippingRules
from carts.order_tables import OrderEvent
from carts.tables import ShopInfo
from config.catalog_file import compose_yaml
from config.sale_file import parse_shipping_node
from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_web.test_checkout import VALID, comment_and_wait, form_of, product
from tests.test_bot.test_web.test_orders_api import call, kinds

SHIPPING = """\
delivery:
  - {key: courier, name: Courier, fee: 30, free_above: 1000}
  - {key: van, name: Van, regions: {Kowloon: 40, Islands: 85}}
pickup:
  - {key: mong-kok, name: Mong Kok shop, address: 1 Nathan Road, hours: "Mon-Sat 12:00-20:00"}
"""


async def _shipping(stack: Stack) -> ShippingRules:
    rules = parse_shipping_node(compose_yaml(SHIPPING, "shop.yaml"), "shop.yaml")
    async with stack.sessions() as session, session.begin():  # as `plusone load` keeps it (bot.store.shop)
        session.add(
            ShopInfo(id=1, name="Test Shop", currency="HKD", shipping=json.dumps(rules.to_dict()), updated_at=utcnow())
        )
    return rules


async def _check_out(stack: Stack, psid: str, text: str, number: int, **fields: str) -> tuple[int, str]:
    token = await comment_and_wait(stack, text, psid=psid, number=number)
    page = await (await stack.client.get(f"/checkout/{token}")).text()
    response = await stack.client.post(f"/checkout/{token}", data={**VALID, **form_of(page), **fields})
    return response.status, await response.text()


async def _last_order(stack: Stack) -> str:
    events = await stack.rows(select(OrderEvent).where(OrderEvent.kind == "placed").order_by(OrderEvent.id.desc()))
    return events[0].order_number


async def test_the_checkout_offers_the_shops_delivery_options_and_charges_the_fee(bot_stack: Stack) -> None:
    await seed_shop(bot_stack.sessions)
    await _shipping(bot_stack)
    token = await comment_and_wait(bot_stack, "A+1", psid="3000000000711", number=1)
    page = await (await bot_stack.client.get(f"/checkout/{token}")).text()
    assert 'value="van/Islands"' in page and "HK$85" in page and "Mon-Sat 12:00-20:00" in page

    # a choice the shop does not offer: refused, nothing placed
    response = await bot_stack.client.post(
        f"/checkout/{token}", data={**VALID, **form_of(page), "delivery_option": "boat"}
    )
    assert response.status == 400 and "Please choose how to get your order." in await response.text()
    assert await kinds(bot_stack) == []

    response = await bot_stack.client.post(
        f"/checkout/{token}", data={**VALID, **form_of(page), "delivery_option": "van/Islands"}
    )
    assert response.status == 200
    _, body = await call(bot_stack, "GET", f"/api/orders/{await _last_order(bot_stack)}")
    order = body["order"]
    assert (order["subtotal"], order["shipping_fee"], order["total"]) == ("380.00", "85.00", "465.00")
    assert (order["delivery_option"], order["delivery_method"]) == ("van/Islands", "delivery")


async def test_a_shoppers_unpaid_orders_are_merged_into_one(bot_stack: Stack) -> None:
    # given: one shopper's two unpaid orders by courier (HK$30 each below HK$1,000), another shopper's order
    await seed_shop(bot_stack.sessions)
    await _shipping(bot_stack)
    shopper = "3000000000721"
    await _check_out(bot_stack, shopper, "A+1", 1, delivery_option="courier")
    first = await _last_order(bot_stack)
    await _check_out(bot_stack, shopper, "B+1 L", 2, delivery_option="courier")
    second = await _last_order(bot_stack)
    await _check_out(bot_stack, "3000000000722", "A+1", 3, delivery_option="courier")
    someone_elses = await _last_order(bot_stack)
    before = await kinds(bot_stack)

    # bad requests: refused, nothing changed
    assert (await call(bot_stack, "POST", f"/api/orders/{first}/merge", {"orders": []}))[0] == 400
    assert (await call(bot_stack, "POST", f"/api/orders/{first}/merge", {"orders": [first]}))[0] == 409
    assert (await call(bot_stack, "POST", f"/api/orders/{first}/merge", {"orders": ["PO-999999"]}))[0] == 404
    status, body = await call(bot_stack, "POST", f"/api/orders/{first}/merge", {"orders": [someone_elses]})
    assert status == 409 and "another shopper's" in body["error"]
    assert await kinds(bot_stack) == before

    # when
    status, body = await call(bot_stack, "POST", f"/api/orders/{first}/merge", {"orders": [second]})

    # then: one order with both lines; 380 + 890 = 1270 is over 1000, so the courier is now free
    assert status == 200
    merged = body["order"]
    assert [(line["code"], line["qty"]) for line in merged["lines"]] == [("A", 1), ("B", 1)]
    assert (merged["subtotal"], merged["shipping_fee"], merged["total"]) == ("1270.00", "0.00", "1270.00")
    status, body = await call(bot_stack, "GET", f"/api/orders/{second}")
    assert body["order"]["status"] == "cancelled" and body["order"]["note"] == f"merged into {first}"
    assert body["order"]["lines"] == [] and body["order"]["total"] == "0.00"
    assert (await kinds(bot_stack))[len(before) :] == ["merged", "merged_in"]
    rose, shirt = await product(bot_stack, "A"), await product(bot_stack, "B")
    assert (rose.sold, shirt.sold) == (2, 1)  # the units stay sold: nothing went back on sale
    # a paid order cannot take more
    assert (await call(bot_stack, "POST", f"/api/orders/{first}/paid"))[0] == 200
    status, body = await call(bot_stack, "POST", f"/api/orders/{someone_elses}/merge", {"orders": [first]})
    assert status == 409 and "only unpaid orders" in body["error"]
