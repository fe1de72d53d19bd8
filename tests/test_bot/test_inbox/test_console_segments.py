"""HTTP tests of the console's Segments page and the buyer panel's tags (issue 21): owners only, the
builder's bad input named beside its row with nothing changed, counts as the API counts, tags by hand."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from bot.inbox.auth import add_user
from bot.runtime.clock import utcnow
from crm_bridge.segment_tables import MemberTag, RfmCuts, SavedSegment
from crm_bridge.segments import refresh_figures
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_inbox.test_inbox_member import member_chat


async def _post(stack: Stack, path: str, form: dict[str, str], page: str = "/inbox/segments/new") -> tuple[int, str]:
    csrf = await csrf_of(stack, page)
    response = await stack.client.post(path, data={"csrf": csrf, **form}, allow_redirects=False)
    return response.status, await response.text()


def _error_beside(page: str, field: str) -> str:
    found = re.search(rf'data-field="{re.escape(field)}">([^<]+)<', page)
    assert found, f"no error beside {field}"
    return html.unescape(found.group(1))


async def test_owner_builds_a_segment_and_bad_rows_are_named(bot_stack: Stack) -> None:
    stack = bot_stack
    cid, _code = await member_chat(stack, "3000000000951")
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
        await refresh_figures(session, utcnow())
    assert (await sign_in(stack, "agent"))[0] == 303
    assert (await stack.client.get("/inbox/segments")).status == 403  # an agent: the styled 403
    assert (await stack.client.get("/inbox/segments/new")).status == 403
    # ... but tags a member by hand in the buyer panel, with the typeahead of the shop's tags
    status, _ = await _post(stack, f"/inbox/c/{cid}/member/tags", {"tag": "  VIP  "}, page=f"/inbox/c/{cid}")
    assert status == 303
    panel = await (await stack.client.get(f"/inbox/c/{cid}")).text()
    assert '<option value="VIP">' in panel and "NES: new" in panel
    [tag] = await stack.rows(select(MemberTag))
    assert (tag.tag, tag.source, tag.set_by) == ("VIP", "hand", "agent")
    await stack.client.post("/inbox/logout", data={"csrf": await csrf_of(stack, "/inbox")})
    assert (await sign_in(stack, "owner"))[0] == 303
    # bad rows: the field named beside its row, nothing saved, what was typed shown again
    bad = {
        "score outside 1-5": ({"match[1].test": "r_score:min", "match[1].value": "7"}, "match[1].value"),
        "an unknown state": ({"match[0].test": "napl:in", "match[0].value": "asleep"}, "match[0].value"),
        "an empty name": ({"name": " "}, "name"),
    }
    for what, (rows, field) in bad.items():
        form = {"name": "VIPs", "match[0].test": "tags:any", "match[0].value": "VIP", "action": "save", **rows}
        status, page = await _post(stack, "/inbox/segments/new", form)
        assert status == 400, what
        assert _error_beside(page, field), what
        assert f'value="{html.escape(form.get(field, ""), quote=True)}"' in page or field == "name", what
    assert await stack.rows(select(SavedSegment)) == []
    # the preview counts without saving; then save
    form = {"name": "VIPs", "match[0].test": "tags:any", "match[0].value": "VIP", "exclude[0].test": "napl:in"}
    form["exclude[0].value"] = "lapsed"
    status, page = await _post(stack, "/inbox/segments/new", {**form, "action": "preview"})
    assert status == 200 and "Members today: 1" in page and "Mei" in page
    assert await stack.rows(select(SavedSegment)) == []
    status, _ = await _post(stack, "/inbox/segments/new", {**form, "action": "save"})
    assert status == 303
    [segment] = await stack.rows(select(SavedSegment))
    listed = await (await stack.client.get("/inbox/segments")).text()
    assert "VIPs" in listed and "Members: 1" in listed
    # a duplicate name is refused beside the name
    status, page = await _post(stack, "/inbox/segments/new", {**form, "name": "vips", "action": "save"})
    assert status == 400 and _error_beside(page, "name") == "another segment has this name"
    # the lapse threshold: a bad one named, a good one saved
    status, page = await _post(stack, "/inbox/segments/settings", {"lapse_days": "2"}, page="/inbox/segments")
    assert status == 400 and _error_beside(page, "lapse_days")
    status, _ = await _post(stack, "/inbox/segments/settings", {"lapse_days": "60"}, page="/inbox/segments")
    assert status == 303 and (await stack.rows(select(RfmCuts)))[0].shop_lapse_days == 60
    # delete
    status, _ = await _post(stack, f"/inbox/segments/{segment.id}/delete", {}, page=f"/inbox/segments/{segment.id}")
    assert status == 303 and await stack.rows(select(SavedSegment)) == []
