"""Browser tests of the live tools: blocking a buyer from the buyer panel, and a lucky draw on the live board.

Playwright on Debian's Chromium against one running PlusOne for the module (as test_inbox_browser.py), at
phone (390 px) and desktop (1280 px) widths, in English and Traditional Chinese; screenshots are written
to docs/screenshots/blocked-*.png and draw-*.png.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from bot.inbox.tables import InboxUser, LuckyDraw
from bot.runtime.clock import utcnow
from bot.store.tables import BlockedBuyer, CommentLog
from carts.order_rules import format_order_number
from carts.order_tables import Order
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.test_handlers.test_comments import POST
from tests.test_bot.test_inbox import test_inbox_browser
from tests.test_bot.test_inbox.browser import DESKTOP, PHONE, screenshot
from tests.test_bot.test_inbox.test_inbox_browser import Env, shopper_writes, until_stored

env = test_inbox_browser.env  # the same module-scoped fixture: one server for this module

pytestmark = pytest.mark.asyncio(loop_scope="module")

COMBOS = [(lang, viewport) for lang in ("en", "zh_Hant") for viewport in (PHONE, DESKTOP)]
WORDS = {
    "en": {"unpaid": "2 unpaid", "block": "Block this buyer", "blocked": "Blocked", "draw": "Draw now"},
    "zh_Hant": {"unpaid": "2 張未付款", "block": "封鎖此買家", "blocked": "已封鎖", "draw": "立即抽獎"},
}


async def reads_in(env: Env, user: str, lang: str) -> None:
    async with env.stack.sessions() as session, session.begin():
        await session.execute(update(InboxUser).where(InboxUser.name == user).values(locale=lang))


async def unpaid_orders(env: Env, psid: str, count: int) -> None:
    now = utcnow()
    async with env.stack.sessions() as session, session.begin():
        for n in range(count):
            order = Order(
                page_id=PAGE_ID,
                psid=psid,
                checkout_nonce=f"browser-{psid}-{n}",
                status="expired" if n else "pending_payment",
                currency="HKD",
                subtotal=Decimal(380),
                total=Decimal(380),
                customer_name="Wong",
                phone="91234567",
                delivery_method="pickup",
                placed_at=now - timedelta(days=n + 1),
                updated_at=now,
            )
            session.add(order)
            await session.flush()
            order.number = format_order_number(order.id or 0)  # as checkout numbers it


@pytest.mark.parametrize(("lang", "viewport"), COMBOS)
async def test_an_agent_blocks_a_buyer_from_the_buyer_panel(env: Env, lang: str, viewport: dict[str, int]) -> None:
    psid = f"30000000090{COMBOS.index((lang, viewport))}"
    await shopper_writes(env, psid, "我又想要A")
    cid = await until_stored(env, psid)
    await unpaid_orders(env, psid, 2)
    await reads_in(env, "agent", lang)
    words = WORDS[lang]
    page = await env.page("agent", viewport)
    await page.goto(f"{env.base}/inbox")
    row = page.locator(f"li.conv:has(a[href='/inbox/c/{cid}'])")
    await expect(row.locator(".tag.unpaid")).to_have_text(words["unpaid"])
    await page.goto(f"{env.base}/inbox/c/{cid}")
    standing = page.locator("#standing")
    await expect(standing.locator(".tag.unpaid")).to_have_text(words["unpaid"])
    await standing.get_by_text(words["block"]).click()
    await page.fill("#block-reason", "2 orders never paid" if lang == "en" else "兩張訂單未付款")
    await standing.locator("button.danger").click()
    await expect(page.locator("#standing.is-blocked")).to_contain_text(words["blocked"])
    [blocked] = await env.stack.rows(select(BlockedBuyer).where(BlockedBuyer.psid == psid))
    assert blocked.blocked_by == "agent"
    await page.locator("#standing").scroll_into_view_if_needed()
    await screenshot(page, f"blocked-{lang}-{viewport['width']}")
    await page.goto(f"{env.base}/inbox/blocked")
    await expect(page.locator(".blocked-list")).to_contain_text(psid)
    await screenshot(page, f"blocked-list-{lang}-{viewport['width']}")
    await page.context.close()


@pytest.mark.parametrize(("lang", "viewport"), COMBOS)
async def test_an_owner_runs_a_lucky_draw_on_the_board(env: Env, lang: str, viewport: dict[str, int]) -> None:
    base = 9100 + 10 * COMBOS.index((lang, viewport))
    fans = {f"300000000{base + n}": f"{'Fan' if n % 2 else '陳'} {n}" for n in range(4)}
    for n, (psid, name) in enumerate(fans.items()):
        await env.stack.emulator.deliver_comment(
            PAGE_ID, POST.split("_", 1)[1], psid, "抽獎！", user_name=name, comment_id=f"{POST}_{base + n}"
        )

    async def logged() -> bool:
        rows = await env.stack.rows(select(CommentLog).where(CommentLog.author_id.in_(list(fans))))
        return len(rows) == len(fans) and all(r.outcome not in ("received", "pending") for r in rows)

    await wait_until(logged, what="the fans' comments")
    await reads_in(env, "owner", lang)
    words = WORDS[lang]
    page = await env.page("owner", viewport)
    await page.goto(f"{env.base}/inbox/board/live")
    section = page.locator("#draw")
    setup = section.locator("details.draw-setup")
    if await setup.evaluate("details => !details.open"):  # folded once a draw was made
        await setup.locator("summary").click()
    await section.locator("#draw-winners").fill("2")
    await section.locator("#draw-keyword").fill("抽獎")
    await section.locator(".draw-form button[type=submit]").click()
    await expect(section.locator(".commitment code")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    await section.scroll_into_view_if_needed()
    await screenshot(page, f"draw-board-{lang}-{viewport['width']}")
    shown = await section.locator(".commitment code").inner_text()
    await section.get_by_role("button", name=words["draw"]).click()
    await expect(page.locator("ol.winners li")).to_have_count(2)
    made = (await env.stack.rows(select(LuckyDraw).order_by(LuckyDraw.id.desc())))[0]
    assert made.commitment == shown
    assert set(fans) <= set(json.loads(made.entrants))
    await expect(page.locator(".verify .seed")).to_have_text(made.seed)
    await screenshot(page, f"draw-{lang}-{viewport['width']}")
    await page.context.close()
