"""HTTP tests of what sold (bot/inbox/views/report.py): the report page in both languages with its SVG chart,
the Excel export read back cell by cell, the live board's funnel section, and bad input (an unknown or
another Page's campaign is a styled 404, an agent gets the 403 page, an empty campaign exports zeros)."""

from __future__ import annotations

import re
import zipfile
from datetime import timedelta
from io import BytesIO
from xml.etree import ElementTree

from sqlalchemy import select

from bot.inbox.auth import add_user
from bot.runtime.clock import utcnow
from bot.services import FUNNEL_CACHE
from carts.order_tables import CheckoutToken
from carts.orders import fetch_or_create_checkout_token, mark_paid, place_order
from carts.tables import Campaign, ShopInfo, StockClaim
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.stack import Stack
from tests.test_bot.test_handlers.test_comments import seed_shop
from tests.test_bot.test_inbox.test_funnel import FORM
from tests.test_bot.test_inbox.test_inbox import PASSWORD, sign_in

OTHER_PAGE = "1000000000002"
NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


def read_xlsx(body: bytes) -> dict[str, dict[str, str | float]]:
    """Every sheet of a workbook by name: cell reference → its text or number (zipfile and XML, no openpyxl)."""
    book = zipfile.ZipFile(BytesIO(body))
    strings = [
        "".join(t.text or "" for t in si.iter(f"{{{NS['x']}}}t"))
        for si in ElementTree.fromstring(book.read("xl/sharedStrings.xml")).findall("x:si", NS)
    ]
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target") for r in rels}
    sheets: dict[str, dict[str, str | float]] = {}
    for sheet in ElementTree.fromstring(book.read("xl/workbook.xml")).find("x:sheets", NS):  # type: ignore[union-attr]
        xml = ElementTree.fromstring(book.read(f"xl/{targets[sheet.get(RELS)]}"))
        cells: dict[str, str | float] = {}
        for c in xml.iter(f"{{{NS['x']}}}c"):
            v = c.find("x:v", NS)
            if v is None or v.text is None:
                continue
            cells[c.get("r") or ""] = strings[int(v.text)] if c.get("t") == "s" else float(v.text)
        sheets[sheet.get("name") or ""] = cells
    return sheets


def column(cells: dict[str, str | float], label_col: str = "A", value_col: str = "B") -> dict[str, str | float]:
    """A sheet of label/value rows as {label: value}."""
    rows = {re.sub(r"\D", "", ref) for ref in cells}
    return {
        str(cells[f"{label_col}{r}"]): cells.get(f"{value_col}{r}", "")
        for r in sorted(rows, key=int)
        if f"{label_col}{r}" in cells
    }


async def a_small_sale(stack: Stack) -> None:
    """Three comments (one chatter), one order paid; another Page's campaign; a campaign with no comments."""
    await seed_shop(stack.sessions)
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        session.add(ShopInfo(id=1, name="Blossom", currency="HKD", timezone="Asia/Hong_Kong", updated_at=now))
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
        for key, page in (("quiet", PAGE_ID), ("theirs", OTHER_PAGE)):
            session.add(
                Campaign(
                    key=key,
                    title=f"{key} sale",
                    page_id=page,
                    post_id=f"{page}_2000000000999",
                    starts_at=now - timedelta(hours=1),
                    ends_at=now + timedelta(hours=1),
                    created_at=now,
                    updated_at=now,
                )
            )
    for n, (psid, text) in enumerate([("3000000000301", "A+1"), ("3000000000302", "好靚!"), ("3000000000303", "A+2")]):
        await stack.emulator.deliver_comment(PAGE_ID, "2000000000001", psid, text, comment_id=f"2000000000001_{n}")

    async def decided() -> bool:
        rows = await stack.rows(select(StockClaim.status))
        return len(rows) == 2 and "pending" not in rows

    await wait_until(decided, what="both orders held")
    async with stack.sessions() as session, session.begin():
        token = await fetch_or_create_checkout_token(session, PAGE_ID, "3000000000301", now)
        nonce = (await session.execute(select(CheckoutToken.nonce).where(CheckoutToken.token == token))).scalar_one()
        placed = await place_order(session, token, nonce, FORM, now)
        await mark_paid(session, placed.order.number, now=now)


async def test_the_report_shows_the_funnel_products_and_chart_in_both_languages(bot_stack: Stack) -> None:
    stack = bot_stack
    await a_small_sale(stack)
    await sign_in(stack, "owner")
    listing = await (await stack.client.get("/inbox/reports")).text()
    assert 'href="/inbox/reports">Reports</a>' in listing  # in the navigation
    assert 'href="/inbox/reports/live"' in listing and "theirs" not in listing

    response = await stack.client.get("/inbox/reports/live")
    assert response.status == 200
    page = await response.text()
    assert "<h1>Report: Live sale</h1>" in page
    funnel = re.findall(r'<span class="step-name">([^<]+)</span>\s*<span class="step-n">([^<]+)</span>', page)
    assert funnel == [
        ("Comments", "3"),
        ("Order comments", "2"),
        ("Stock held", "2"),
        ("Checked out", "1"),
        ("Paid", "1"),
    ]
    assert "<dt>GMV</dt><dd>HK$380</dd>" in page and "<dt>Sell-through</dt><dd>20%</dd>" in page  # 1 of 5 paid
    assert (
        '<svg class="chart-svg chart-wide"' in page
        and '<title id="chart-title-wide">Comments and orders per minute</title>' in page
    )
    assert "Time (Hong Kong Time)" in page  # the zone by its name in the reader's language
    assert re.search(r'<th scope="row">A <span class="muted">Rose bouquet</span></th>', page)

    chinese = await (await stack.client.get("/inbox/reports/live?lang=zh_Hant")).text()
    assert "<h1>報告:Live sale</h1>" in chinese and "<dt>成交額</dt><dd>HK$380</dd>" in chinese
    assert "每分鐘留言及訂單" in chinese and "時間(香港時間)" in chinese

    board = await (await stack.client.get("/inbox/board/live")).text()
    assert 'id="board-funnel"' in board and 'data-live-src="/inbox/reports/live?part=board"' in board
    part = await (await stack.client.get("/inbox/reports/live?part=board")).text()
    assert (
        part.lstrip().startswith('<dl class="kpis">') and "<html" not in part and "<dt>GMV</dt><dd>HK$380</dd>" in part
    )


async def test_the_export_is_a_workbook_of_the_figures_in_the_readers_language(bot_stack: Stack) -> None:
    stack = bot_stack
    await a_small_sale(stack)
    await sign_in(stack, "owner")
    response = await stack.client.get("/inbox/reports/live.xlsx")
    assert response.status == 200
    assert 'filename="report-live.xlsx"' in response.headers["Content-Disposition"]
    sheets = read_xlsx(await response.read())
    assert list(sheets) == ["Funnel", "Products", "A Rose bouquet", "B Linen shirt", "Per minute"]
    funnel = column(sheets["Funnel"])
    assert (
        funnel["Comments"],
        funnel["Order comments"],
        funnel["Stock held"],
        funnel["Checked out"],
        funnel["Paid"],
    ) == (
        3,
        2,
        2,
        1,
        1,
    )
    assert (funnel["GMV (HKD)"], funnel["Paid orders"], funnel["Average order value (HKD)"]) == (380, 1, 380)
    assert funnel["Sell-through"] == 0.2
    assert column(sheets["Funnel"], "A", "C")["Order comments"] == round(2 / 3, 4)  # of the step before, to 0.01%
    rose = column(sheets["A Rose bouquet"])
    assert (rose["Stock"], rose["Units held"], rose["Units paid"], rose["GMV"]) == (5, 3, 1, 380)
    assert sheets["Products"]["A1"] == "Code" and sheets["Products"]["B2"] == "Rose bouquet"
    minutes = sheets["Per minute"]
    assert minutes["A1"] == "From (Hong Kong Time)"
    assert sum(v for ref, v in minutes.items() if ref[0] == "C" and ref != "C1") == 3  # type: ignore[misc]

    chinese = read_xlsx(await (await stack.client.get("/inbox/reports/live.xlsx?lang=zh_Hant")).read())
    assert list(chinese)[:2] == ["銷售漏斗", "商品"] and column(chinese["銷售漏斗"])["成交額(HKD)"] == 380

    quiet = await (await stack.client.get("/inbox/reports/quiet")).text()  # the page of it, too
    assert (
        "No comments yet." in quiet
        and "No products in this campaign." in quiet
        and "<dt>GMV</dt><dd>HK$0</dd>" in quiet
    )
    empty = read_xlsx(await (await stack.client.get("/inbox/reports/quiet.xlsx")).read())
    assert list(empty) == ["Funnel", "Products", "Per minute"]  # no products, no comments: zeros, not an error
    figures = column(empty["Funnel"])
    assert (figures["Comments"], figures["Paid"], figures["GMV (HKD)"], figures["Paid orders"]) == (0, 0, 0, 0)
    assert list(empty["Per minute"]) == ["A1", "B1", "C1", "D1"]  # the header alone


async def test_unknown_or_another_pages_campaign_is_not_found_and_agents_are_refused(bot_stack: Stack) -> None:
    stack = bot_stack
    await a_small_sale(stack)
    await sign_in(stack, "owner")
    for path in (
        "/inbox/reports/nope",
        "/inbox/reports/nope.xlsx",
        "/inbox/reports/theirs",
        "/inbox/reports/theirs.xlsx",
    ):
        response = await stack.client.get(path)
        assert response.status == 404, path
        assert "<html" in await response.text()  # the styled page, not a bare text
    stack.client.session.cookie_jar.clear()
    await sign_in(stack, "agent")
    for path in ("/inbox/reports", "/inbox/reports/live", "/inbox/reports/live.xlsx", "/inbox/reports/live?part=board"):
        assert (await stack.client.get(path)).status == 403, path
    board = await (await stack.client.get("/inbox/board/live")).text()
    assert "board-funnel" not in board and "/inbox/reports" not in board  # no money figures, no link


async def test_the_board_refreshing_for_many_browsers_computes_the_figures_once(bot_stack: Stack) -> None:
    stack = bot_stack
    await a_small_sale(stack)
    await sign_in(stack, "owner")
    cache = stack.client.app[FUNNEL_CACHE]
    cache.ttl = timedelta(days=1)  # however slow this machine, the burst below is within it
    before = cache.computed
    for _ in range(20):  # a burst of comments: every open board asks for its section again
        assert (await stack.client.get("/inbox/reports/live?part=board")).status == 200
    assert (await stack.client.get("/inbox/board/live")).status == 200
    assert cache.computed - before == 1
