"""HTTP tests of the CRM dashboard (issue 21): the page for owners (an agent gets the 403), the admin API
twin and the Excel export agree with a count from the rows; a bad period is refused naming its field.

The shop is the one `tests.test_crm_bridge.test_dashboard` builds through carts and crm_bridge over a
controlled clock; the pages read that clock (`utcnow` moved to its `NOW`)."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from decimal import Decimal as D

import pytest

from bot.inbox.auth import add_user
from bot.inbox.views import dashboard as dashboard_view
from bot.replies.i18n import money, number
from bot.web import dashboard_api
from crm_bridge.program import apply_program
from tests.conftest import ADMIN_TOKEN, PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_inbox.test_report import column, read_xlsx
from tests.test_crm_bridge.crm_db import PROGRAM
from tests.test_crm_bridge.test_dashboard import HK, NOW, T0, Rows, _utc, build_shop, load, local_midnight

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
async def shop_stack(bot_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    async with bot_stack.sessions() as session, session.begin():
        await apply_program(session, PROGRAM, T0)
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
    await build_shop(bot_stack.sessions)
    monkeypatch.setattr(dashboard_view, "utcnow", lambda: NOW)
    monkeypatch.setattr(dashboard_api, "utcnow", lambda: NOW)
    return bot_stack


def expected_year(rows: Rows) -> dict[str, object]:
    """The last 365 days' headline figures, counted here from the rows."""
    start = local_midnight(NOW.astimezone(HK).date() - timedelta(days=364))
    paid = [c for c in rows.counted if start <= c[1] < NOW]
    return {
        "members": sum(1 for m in rows.alive if _utc(m.created_at) < NOW),  # type: ignore[operator]
        "orders": len(paid),
        "gmv": sum((c[2] for c in paid), D(0)).quantize(D("0.01")),
        # The running bot's own loops (on the machine's clock, months after NOW) may add rows: not yet at NOW.
        "liability": sum(p.points for p in rows.points if _utc(p.created_at) < NOW),  # type: ignore[operator]
    }


async def test_owner_reads_the_dashboard_in_both_languages_and_exports_it(shop_stack: Stack) -> None:
    stack = shop_stack
    want = expected_year(await load(stack.sessions))
    api = await stack.client.get("/api/dashboard?days=365", headers=ADMIN)
    assert api.status == 200, await api.text()
    body = await api.json()
    assert (body["members"], body["orders"], body["gmv"]) == (want["members"], want["orders"], f"{want['gmv']:.2f}")
    assert body["points"]["liability"] == want["liability"] and body["period"]["grain"] == "month"
    assert (await stack.client.get("/api/dashboard?days=365")).status == 401  # the admin token is needed

    assert (await sign_in(stack, "agent"))[0] == 303
    assert (await stack.client.get("/inbox/dashboard")).status == 403
    assert (await stack.client.get("/inbox/dashboard.xlsx")).status == 403
    assert 'href="/inbox/dashboard"' not in await (await stack.client.get("/inbox")).text()
    await stack.client.post("/inbox/logout", data={"csrf": await csrf_of(stack, "/inbox")})
    assert (await sign_in(stack, "owner"))[0] == 303

    for lang in ("en", "zh_Hant"):
        page = await (await stack.client.get(f"/inbox/dashboard?days=365&lang={lang}")).text()
        assert 'href="/inbox/dashboard"' in page  # the nav's link
        assert html.escape(money(lang, want["gmv"], "HKD")) in page  # type: ignore[arg-type]
        assert f"<dd>{number(lang, want['members'])}</dd>" in page  # type: ignore[arg-type]
        assert page.count('<svg class="chart-svg') == 8  # two charts wide and narrow, four small ones
        assert 'aria-current="page">' in page
    chinese = await (await stack.client.get("/inbox/dashboard?days=365&lang=zh_Hant")).text()
    assert "儀表板" in chinese and "回購率" in chinese

    response = await stack.client.get("/inbox/dashboard.xlsx?days=365")
    assert response.status == 200 and "dashboard-" in response.headers["Content-Disposition"]
    sheets = read_xlsx(await response.read())
    figures = column(sheets["Figures"])
    assert figures["Members"] == want["members"] and figures["Paid orders"] == want["orders"]
    assert D(str(figures["GMV (HKD)"])).quantize(D("0.01")) == want["gmv"]
    assert figures["Points outstanding (liability)"] == want["liability"]
    assert len(sheets["Over time"]) > 12 and "By tier" in sheets
    assert "數字" in read_xlsx(await (await stack.client.get("/inbox/dashboard.xlsx?days=365&lang=zh_Hant")).read())


async def test_a_bad_period_is_refused_naming_its_field(shop_stack: Stack) -> None:
    stack = shop_stack
    bad = {
        "days=7": "days",
        "from=2026-02-01&to=2026-01-01": "from",
        "from=2026-02-30&to=2026-03-01": "from",
        "from=2026-01-01": "to",
        "from=2026-01-01&to=2026-07-07": "to",  # after today (the shop's today is 6 July 2026)
        "colour=red": "colour",
    }
    for query, field in bad.items():
        response = await stack.client.get(f"/api/dashboard?{query}", headers=ADMIN)
        assert response.status == 400, query
        assert (await response.json())["field"] == field, query
    assert (await sign_in(stack, "owner"))[0] == 303
    page = await (await stack.client.get("/inbox/dashboard?from=2026-02-01&to=2026-01-01&lang=zh_Hant")).text()
    found = re.search(r'data-field="from">([^<]+)<', page)
    assert found and "不可" in html.unescape(found.group(1))
    assert 'value="2026-02-01"' in page and 'value="2026-01-01"' in page  # what was typed, shown again
    assert 'aria-invalid="true"' in page and "<svg" not in page
    response = await stack.client.get("/inbox/dashboard?days=7")
    assert response.status == 400
    assert (await stack.client.get("/inbox/dashboard.xlsx?days=7")).status == 400
