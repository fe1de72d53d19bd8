"""HTTP tests of the console's users and Pages pages (owners): inviting with a one-time link, setting the
password with it, roles and Pages, disabling, the last-owner rule, bad input, and the Pages' state."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.inbox.auth import PASSWORD_LINK_TTL, add_user
from bot.inbox.tables import InboxPasswordLink, InboxUser, InboxUserPage
from bot.inbox.users import remove_user
from bot.inbox.views import users as users_view
from bot.runtime.clock import utcnow
from bot.services import GRAPH
from bot.store.tables import InstagramAccount, PageState
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in

PAGE_2 = "1000000000002"
LINK = re.compile(r'id="one-time-link" class="link-text" value="[^"]*/inbox/password/([A-Za-z0-9_-]+)"')


async def shop(stack: Stack) -> None:
    """owner: the only owner of Page 1; agent: its agent; other: an agent of another shop's Page 2."""
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
        await add_user(session, "other", PASSWORD, "agent", [PAGE_2])


async def user(stack: Stack, name: str) -> InboxUser:
    return (await stack.rows(select(InboxUser).where(InboxUser.name == name)))[0]


async def post(stack: Stack, path: str, data: dict[str, Any] | list[tuple[str, str]], csrf_from: str) -> Any:
    csrf = await csrf_of(stack, csrf_from)
    fields = list(data.items()) if isinstance(data, dict) else list(data)
    return await stack.client.post(path, data=[("csrf", csrf), *fields], allow_redirects=False)


async def invite(stack: Stack, name: str, role: str = "agent", pages: tuple[str, ...] = (PAGE_ID,)) -> tuple[int, str]:
    fields = [("name", name), ("role", role), *(("page", p) for p in pages), ("locale", "")]
    response = await post(stack, "/inbox/users", fields, "/inbox/users")
    return response.status, await response.text()


async def test_an_agent_may_not_manage_users_or_pages(bot_stack: Stack) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "agent"))[0] == 303
    for path in ("/inbox/users", "/inbox/pages", f"/inbox/users/{(await user(bot_stack, 'agent')).id}"):
        assert (await bot_stack.client.get(path, allow_redirects=False)).status == 403, path
    csrf = await csrf_of(bot_stack, "/inbox")
    refused = await bot_stack.client.post(
        "/inbox/users", data={"csrf": csrf, "name": "mallory", "role": "owner", "page": PAGE_ID}
    )
    assert refused.status == 403
    resumed = await bot_stack.client.post(f"/inbox/pages/{PAGE_ID}/resume", data={"csrf": csrf})
    assert resumed.status == 403
    assert [u.name for u in await bot_stack.rows(select(InboxUser).order_by(InboxUser.name))] == [
        "agent",
        "other",
        "owner",
    ]
    page = await (await bot_stack.client.get("/inbox")).text()
    assert 'href="/inbox/users"' not in page and 'href="/inbox/pages"' not in page


async def test_an_invited_agent_sets_their_password_once_with_the_link_and_signs_in(bot_stack: Stack) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    status, page = await invite(bot_stack, "mei", "agent")
    assert status == 200
    token = LINK.search(page).group(1)  # type: ignore[union-attr]
    mei = await user(bot_stack, "mei")
    assert (mei.role, mei.active) == ("agent", True)
    pages = await bot_stack.rows(select(InboxUserPage.page_id).where(InboxUserPage.user_id == mei.id))
    assert pages == [PAGE_ID]
    # Only the token's hash is kept, and the link expires.
    link = (await bot_stack.rows(select(InboxPasswordLink)))[0]
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in link.token_hash
    assert link.expires_at - link.created_at == PASSWORD_LINK_TTL
    # Listed as invited; the link is not on the page any more.
    listing = await (await bot_stack.client.get("/inbox/users")).text()
    assert 'data-user="mei"' in listing and "Invited: no password yet" in listing and token not in listing
    # No password signs mei in before the link is used.
    bot_stack.client.session.cookie_jar.clear()
    assert (await sign_in(bot_stack, "mei", ""))[0] == 401
    form = await bot_stack.client.get(f"/inbox/password/{token}")
    assert form.status == 200 and "mei" in await form.text()
    short = await bot_stack.client.post(f"/inbox/password/{token}", data={"password": "short", "again": "short"})
    assert short.status == 400 and "at least 8 characters" in await short.text()
    differ = await bot_stack.client.post(
        f"/inbox/password/{token}", data={"password": "mei's own password", "again": "mei's other password"}
    )
    assert differ.status == 400 and "The two passwords differ." in await differ.text()
    done = await bot_stack.client.post(
        f"/inbox/password/{token}",
        data={"password": "mei's own password", "again": "mei's own password"},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/inbox/login"
    assert await bot_stack.rows(select(InboxPasswordLink)) == []
    again = await bot_stack.client.post(
        f"/inbox/password/{token}", data={"password": "a takeover attempt", "again": "a takeover attempt"}
    )
    assert again.status == 410  # used once: gone
    assert (await sign_in(bot_stack, "mei", "a takeover attempt"))[0] == 401
    assert (await sign_in(bot_stack, "mei", "mei's own password"))[0] == 303
    # An agent of Page 1 only: another Page's users page is not theirs either.
    assert (await bot_stack.client.get("/inbox/users", allow_redirects=False)).status == 403


async def test_an_expired_link_sets_nothing(bot_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    token = LINK.search((await invite(bot_stack, "kit"))[1]).group(1)  # type: ignore[union-attr]
    before = (await user(bot_stack, "kit")).password_hash
    later = utcnow() + PASSWORD_LINK_TTL + timedelta(minutes=1)
    monkeypatch.setattr(users_view, "utcnow", lambda: later)
    page = await bot_stack.client.get(f"/inbox/password/{token}")
    assert page.status == 410 and "owner for a new one." in await page.text()
    posted = await bot_stack.client.post(
        f"/inbox/password/{token}", data={"password": "kit's password", "again": "kit's password"}
    )
    assert posted.status == 410
    assert (await user(bot_stack, "kit")).password_hash == before
    monkeypatch.undo()
    # The owner sees it expired, and a new link replaces it.
    listing = await (await bot_stack.client.get("/inbox/users")).text()
    assert "Invited: no password yet" in listing
    assert (await bot_stack.client.get(f"/inbox/password/{token}")).status == 200
    kit = await user(bot_stack, "kit")
    fresh = await post(bot_stack, f"/inbox/users/{kit.id}/link", {}, f"/inbox/users/{kit.id}")
    new_token = LINK.search(await fresh.text()).group(1)  # type: ignore[union-attr]
    assert new_token != token
    assert (await bot_stack.client.get(f"/inbox/password/{token}")).status == 410
    assert (await bot_stack.client.get(f"/inbox/password/{new_token}")).status == 200


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"name": "mei chan"}, "name", "A name has 1 to 80 characters and no spaces."),
        ({"name": ""}, "name", "A name has 1 to 80 characters and no spaces."),
        ({"name": "m" * 81}, "name", "A name has 1 to 80 characters and no spaces."),
        ({"name": "agent"}, "name", "There is already a user with this name."),
        ({"role": "admin"}, "role", "Choose Owner or Agent."),
        ({"page": None}, "pages", "Choose at least one of your Pages."),
        ({"page": PAGE_2}, "pages", "Choose at least one of your Pages."),  # another shop's Page
        ({"page": "12ab"}, "pages", "Choose at least one of your Pages."),
        ({"locale": "fr"}, "locale", "Choose a language from the list."),
    ],
    ids=["space", "empty", "long", "taken", "role", "no-page", "not-mine", "not-a-page", "language"],
)
async def test_a_bad_invitation_names_the_field_keeps_what_was_typed_and_changes_nothing(
    bot_stack: Stack, fields: dict[str, Any], field: str, error: str
) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    form = {"name": "mei", "role": "agent", "page": PAGE_ID, "locale": "zh_Hant", **fields}
    sent = [(k, v) for k, v in form.items() if v is not None]
    before = [(u.name, u.role) for u in await bot_stack.rows(select(InboxUser).order_by(InboxUser.id))]
    response = await post(bot_stack, "/inbox/users", sent, "/inbox/users")
    page = await response.text()
    assert response.status == 400
    assert f'id="{field}-error" role="alert">{error}' in page.replace("&#39;", "'")
    if form["name"] and len(form["name"]) <= 80:
        assert f'value="{form["name"]}"' in page  # what was typed is still there
    assert 'value="zh_Hant" selected' in page or field == "locale"
    assert [(u.name, u.role) for u in await bot_stack.rows(select(InboxUser).order_by(InboxUser.id))] == before
    assert await bot_stack.rows(select(InboxPasswordLink)) == []


async def test_the_errors_are_in_the_readers_language(bot_stack: Stack) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    csrf = await csrf_of(bot_stack, "/inbox/users")
    response = await bot_stack.client.post(
        "/inbox/users?lang=zh-HK", data={"csrf": csrf, "name": "a b", "role": "agent", "page": PAGE_ID}
    )
    page = await response.text()
    assert response.status == 400 and "名稱須為 1 至 80 個字元，且不可有空格。" in page and "邀請成員" in page


async def test_the_last_active_owner_of_a_page_can_be_neither_demoted_nor_disabled(bot_stack: Stack) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    me = await user(bot_stack, "owner")
    demote = await post(
        bot_stack, f"/inbox/users/{me.id}", {"role": "agent", "page": PAGE_ID, "locale": ""}, f"/inbox/users/{me.id}"
    )
    assert demote.status == 409
    assert f"owner is the last active owner of Page {PAGE_ID}" in await demote.text()
    disable = await post(bot_stack, f"/inbox/users/{me.id}/disable", {}, f"/inbox/users/{me.id}")
    assert disable.status == 409 and "last active owner" in await disable.text()
    after = await user(bot_stack, "owner")
    assert (after.role, after.active, after.session_epoch) == ("owner", True, me.session_epoch)
    assert (await bot_stack.client.get("/inbox/users")).status == 200  # still signed in
    # With a second owner of the Page, the first may step down.
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "owner2", PASSWORD, "owner", [PAGE_ID])
    owner2 = await user(bot_stack, "owner2")
    off = await post(bot_stack, f"/inbox/users/{owner2.id}/disable", {}, f"/inbox/users/{owner2.id}")
    assert off.status == 303
    gone = await user(bot_stack, "owner2")
    assert not gone.active and gone.session_epoch == owner2.session_epoch + 1  # their sessions ended
    # ...and now owner2 is disabled, owner is the last active one again.
    assert (await post(bot_stack, f"/inbox/users/{me.id}/disable", {}, f"/inbox/users/{me.id}")).status == 409
    on = await post(bot_stack, f"/inbox/users/{owner2.id}/enable", {}, f"/inbox/users/{owner2.id}")
    assert on.status == 303 and (await user(bot_stack, "owner2")).active
    stepped_down = await post(
        bot_stack, f"/inbox/users/{me.id}", {"role": "agent", "page": PAGE_ID, "locale": ""}, f"/inbox/users/{me.id}"
    )
    assert stepped_down.status == 303 and (await user(bot_stack, "owner")).role == "agent"


async def test_an_owner_changes_an_agents_role_pages_and_language(bot_stack: Stack) -> None:
    await shop(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID, PAGE_2])  # owns both Pages now
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    agent = await user(bot_stack, "agent")
    changed = await post(
        bot_stack,
        f"/inbox/users/{agent.id}",
        [("role", "agent"), ("page", PAGE_2), ("locale", "zh_Hant")],
        f"/inbox/users/{agent.id}",
    )
    assert changed.status == 303
    after = await user(bot_stack, "agent")
    pages = await bot_stack.rows(select(InboxUserPage.page_id).where(InboxUserPage.user_id == agent.id))
    assert (pages, after.locale, after.session_epoch) == ([PAGE_2], "zh_Hant", agent.session_epoch + 1)


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ([("role", "agent"), ("locale", "")], "pages", "Choose at least one of your Pages."),
        ([("role", "boss"), ("page", PAGE_ID), ("locale", "")], "role", "Choose Owner or Agent."),
        ([("role", "agent"), ("page", PAGE_ID), ("locale", "klingon")], "locale", "Choose a language from the list."),
    ],
    ids=["no-page", "role", "language"],
)
async def test_a_bad_change_names_the_field_and_changes_nothing(
    bot_stack: Stack, fields: list[tuple[str, str]], field: str, error: str
) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    agent = await user(bot_stack, "agent")
    response = await post(bot_stack, f"/inbox/users/{agent.id}", fields, f"/inbox/users/{agent.id}")
    assert response.status == 400 and f'id="{field}-error" role="alert">{error}' in await response.text()
    after = await user(bot_stack, "agent")
    pages = await bot_stack.rows(select(InboxUserPage.page_id).where(InboxUserPage.user_id == agent.id))
    assert (after.role, after.locale, after.session_epoch, pages) == ("agent", None, agent.session_epoch, [PAGE_ID])


async def test_another_shops_users_are_neither_listed_nor_changed(bot_stack: Stack) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    listing = await (await bot_stack.client.get("/inbox/users")).text()
    assert 'data-user="agent"' in listing and 'data-user="other"' not in listing
    other = await user(bot_stack, "other")
    assert (await bot_stack.client.get(f"/inbox/users/{other.id}")).status == 404
    refused = await post(bot_stack, f"/inbox/users/{other.id}/disable", {}, "/inbox/users")
    assert refused.status == 404 and (await user(bot_stack, "other")).active
    assert (await bot_stack.client.get("/inbox/users/99999999999999999999")).status == 404
    # A user who also works on another shop's Page is listed, but only that Page's owner changes them too.
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "shared", PASSWORD, "agent", [PAGE_ID, PAGE_2])
    shared = await user(bot_stack, "shared")
    assert (await post(bot_stack, f"/inbox/users/{shared.id}/disable", {}, "/inbox/users")).status == 403
    assert (await user(bot_stack, "shared")).active


async def test_the_pages_page_shows_the_token_the_subscriptions_and_a_pause_an_owner_resumes(bot_stack: Stack) -> None:
    await shop(bot_stack)
    now = utcnow()
    async with bot_stack.sessions() as session, session.begin():
        session.add(
            PageState(
                page_id=PAGE_ID,
                sending_paused=True,
                pause_kind="page_restricted",
                paused_reason="page_restricted (#368): The action attempted has been deemed abusive",
                paused_at=now - timedelta(minutes=5),
                paused_until=now + timedelta(minutes=10),
            )
        )
        session.add(
            InstagramAccount(account_id="17841400000000001", page_id=PAGE_ID, username="testshop", updated_at=now)
        )
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    response = await bot_stack.client.get("/inbox/pages")
    page = await response.text()
    assert response.status == 200
    assert "Test Shop" in page and "token-works" in page  # the emulator's name for the Page: Meta took the token
    assert "Meta has temporarily restricted this Page from sending messages." in page
    assert "deemed abusive" in page and "@testshop" in page
    assert "plusone page-token" in page and "EAAB" in page  # how to set a token, not a form for it
    assert bot_stack.settings.page_tokens[PAGE_ID].get_secret_value() not in page  # never the token itself
    resumed = await post(bot_stack, f"/inbox/pages/{PAGE_ID}/resume", {}, "/inbox/pages")
    assert resumed.status == 303 and resumed.headers["Location"].startswith(f"/inbox/pages?resumed={PAGE_ID}")
    state = (await bot_stack.rows(select(PageState)))[0]
    assert (state.sending_paused, state.pause_kind, state.paused_reason) == (False, None, None)
    page = await (await bot_stack.client.get(f"/inbox/pages?resumed={PAGE_ID}")).text()
    assert f"Sending resumed for Page {PAGE_ID}." in page and "Sending normally" in page
    # Another shop's Page cannot be resumed from here.
    assert (await post(bot_stack, f"/inbox/pages/{PAGE_2}/resume", {}, "/inbox/pages")).status == 404


async def test_a_token_meta_refuses_shows_as_refused_with_metas_words(bot_stack: Stack) -> None:
    await shop(bot_stack)
    async with bot_stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID, PAGE_2])
    graph = bot_stack.client.app[GRAPH]
    graph.page_tokens[PAGE_ID] = "a-revoked-token"
    try:
        assert (await sign_in(bot_stack, "owner"))[0] == 303
        page = await (await bot_stack.client.get("/inbox/pages")).text()
    finally:
        graph.page_tokens[PAGE_ID] = bot_stack.settings.page_tokens[PAGE_ID].get_secret_value()
    first = page[page.index(f'id="page-{PAGE_ID}"') : page.index(f'id="page-{PAGE_2}"')]
    assert "token-refused" in first and "bad_token" in first
    second = page[page.index(f'id="page-{PAGE_2}"') :]
    assert "token-missing" in second and "None on this server" in second


async def test_plusone_user_remove_takes_an_invited_users_link_with_them(bot_stack: Stack) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    token = LINK.search((await invite(bot_stack, "temp"))[1]).group(1)  # type: ignore[union-attr]
    async with bot_stack.sessions() as session, session.begin():
        await remove_user(session, "temp")
    assert await bot_stack.rows(select(InboxPasswordLink)) == []
    assert (await bot_stack.client.get(f"/inbox/password/{token}")).status == 410


async def test_a_password_link_for_an_agent_who_forgot_theirs_replaces_it_once_used(bot_stack: Stack) -> None:
    await shop(bot_stack)
    assert (await sign_in(bot_stack, "owner"))[0] == 303
    agent = await user(bot_stack, "agent")
    made = await post(bot_stack, f"/inbox/users/{agent.id}/link", {}, f"/inbox/users/{agent.id}")
    page = await made.text()
    assert made.status == 200 and "Password link for agent" in page
    token = LINK.search(page).group(1)  # type: ignore[union-attr]
    assert (await bot_stack.rows(select(InboxPasswordLink)))[0].purpose == "reset"
    bot_stack.client.session.cookie_jar.clear()
    assert (await sign_in(bot_stack, "agent"))[0] == 303  # the old password works until the link is used
    bot_stack.client.session.cookie_jar.clear()
    done = await bot_stack.client.post(
        f"/inbox/password/{token}", data={"password": "a fresh one!", "again": "a fresh one!"}, allow_redirects=False
    )
    assert done.status == 303
    assert (await user(bot_stack, "agent")).session_epoch == agent.session_epoch + 1  # other sessions ended
    assert (await sign_in(bot_stack, "agent"))[0] == 401
    assert (await sign_in(bot_stack, "agent", "a fresh one!"))[0] == 303
