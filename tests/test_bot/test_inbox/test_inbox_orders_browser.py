"""Browser test of the inbox's orders (Playwright, Debian's Chromium, like test_inbox_browser): select
orders in the list, apply a bulk action and read each order's result, then export the selection as CSV and as Excel.
Screenshots of the orders list go to docs/screenshots/."""

from __future__ import annotations

import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from bot.runtime.clock import utcnow
from carts.order_tables import Order
from tests.conftest import PAGE_ID
from tests.test_bot.test_inbox.browser import PHONE, screenshot
from tests.test_bot.test_inbox.test_inbox_browser import Env, env  # noqa: F401  (the module's server)
from tests.test_bot.test_inbox.test_inbox_orders import make_order

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_bulk_action_answers_per_order_and_the_selection_exports(env: Env, tmp_path: Path) -> None:  # noqa: F811
    now = utcnow()
    paid = await make_order(
        env.stack, page_id=PAGE_ID, psid="3000000000971", name="Chan Tai Man", phone="+852 9123 4567",
        status="paid", placed_at=now - timedelta(hours=2), lines=[("A", 1)],
    )  # fmt: skip
    unpaid = await make_order(
        env.stack, page_id=PAGE_ID, psid="3000000000972", name="陳小明", phone="6123 0000",
        status="pending_payment", placed_at=now - timedelta(hours=1), lines=[("B", 2)],
    )  # fmt: skip
    page = await env.page("owner")
    await page.click("nav >> text=Orders")
    await expect(page.locator("table.orders")).to_contain_text(unpaid)
    await screenshot(page, "orders-list")
    await page.check(f"#sel-{paid}")
    await page.check(f"#sel-{unpaid}")
    await page.select_option("#bulk-action", "pack")
    await page.click("#bulk button[type=submit]:has-text('Apply')")
    await expect(page.locator("h1")).to_contain_text("1 of 2 done")
    await expect(page.locator("tr.refused")).to_contain_text(unpaid)
    await expect(page.locator("tr.refused")).to_contain_text("Only a paid order can be packed.")
    order = (await env.stack.rows(select(Order).where(Order.number == paid)))[0]
    assert order.status == "packed" and order.packed_at is not None

    await page.click("text=Back to the orders")
    await page.check(f"#sel-{paid}")
    async with page.expect_download() as download_info:
        await page.click("#bulk button:has-text('Export CSV')")
    download = await download_info.value
    target = tmp_path / "orders.csv"
    await download.save_as(target)
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert paid in text and unpaid not in text and ',"Packed",' in text  # the status in words
    # and as Excel: the workbook's shared strings hold the selected order, not the other
    await page.check(f"#sel-{paid}")
    async with page.expect_download() as download_info:
        await page.click("#bulk button:has-text('Export Excel')")
    workbook = tmp_path / "orders.xlsx"
    await (await download_info.value).save_as(workbook)
    with zipfile.ZipFile(workbook) as book:
        cells = book.read("xl/sharedStrings.xml").decode()
    assert paid in cells and unpaid not in cells
    await page.set_viewport_size(PHONE)
    await page.goto(f"{env.base}/inbox/orders")
    await screenshot(page, "orders-list-phone")
    await page.context.close()
