"""HTTP tests of the console's Journeys pages (issue 21): owners only; the playbook added off on first use;
the editor's refusals (a loop, a wait for ever, an unapproved template) named beside the step with nothing
changed; the preview of the form as typed; saving an edit makes a new version and says so; on/off; a run's
history and the member's journeys on the buyer panel."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from sqlalchemy import select

from bot.inbox.auth import add_user
from bot.inbox.journey_form import definition_values
from bot.inbox.views.journeys import ERROR_TEXTS, KEY_TAKEN, KEY_WORDS, SIGNUP_COUPON_TITLE
from bot.replies.i18n import translations
from bot.runtime.clock import utcnow
from carts.coupon_tables import Coupon
from carts.coupons import set_signup_coupon
from carts.tables import ShopInfo
from crm_bridge.journey_library import ReadyMade
from crm_bridge.journey_rules import EventKind, JourneyErrorCode, ReasonCode, StepKind, TriggerKind
from crm_bridge.journey_tables import Journey, JourneyVersion
from crm_bridge.journeys import add_event, fetch_journey
from crm_bridge.members import fetch_member_by_psid
from tests.conftest import PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_bot.test_inbox.test_inbox import PASSWORD, csrf_of, sign_in
from tests.test_bot.test_inbox.test_inbox_member import member_chat
from tests.test_crm_bridge.journey_db import add_sent

GOOD = {
    "trigger": {"kind": "joined"},
    "stay_in_segment": None,
    "attribution_days": 7,
    "steps": [
        {
            "id": "hello",
            "kind": "send",
            "text": {"en": "Hi {name}!", "zh_Hant": "{name} 你好！"},
            "coupon": None,
            "survey": False,
            "update": False,
            "template": None,
        },
        {"id": "wait1", "kind": "wait", "days": 3, "hours": 0},
        {
            "id": "again",
            "kind": "send",
            "text": {"en": "Still there?", "zh_Hant": ""},
            "coupon": None,
            "survey": False,
            "update": False,
            "template": None,
        },
    ],
}


async def _post(stack: Stack, path: str, form: dict[str, str], page: str = "/inbox/journeys/new") -> tuple[int, str]:
    csrf = await csrf_of(stack, page)
    response = await stack.client.post(path, data={"csrf": csrf, **form}, allow_redirects=False)
    return response.status, await response.text()


def _error_beside(page: str, field: str) -> str:
    found = re.search(rf'data-field="{re.escape(field)}">([^<]+)<', page)
    assert found, f"no error beside {field}"
    return html.unescape(found.group(1))


def _form(definition: dict, **extra: str) -> dict[str, str]:
    return {**definition_values(definition), "name": "Hello", "key": "hello", "attribution_days": "7", **extra}


async def test_owner_reads_the_playbook_edits_and_previews_an_agent_is_refused(bot_stack: Stack) -> None:
    stack = bot_stack
    cid, _code = await member_chat(stack, "3000000000961")  # a member who joined today, chatting now
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        await add_user(session, "agent", PASSWORD, "agent", [PAGE_ID])
    assert (await sign_in(stack, "agent"))[0] == 303
    assert (await stack.client.get("/inbox/journeys")).status == 403
    assert (await stack.client.get("/inbox/journeys/new")).status == 403
    assert await stack.rows(select(Journey)) == []
    await stack.client.post("/inbox/logout", data={"csrf": await csrf_of(stack, "/inbox")})
    assert (await sign_in(stack, "owner"))[0] == 303
    # first use: the playbook's six journeys, every one off, in the reader's words
    listed = await (await stack.client.get("/inbox/journeys")).text()
    journeys = await stack.rows(select(Journey))
    assert sorted(j.ready_made for j in journeys) == sorted(k.value for k in ReadyMade)
    assert not any(j.enabled for j in journeys)
    assert "Welcome with a sign-up coupon" in listed and "No order for" in listed
    zh = await (await stack.client.get("/inbox/journeys?lang=zh_Hant")).text()
    assert "迎新及註冊優惠券" in zh and "旅程" in zh
    # the editor refuses a loop, a wait for ever and an unapproved template beside the step; nothing saved
    loop = json.loads(json.dumps(GOOD))
    loop["steps"].insert(2, {"id": "b", "kind": "branch", "if": {"tag": "vip"}, "then": "hello"})
    forever = json.loads(json.dumps(GOOD))
    forever["steps"][1]["days"] = 400
    template = json.loads(json.dumps(GOOD))
    template["steps"][0] |= {"update": True, "template": "not_approved"}
    for what, definition, field, words in (
        ("loop", loop, "steps[2].then", "loop"),
        ("forever", forever, "steps[1].days", "365 days"),
        ("template", template, "steps[0].template", "not approved"),
    ):
        status, page = await _post(stack, "/inbox/journeys/new", {**_form(definition), "action": "save"})
        assert status == 400, what
        assert words in _error_beside(page, field), what
    assert await stack.rows(select(Journey).where(Journey.key == "hello")) == []
    # the preview of the form as typed: today's new member, the message in their language, by Messenger
    status, page = await _post(stack, "/inbox/journeys/new", {**_form(GOOD), "action": "preview"})
    assert status == 200 and "Members who would enter today: 1" in page
    assert "Hi Mei!" in page and "by Messenger" in page
    assert "not sent: outside Messenger" in page  # three days on, her window will have closed
    # save, then edit: a new version, said so
    status, _ = await _post(stack, "/inbox/journeys/new", {**_form(GOOD), "action": "save"})
    assert status == 303
    # a second new journey with the same short name is refused beside it, and edits nothing
    other = {**_form(GOOD), "name": "Other", "action": "save"}
    status, page = await _post(stack, "/inbox/journeys/new", other)
    assert status == 400 and _error_beside(page, "key") == "Another journey has this short name."
    status, page = await _post(stack, "/inbox/journeys/new", {**other, "key": "Bad Key!"})
    assert status == 400 and "lowercase letters" in _error_beside(page, "key")
    assert [j.name for j in await stack.rows(select(Journey).where(Journey.key == "hello"))] == ["Hello"]
    edited = json.loads(json.dumps(GOOD))
    edited["steps"][1]["days"] = 5
    response = await stack.client.post(
        "/inbox/journeys/hello",
        data={"csrf": await csrf_of(stack, "/inbox/journeys/hello"), **_form(edited), "action": "save"},
        allow_redirects=True,
    )
    assert "Saved as version 2" in await response.text()
    async with stack.sessions() as session:
        journey = await fetch_journey(session, "hello")
        assert journey is not None
        numbers = [
            v.number
            for v in (
                await session.execute(select(JourneyVersion).where(JourneyVersion.journey_id == journey.id))
            ).scalars()
        ]
    assert sorted(numbers) == [1, 2]
    # on and off
    status, _ = await _post(stack, "/inbox/journeys/hello/enabled", {"enabled": "1"}, page="/inbox/journeys")
    assert status == 303
    assert (await stack.rows(select(Journey.enabled).where(Journey.key == "hello"))) == [True]
    # a run's history in words, and the member's journeys on the buyer panel
    async with stack.sessions() as session, session.begin():
        member = await fetch_member_by_psid(session, PAGE_ID, "3000000000961")
        version = await session.get(JourneyVersion, journey.current_version_id)
        message = await add_sent(session, journey, version, member.id or 0, utcnow(), survey=True)
        await add_event(session, message.run_id, EventKind.SENT, utcnow(), step_id="hello", code="messenger")
    run_page = await (await stack.client.get(f"/inbox/journeys/runs/{message.run_id}")).text()
    assert "by Messenger" in run_page and "No answer yet." in run_page
    panel = await (await stack.client.get(f"/inbox/c/{cid}")).text()
    assert 'id="member-journeys"' in panel and "Hello" in panel
    runs_page = await (await stack.client.get("/inbox/journeys/hello/runs")).text()
    assert "No answers yet." in runs_page and f"/inbox/journeys/runs/{message.run_id}" in runs_page


async def test_a_shop_without_a_coupon_is_offered_a_sign_up_coupon_put_in_the_unedited_playbook(
    bot_stack: Stack,
) -> None:
    stack = bot_stack
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
    assert (await sign_in(stack, "owner"))[0] == 303
    listed = await (await stack.client.get("/inbox/journeys")).text()
    assert 'id="signup-coupon"' in listed and "Make a sign-up coupon: 10% off" in listed
    # The owner edits the win-back first: it is theirs now, and is left alone.
    async with stack.sessions() as session:
        win_back = await fetch_journey(session, "win-back")
        assert win_back is not None
        version = await session.get(JourneyVersion, win_back.current_version_id)
        assert version is not None
        edited = json.loads(version.definition)
    edited["steps"][0]["text"]["en"] = "Long time no see, {name}!"
    form = {**definition_values(edited), "name": "Win-back", "action": "save"}
    status, _ = await _post(stack, "/inbox/journeys/win-back", form, page="/inbox/journeys/win-back")
    assert status == 303
    status, _ = await _post(stack, "/inbox/journeys/signup-coupon", {}, page="/inbox/journeys")
    assert status == 303
    [coupon] = await stack.rows(select(Coupon))
    assert (coupon.kind, coupon.value, coupon.per_shopper_limit, coupon.code, coupon.source) == (
        "percent",
        10,
        1,
        None,
        "signup",
    )
    async with stack.sessions() as session:
        current = {}
        for key in ("welcome", "repeat-buyer", "win-back", "thank-you"):
            journey = await fetch_journey(session, key)
            assert journey is not None
            version = await session.get(JourneyVersion, journey.current_version_id)
            assert version is not None
            current[key] = (version.number, [s.get("coupon") for s in json.loads(version.definition)["steps"]])
    assert current["welcome"] == (2, [coupon.id])
    assert current["repeat-buyer"] == (2, [None, coupon.id])
    assert current["win-back"] == (2, [None])  # the owner's edit, kept
    assert current["thank-you"] == (1, [None, None])
    listed = await (await stack.client.get("/inbox/journeys?saved=coupon")).text()
    assert 'id="signup-coupon"' not in listed
    # It is the shop's sign-up coupon too: new members get their code with the bot's welcome.
    [shop] = await stack.rows(select(ShopInfo))
    assert shop.signup_coupon_id == coupon.id


async def test_the_playbook_added_later_carries_the_shops_sign_up_coupon(bot_stack: Stack) -> None:
    stack = bot_stack
    now = utcnow()
    async with stack.sessions() as session, session.begin():
        await add_user(session, "owner", PASSWORD, "owner", [PAGE_ID])
        coupon = Coupon(
            title="Welcome 50", kind="amount", value=50, per_shopper_limit=1, created_at=now, updated_at=now
        )
        session.add(coupon)
        await session.flush()
        await set_signup_coupon(session, coupon.id, now)
    assert (await sign_in(stack, "owner"))[0] == 303
    assert (await stack.client.get("/inbox/journeys")).status == 200  # first visit: the playbook, all off
    async with stack.sessions() as session:
        welcome = await fetch_journey(session, "welcome")
        assert welcome is not None and not welcome.enabled
        version = await session.get(JourneyVersion, welcome.current_version_id)
        assert version is not None
    assert [s.get("coupon") for s in json.loads(version.definition)["steps"]] == [coupon.id]


def test_every_reason_event_trigger_and_step_kind_has_words() -> None:
    words = (Path(__file__).resolve().parents[3] / "bot/web/templates/inbox/_journey_words.html").read_text()
    for enum in (ReasonCode, EventKind, TriggerKind, StepKind):
        for member in enum:
            assert f'"{member.value}": _(' in words, f"{enum.__name__}.{member.name} has no words"


def test_every_refusal_of_the_rules_has_words_in_both_languages() -> None:
    assert set(ERROR_TEXTS) == set(JourneyErrorCode)
    catalog = translations("zh_Hant")
    for msgid in (*ERROR_TEXTS.values(), KEY_TAKEN, KEY_WORDS, SIGNUP_COUPON_TITLE):
        assert catalog.ugettext(msgid) != msgid, msgid
