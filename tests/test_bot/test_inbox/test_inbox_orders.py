"""HTTP tests of the inbox's orders (bot/inbox/views/orders.py): the list's filters and search in the shop's
time zone, bulk actions with a result per order, one order's page and actions, print-outs, the Excel and
CSV exports, and Page isolation (another Page's orders are never listed, printed, exported or changed)."""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from io import BytesIO
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.inbox.auth import add_user
from bot.inbox.orders import OrderFilter, fetch_order_page
from bot.runtime.clock import utcnow
from bot.store.tables import OutboxMessage
from carts.order_rules import format_order_number
from carts.order_tables import Order, OrderEvent, OrderLine
from carts.tables import Campaign, Product, ShopInfo, StockClaim
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in

OTHER_PAGE = "1000000000002"
HK = ZoneInfo("Asia/Hong_Kong")
# 3 December, in Hong Kong: 23:30 is still the 3rd; 00:30 the next night is the 4th, though both are the 3rd in UTC.
LATE_ON_THE_3RD = datetime(2026, 12, 3, 23, 30, tzinfo=HK).astimezone(UTC)
EARLY_ON_THE_4TH = datetime(2026, 12, 4, 0, 30, tzinfo=HK).astimezone(UTC)


async def make_order(
    stack: Stack,
    *,
    page_id: str,
    psid: str,
    name: str,
    phone: str,
    status: str,
    placed_at: datetime,
    lines: list[tuple[str, int]],
    campaign: str | None = None,
    address: str = "1 Queen's Road, Central",
) -> str:
    """An order as checkout leaves it (with the claims it sold, when from a campaign); its number."""
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        products = {p.code: p for p in (await session.execute(select(Product))).scalars()}
        total = sum((products[code].price * qty for code, qty in lines), Decimal(0))
        order = Order(
            page_id=page_id,
            psid=psid,
            checkout_nonce=f"nonce-{psid}-{placed_at.timestamp()}",
            status=status,
            currency="HKD",
            subtotal=total,
            total=total,
            customer_name=name,
            phone=phone,
            delivery_method="delivery",
            address=address,
            placed_at=placed_at,
            paid_at=placed_at if status != "pending_payment" else None,
            updated_at=placed_at,
        )
        session.add(order)
        await session.flush()
        order.number = format_order_number(order.id or 0)
        for code, qty in lines:
            session.add(
                OrderLine(
                    order_id=order.id or 0,
                    product_id=products[code].id or 0,
                    code=code,
                    name=products[code].name,
                    qty=qty,
                    unit_price=products[code].price,
                )
            )
        if campaign is not None:
            campaign_id = (await session.execute(select(Campaign.id).where(Campaign.key == campaign))).scalar_one()
            for code, qty in lines:
                session.add(
                    StockClaim(
                        key=f"claim-{order.number}-{code}",
                        campaign_id=campaign_id,
                        product_id=products[code].id or 0,
                        page_id=page_id,
                        psid=psid,
                        comment_id=f"c-{order.number}",
                        qty=qty,
                        arrival=f"{now.timestamp()}",
                        status="sold",
                        order_id=order.id,
                        created_at=now,
                    )
                )
        session.add(order)
        return order.number


async def shop(stack: Stack) -> dict[str, str]:
    """Two Pages' orders: three on the owner's Page, one on another's; the shop in Hong Kong time."""
    await seed_shop(stack.sessions)
    async with stack.sessions() as session, session.begin():
        session.add(ShopInfo(id=1, name="Blossom", currency="HKD", timezone="Asia/Hong_Kong", updated_at=utcnow()))
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "other", PASSWORD, "owner", [OTHER_PAGE])
    return {
        "chan": await make_order(
            stack,
            page_id=PAGE_ID,
            psid="3000000000951",
            name="Chan Tai Man",
            phone="+852 9123 4567",
            status="paid",
            placed_at=LATE_ON_THE_3RD,
            lines=[("A", 2), ("B", 1)],
            campaign="live",
        ),
        "lee": await make_order(
            stack,
            page_id=PAGE_ID,
            psid="3000000000952",
            name="=1+1 Lee Siu Ming",
            phone="6123-0000",
            status="pending_payment",
            placed_at=EARLY_ON_THE_4TH,
            lines=[("A", 1)],
        ),
        "ho": await make_order(
            stack,
            page_id=PAGE_ID,
            psid="3000000000953",
            name="Ho Ka Yan",
            phone="9555 1212",
            status="packed",
            placed_at=EARLY_ON_THE_4TH,
            lines=[("B", 3)],
        ),
        "wong": await make_order(
            stack,
            page_id=OTHER_PAGE,
            psid="3000000000954",
            name="Wong Other Page",
            phone="9123 4567",
            status="paid",
            placed_at=LATE_ON_THE_3RD,
            lines=[("A", 1)],
        ),
    }


async def listed(stack: Stack, query: str = "") -> list[str]:
    response = await stack.client.get(f"/inbox/orders{query}")
    assert response.status == 200, await response.text()
    return re.findall(r'<a href="/inbox/orders/(PO-\d+)">', await response.text())


async def status_of(stack: Stack, number: str) -> tuple[str, str | None, str | None]:
    order = (await stack.rows(select(Order).where(Order.number == number)))[0]
    return order.status, order.carrier, order.tracking_number


async def test_the_list_filters_by_status_campaign_and_day_in_the_shops_zone_and_searches(bot_stack: Stack) -> None:
    stack = bot_stack
    n = await shop(stack)
    await sign_in(stack, "owner")
    assert await listed(stack) == [n["ho"], n["lee"], n["chan"]]  # newest first; never the other Page's
    assert await listed(stack, "?status=paid") == [n["chan"]]
    assert await listed(stack, "?campaign=live") == [n["chan"]]
    # Whole days in Hong Kong time: both were placed on 3 December in UTC.
    assert await listed(stack, "?from=2026-12-03&to=2026-12-03") == [n["chan"]]
    assert await listed(stack, "?from=2026-12-04") == [n["ho"], n["lee"]]
    assert await listed(stack, "?q=91234567") == [n["chan"]]  # the phone's digits, without its spaces
    assert await listed(stack, "?q=lee") == [n["lee"]]
    assert await listed(stack, f"?q={n['ho'].lower()}") == [n["ho"]]
    assert await listed(stack, f"?q={n['wong']}") == []  # another Page's order, even by its number
    assert await listed(stack, "?psid=3000000000951") == [n["chan"]]
    async with stack.sessions() as session, session.begin():  # as checkout records the method chosen
        await session.execute(update(Order).where(Order.number == n["lee"]).values(payment_method="fps"))
    assert await listed(stack, "?method=fps") == [n["lee"]]
    assert await listed(stack, "?method=stripe") == []
    for bad in ("?status=lost", "?from=3 Dec", "?page=0", "?from=2026-12-05&to=2026-12-04", "?method=cheque"):
        response = await stack.client.get(f"/inbox/orders{bad}")
        assert response.status == 400, bad
    page = await (await stack.client.get("/inbox/orders")).text()
    assert 'href="/inbox/orders">Orders</a>' in page  # in the navigation
    assert "Dec 3 23:30" in page  # shown in the shop's time zone (15:30 UTC), without this year

    stack.client.session.cookie_jar.clear()
    await sign_in(stack, "other")
    assert await listed(stack) == [n["wong"]]
    assert await listed(stack, "?campaign=live") == []  # the owner's Page's campaign


async def test_the_list_pages_through_the_orders(bot_stack: Stack) -> None:
    n = await shop(bot_stack)
    async with bot_stack.sessions() as session:
        first = await fetch_order_page(session, {PAGE_ID}, OrderFilter(), HK, size=2)
        second = await fetch_order_page(session, {PAGE_ID}, OrderFilter(page=2), HK, size=2)
        beyond = await fetch_order_page(session, {PAGE_ID}, OrderFilter(page=9), HK, size=2)
    assert ([o.number for o in first.orders], first.total, first.pages) == ([n["ho"], n["lee"]], 3, 2)
    assert [o.number for o in second.orders] == [n["chan"]]
    assert beyond.page == 2  # past the end: the last page


async def test_bulk_actions_answer_for_each_order_and_change_only_what_they_may(bot_stack: Stack) -> None:
    stack = bot_stack
    n = await shop(stack)
    await sign_in(stack, "owner")
    csrf = await csrf_of(stack, "/inbox/orders")
    selected = [("n", n["chan"]), ("n", n["lee"]), ("n", n["ho"]), ("n", n["wong"])]
    refused = await stack.client.post("/inbox/orders/bulk", data=[("action", "ship"), *selected])
    assert refused.status == 403  # no CSRF token
    form = [
        ("csrf", csrf),
        ("action", "ship"),
        ("carrier", "SF Express"),
        *selected,
        (f"tracking:{n['chan']}", "SF100"),
        (f"tracking:{n['lee']}", "SF101"),
        (f"tracking:{n['wong']}", "SF102"),
    ]
    response = await stack.client.post("/inbox/orders/bulk", data=form)
    page = await response.text()
    assert response.status == 200
    assert "1 of 4 done" in page
    assert "Only a paid or packed order can be shipped." in page  # lee: unpaid
    assert "Tracking number: 1 to 80" in page  # ho: no tracking number given
    assert f"No order {n['wong']} on your Pages." in page  # another Page's
    assert await status_of(stack, n["chan"]) == ("shipped", "SF Express", "SF100")
    assert await status_of(stack, n["lee"]) == ("pending_payment", None, None)
    assert await status_of(stack, n["ho"]) == ("packed", None, None)
    assert await status_of(stack, n["wong"]) == ("paid", None, None)
    keys = {row.idempotency_key for row in await stack.rows(select(OutboxMessage))}
    assert f"order-shipped:{n['chan']}:0" in keys  # the shopper is told

    response = await stack.client.post(
        "/inbox/orders/bulk", data=[("csrf", csrf), ("action", "paid"), ("n", n["lee"]), ("n", n["wong"])]
    )
    assert "1 of 2 done" in await response.text()
    assert (await status_of(stack, n["lee"]))[0] == "paid"
    assert (await status_of(stack, n["wong"]))[0] == "paid"  # untouched (it was paid; no event either)
    assert [e.kind for e in await stack.rows(select(OrderEvent))] == ["shipped", "paid"]
    for bad in ([("csrf", csrf), ("action", "paid")], [("csrf", csrf), ("action", "burn"), ("n", n["lee"])]):
        assert (await stack.client.post("/inbox/orders/bulk", data=bad)).status == 400


async def test_an_orders_page_shows_it_whole_and_moves_it_on(bot_stack: Stack) -> None:
    stack = bot_stack
    n = await shop(stack)
    await sign_in(stack, "owner")
    page = await (await stack.client.get(f"/inbox/orders/{n['chan']}")).text()
    for shown in ("Chan Tai Man", "+852 9123 4567", "1 Queen&#39;s Road, Central", "Rose bouquet", "Linen shirt"):
        assert shown in page
    assert (await stack.client.get(f"/inbox/orders/{n['wong']}")).status == 404
    csrf = await csrf_of(stack, f"/inbox/orders/{n['chan']}")
    response = await stack.client.post(f"/inbox/orders/{n['wong']}/pack", data={"csrf": csrf})
    assert response.status == 404 and await status_of(stack, n["wong"]) == ("paid", None, None)
    response = await stack.client.post(
        f"/inbox/orders/{n['lee']}/ship", data={"csrf": csrf, "carrier": "SF", f"tracking:{n['lee']}": "X1"}
    )
    assert response.status == 409 and "Only a paid or packed order can be shipped." in await response.text()
    assert await status_of(stack, n["lee"]) == ("pending_payment", None, None)
    for action in ("pack", "deliver"):
        if action == "deliver":
            ship = {"csrf": csrf, "carrier": "Hongkong Post", f"tracking:{n['chan']}": "RR123HK"}
            response = await stack.client.post(f"/inbox/orders/{n['chan']}/ship", data=ship, allow_redirects=False)
            assert response.status == 303
        response = await stack.client.post(
            f"/inbox/orders/{n['chan']}/{action}", data={"csrf": csrf}, allow_redirects=False
        )
        assert response.status == 303
    assert await status_of(stack, n["chan"]) == ("delivered", "Hongkong Post", "RR123HK")
    page = await (await stack.client.get(f"/inbox/orders/{n['chan']}")).text()
    assert re.findall(r"</span> (\w+)", page)[-3:] == ["Packed", "Shipped", "Delivered"]  # the history, in words


async def test_pick_list_and_packing_slips_of_the_selected_orders(bot_stack: Stack) -> None:
    stack = bot_stack
    n = await shop(stack)
    await sign_in(stack, "owner")
    csrf = await csrf_of(stack, "/inbox/orders")
    chosen = [("csrf", csrf), ("n", n["chan"]), ("n", n["lee"]), ("n", n["wong"])]
    page = await (await stack.client.post("/inbox/orders/pick-list", data=chosen)).text()
    rows = re.findall(r"<tr><td>(\w+)</td><td>[^<]*</td><td>[^<]*</td><td><b>(\d+)</b>", page)
    assert rows == [("A", "3"), ("B", "1")]  # chan 2 + lee 1 of A; never wong's (another Page)
    slips = await (await stack.client.post("/inbox/orders/packing-slips", data=chosen)).text()
    assert slips.count('<article class="slip">') == 2 and "Wong" not in slips
    css = await (await stack.client.get("/inbox/static/inbox.css")).text()
    assert "@media print" in css and "page-break-after: always" in css
    filtered = await (await stack.client.get("/inbox/orders/pick-list?status=packed")).text()
    assert re.findall(r"<tr><td>(\w+)</td><td>[^<]*</td><td>[^<]*</td><td><b>(\d+)</b>", filtered) == [("B", "3")]


async def test_exports_to_csv_and_excel_keep_formulas_as_text(bot_stack: Stack) -> None:
    stack = bot_stack
    n = await shop(stack)
    await sign_in(stack, "owner")
    csrf = await csrf_of(stack, "/inbox/orders")
    chosen = [("csrf", csrf), ("n", n["lee"]), ("n", n["chan"]), ("n", n["wong"])]
    response = await stack.client.post("/inbox/orders/export.csv", data=chosen)
    assert response.status == 200 and response.headers["Content-Disposition"].startswith("attachment")
    raw = await response.read()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads Chinese right
    text = raw.decode("utf-8-sig")
    assert n["chan"] in text and n["lee"] in text and n["wong"] not in text
    assert '"\'=1+1 Lee Siu Ming"' in text and '"=1+1' not in text
    assert '"2026-12-03 23:30"' in text  # the shop's time
    filtered = (await (await stack.client.get("/inbox/orders/export.csv?status=packed")).read()).decode("utf-8-sig")
    assert n["ho"] in filtered and n["chan"] not in filtered

    response = await stack.client.post("/inbox/orders/export.xlsx", data=chosen)
    assert response.status == 200
    book = zipfile.ZipFile(BytesIO(await response.read()))
    sheet = book.read("xl/worksheets/sheet1.xml").decode()
    strings = book.read("xl/sharedStrings.xml").decode()
    assert "<f>" not in sheet  # no formula anywhere
    assert "&apos;=1+1 Lee Siu Ming" in strings or "'=1+1 Lee Siu Ming" in strings
    assert n["chan"] in strings and n["wong"] not in strings
    assert "<v>1650</v>" in sheet  # chan's total (2 × 380 + 890) as a number
