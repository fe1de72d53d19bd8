"""The segments admin API on the running bot: create, count, preview, edit, delete; bad input names the
field and changes nothing; tags by hand; the shop's lapse threshold."""

from __future__ import annotations

from sqlalchemy import select

from bot.runtime.clock import utcnow
from crm_bridge.members import fetch_or_create_member
from crm_bridge.segment_tables import MemberTag, RfmCuts, SavedSegment, SegmentMember
from crm_bridge.segments import refresh_figures
from tests.conftest import ADMIN_TOKEN, PAGE_ID
from tests.test_bot.stack import Stack

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VIP = {"match": [{"field": "tags", "op": "any", "value": ["VIP"]}], "exclude": []}


async def test_segments_api_saves_counts_and_refuses_bad_input(bot_stack: Stack) -> None:
    stack = bot_stack
    async with stack.sessions() as session, session.begin():
        ids = []
        for psid in ("3000000000901", "3000000000902"):
            member, _ = await fetch_or_create_member(session, PAGE_ID, psid, name=psid, now=utcnow())
            ids.append(member.id)
        await refresh_figures(session, utcnow())
    client = stack.client
    # a tag by hand, then a segment of the tagged
    nul = await client.post(f"/api/members/{ids[0]}/tags", headers=ADMIN, json={"tag": "VIP\u0000"})
    assert (nul.status, (await nul.json())["field"]) == (400, "tag")  # PostgreSQL's text cannot hold it
    assert (await client.delete(f"/api/members/{ids[0]}/tags/VIP%00", headers=ADMIN)).status == 404
    added = await client.post(f"/api/members/{ids[0]}/tags", headers=ADMIN, json={"tag": " VIP "})
    assert added.status == 201 and [t["tag"] for t in (await added.json())["tags"]] == ["VIP"]
    created = await client.post("/api/segments", headers=ADMIN, json={"name": "VIPs", "definition": VIP})
    assert created.status == 201, await created.text()
    segment = (await created.json())["segment"]
    assert (segment["count"], [m["id"] for m in segment["preview"]]) == (1, [ids[0]])
    # bad input: each refused with the field named, nothing saved
    bad = {
        "unknown field": (
            {"name": "X", "definition": {"match": [{"field": "colour", "op": "in", "value": ["r"]}]}},
            400,
            "definition.match[0].field",
        ),
        "score out of 1-5": (
            {"name": "X", "definition": {"match": [{"field": "r_score", "op": "min", "value": 9}]}},
            400,
            "definition.match[0].value",
        ),
        "empty name": ({"name": " ", "definition": VIP}, 400, "name"),
        "duplicate name": ({"name": "vips", "definition": VIP}, 409, "name"),
        "unknown tier": (
            {"name": "X", "definition": {"match": [{"field": "tier", "op": "in", "value": ["platinum"]}]}},
            400,
            "definition.match[0].value[0]",
        ),
    }
    for what, (body, status, field) in bad.items():
        response = await client.post("/api/segments", headers=ADMIN, json=body)
        answer = await response.json()
        assert (response.status, answer.get("field")) == (status, field), what
        assert answer["error"].startswith(field), what
    assert len(await stack.rows(select(SavedSegment))) == 1
    # an edit keeps the id; excluding the tag empties it; the preview saves nothing
    wider = {"match": [], "exclude": [{"field": "tags", "op": "any", "value": ["VIP"]}]}
    previewed = await (await client.post("/api/segments/preview", headers=ADMIN, json={"definition": wider})).json()
    assert previewed["count"] == 1  # two members, the VIP excluded
    edited = await client.put(
        f"/api/segments/{segment['id']}", headers=ADMIN, json={"name": "Not VIP", "definition": wider}
    )
    assert edited.status == 200 and (await edited.json())["segment"]["count"] == 1
    # a tag by hand puts a member in a segment at once (entered: the snapshot journeys read)
    again = await client.post(f"/api/members/{ids[1]}/tags", headers=ADMIN, json={"tag": "VIP"})
    assert again.status == 201
    # (member 1 only: the stack's daily pass may have taken its snapshot of member 0 meanwhile)
    second = select(SegmentMember).where(SegmentMember.member_id == ids[1])
    assert await stack.rows(second) == []  # the segment is "Not VIP" now
    assert (await client.delete(f"/api/members/{ids[1]}/tags/VIP", headers=ADMIN)).status == 200
    assert [m.segment_id for m in await stack.rows(second)] == [segment["id"]]
    listed = await (await client.get("/api/segments", headers=ADMIN)).json()
    assert [(s["name"], s["count"]) for s in listed["segments"]] == [("Not VIP", 1)]
    # the lapse threshold: the shop's own, or derived again
    assert (await client.put("/api/segments/settings", headers=ADMIN, json={"lapse_days": 1})).status == 400
    set_ = await client.put("/api/segments/settings", headers=ADMIN, json={"lapse_days": 45})
    assert (await set_.json())["lapse_days"] == 45 and (await set_.json())["lapse_source"] == "shop"
    back = await (await client.put("/api/segments/settings", headers=ADMIN, json={"lapse_days": None})).json()
    assert (back["lapse_source"], back["lapse_days"]) == ("default", 90)
    assert (await stack.rows(select(RfmCuts)))[0].shop_lapse_days is None
    # untag, delete; no token, no answer
    assert (await client.delete(f"/api/members/{ids[0]}/tags/VIP", headers=ADMIN)).status == 200
    assert await stack.rows(select(MemberTag)) == []
    assert (await client.delete(f"/api/segments/{segment['id']}", headers=ADMIN)).status == 200
    assert (await client.delete(f"/api/segments/{segment['id']}", headers=ADMIN)).status == 404
    assert (await client.get("/api/segments")).status == 401
