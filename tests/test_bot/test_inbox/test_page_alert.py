"""The inbox tells the merchant when Meta stopped one of their Pages sending: a banner on every inbox page,
naming the Page, Meta's reason in words and what to do, in English and Traditional Chinese, with times in
the shop's zone; only to users of that Page, and gone once the Page sends again."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from sqlalchemy import select

from bot.outbound.sender import resume_page
from bot.store.tables import PageState
from carts.tables import ShopInfo
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import sign_in, users


async def pause(stack: Stack, kind: str, reason: str, until: datetime | None) -> None:
    async with stack.sessions() as session, session.begin():
        shop = await session.get(ShopInfo, 1) or ShopInfo(id=1, updated_at=datetime.now(UTC))
        shop.timezone = "Asia/Hong_Kong"
        session.add(shop)
        state = await session.get(PageState, PAGE_ID) or PageState(page_id=PAGE_ID)
        state.sending_paused, state.pause_kind, state.paused_reason = True, kind, reason
        state.paused_at, state.paused_until = datetime(2026, 12, 3, 5, 0, tzinfo=UTC), until
        session.add(state)


async def page_text(stack: Stack, path: str) -> str:
    response = await stack.client.get(path)
    assert response.status == 200
    return html.unescape(await response.text())


async def test_a_restricted_page_shows_a_banner_on_every_inbox_page(stack: Stack) -> None:
    await users(stack)
    reason = "page_restricted (#10/1893063): (#10) This Page is temporarily restricted from sending messages."
    await pause(stack, "page_restricted", reason, datetime(2026, 12, 3, 6, 15, tzinfo=UTC))
    assert (await sign_in(stack, "owner"))[0] == 303
    for path in ("/inbox", "/inbox/orders", "/inbox/board", "/inbox/saved-replies"):
        page = await page_text(stack, path)
        assert 'class="page-alert" role="alert"' in page, path
        assert f"Sending paused on Page {PAGE_ID}" in page
        assert "Meta has temporarily restricted this Page from sending messages." in page
        assert "One message is tried again at 2026-12-03 14:15." in page  # 06:15 UTC in Hong Kong
        assert f"專頁 {PAGE_ID} 已暫停發送訊息" in page and "Meta 已暫時限制此專頁發送訊息。" in page
        assert "系統會在 2026-12-03 14:15 再試發一則訊息" in page
        assert f"Meta: {reason}" in page  # Meta's own words, for a support request


async def test_a_throttle_banner_says_nothing_is_lost_and_only_the_pages_users_see_it(stack: Stack) -> None:
    await users(stack)
    await pause(stack, "throttled", "throttled (#80006): too many", datetime(2026, 12, 3, 5, 2, tzinfo=UTC))
    assert (await sign_in(stack, "owner"))[0] == 303
    page = await page_text(stack, "/inbox")
    assert "Meta is limiting how many messages this Page may send for now (rate limit)." in page
    assert "when Meta allows, about 2026-12-03 13:02." in page and "約 2026-12-03 13:02" in page

    stack.client.session.cookie_jar.clear()
    assert (await sign_in(stack, "other"))[0] == 303  # an agent of another Page
    assert "page-alert" not in await page_text(stack, "/inbox")

    stack.client.session.cookie_jar.clear()
    assert (await sign_in(stack, "owner"))[0] == 303
    assert await resume_page(stack.sessions, PAGE_ID)
    assert "page-alert" not in await page_text(stack, "/inbox")
    assert not await stack.rows(select(PageState).where(PageState.sending_paused.is_(True)))
