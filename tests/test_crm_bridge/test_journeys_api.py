"""The journeys admin API on the running bot: create, edit (versions), enable, runs with history, a member's
runs and opt-out; a journey that loops, waits for ever or sends an unapproved template is a 400 naming the
step, and nothing is stored."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import func, select

from bot.runtime.clock import utcnow
from bot.store.tables import MessageTemplate
from crm_bridge.journey_tables import Journey, JourneyVersion
from crm_bridge.members import fetch_or_create_member
from crm_bridge.tables import Member
from tests.conftest import ADMIN_TOKEN, PAGE_ID
from tests.test_bot.stack import Stack
from tests.test_crm_bridge.test_journeys_story import pays, wait_entered

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
THANKS: dict[str, Any] = {
    "trigger": {"kind": "first_order_paid"},
    "steps": [
        {"id": "wait", "kind": "wait", "days": 3},
        {"id": "thanks", "kind": "send", "text": {"en": "Thanks {name}!", "zh_Hant": "多謝 {name}！"}},
    ],
}


async def _count(stack: Stack, model: Any) -> int:
    async with stack.sessions() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_journeys_api_saves_versions_and_refuses_bad_definitions(bot_stack: Stack) -> None:
    stack, client = bot_stack, bot_stack.client
    assert (await client.get("/api/journeys")).status == 401
    created = await client.put("/api/journeys/thanks", headers=ADMIN, json={"name": "Thank you", "definition": THANKS})
    assert created.status == 201, await created.text()
    journey = (await created.json())["journey"]
    assert (journey["version"], journey["enabled"], journey["definition"]["steps"][0]["days"]) == (1, False, 3)
    same = await client.put("/api/journeys/thanks", headers=ADMIN, json={"name": "Thank you", "definition": THANKS})
    assert same.status == 200 and (await same.json())["journey"]["version"] == 1
    edited = copy.deepcopy(THANKS)
    edited["steps"][0]["days"] = 2
    second = await client.put("/api/journeys/thanks", headers=ADMIN, json={"name": "Thank you", "definition": edited})
    assert [v["number"] for v in (await second.json())["journey"]["versions"]] == [1, 2]

    async with stack.sessions() as session, session.begin():
        session.add(
            MessageTemplate(
                page_id=PAGE_ID, name="order_shipped", language="en", body="Shipped {{1}}",
                fields="[]", status="approved", created_at=utcnow(),
            )
        )  # fmt: skip
    update = {"id": "u", "kind": "send", "text": {"en": "On its way"}, "update": True}
    bad = {
        "loops": ([{"id": "a", "kind": "branch", "if": {"tag": "x"}, "else": "a"}, THANKS["steps"][1]], "a", "else"),
        "waits_forever": ([{"id": "w", "kind": "wait", "days": 366}, THANKS["steps"][1]], "w", "days"),
        "unapproved_template": ([dict(update, template="flash_sale")], "u", "template"),
        "no_steps": ([], None, "steps"),
    }
    for code, (steps, step, field) in bad.items():
        for key in ("thanks", "fresh"):
            body = {"name": "X", "definition": {"trigger": {"kind": "order_shipped"}, "steps": steps}}
            response = await client.put(f"/api/journeys/{key}", headers=ADMIN, json=body)
            answer = await response.json()
            assert (response.status, answer["code"], answer["step"], answer["field"]) == (400, code, step, field)
            assert answer["error"]
    shipped = {"trigger": {"kind": "order_shipped"}, "steps": [dict(update, template="order_shipped")]}
    ok = await client.put("/api/journeys/shipped", headers=ADMIN, json={"name": "Shipped", "definition": shipped})
    assert ok.status == 201, await ok.text()
    assert await _count(stack, Journey) == 2 and await _count(stack, JourneyVersion) == 3
    for body in ({"name": " ", "definition": THANKS}, {"name": "X", "definition": THANKS, "colour": 1}):
        assert (await client.put("/api/journeys/other", headers=ADMIN, json=body)).status == 400
    assert (
        await client.put("/api/journeys/Bad Key", headers=ADMIN, json={"name": "X", "definition": THANKS})
    ).status == 400
    assert await _count(stack, Journey) == 2

    on = await client.post("/api/journeys/thanks/enable", headers=ADMIN)
    assert (await on.json())["journey"]["enabled"] is True
    assert (await client.post("/api/journeys/nope/enable", headers=ADMIN)).status == 404
    listed = (await (await client.get("/api/journeys", headers=ADMIN)).json())["journeys"]
    assert {(j["key"], j["enabled"], j["version"]) for j in listed} == {("thanks", True, 2), ("shipped", False, 1)}
    runs = await client.get("/api/journeys/thanks/runs", headers=ADMIN)
    assert (await runs.json()) == {"runs": []}
    # A first order paid: the member enters and waits; the API shows the run with its history.
    await pays(stack, "3000000000702", "150")
    await wait_entered(stack, "3000000000702")
    [run] = (await (await client.get("/api/journeys/thanks/runs", headers=ADMIN)).json())["runs"]
    assert (run["version"], run["status"], run["step_index"], run["messages"]) == (2, "waiting", 0, [])
    assert [(e["kind"], e["code"]) for e in run["history"]] == [("entered", "first_order_paid")]
    mine = await (await client.get(f"/api/members/{run['member_id']}/journeys", headers=ADMIN)).json()
    assert [r["id"] for r in mine["runs"]] == [run["id"]]


async def test_opt_out_and_in_through_the_api(bot_stack: Stack) -> None:
    stack, client = bot_stack, bot_stack.client
    async with stack.sessions() as session, session.begin():
        member, _ = await fetch_or_create_member(session, PAGE_ID, "3000000000701", now=utcnow())
    out = await client.post(f"/api/members/{member.id}/opt-out", headers=ADMIN)
    body = await out.json()
    assert (out.status, body["opted_out"], body["opt_out_source"], body["changed"]) == (200, True, "api", True)
    async with stack.sessions() as session:
        row = await session.get(Member, member.id)
        assert row is not None and row.marketing_opt_out_at is not None
    again = await (await client.post(f"/api/members/{member.id}/opt-in", headers=ADMIN)).json()
    assert (again["opted_out"], again["changed"]) == (False, True)
    assert (await client.post("/api/members/999999/opt-out", headers=ADMIN)).status == 404
    assert (await client.post("/api/members/abc/opt-out", headers=ADMIN)).status == 404
    assert (await (await client.get(f"/api/members/{member.id}/journeys", headers=ADMIN)).json()) == {"runs": []}
