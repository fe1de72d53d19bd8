"""Comments: one private reply per comment within 7 days (visitor posts too), public replies and hiding.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

import asyncio
import time

from tests.conftest import PAGE_ID
from tests.test_bot.test_emulator.conftest import DAY, OTHER_PAGE_ID, OTHER_TOKEN, error_of, graph, send

# --- private replies ----------------------------------------------------------------------------------------


async def test_one_private_reply_per_comment(emulator, http, receiver) -> None:
    played = await emulator.deliver_comment(PAGE_ID, "2000000000001", "3000000000001", "A+1")
    comment_id = played["comment_id"]
    status, body = await send(http, emulator, {"comment_id": comment_id})
    assert status == 200 and body["recipient_id"] == "3000000000001" and body["message_id"].startswith("m_")

    status, body = await send(http, emulator, {"comment_id": comment_id})
    assert status == 400 and error_of(body) == (10900, None)  # Meta's refusal: the first reply got there
    assert body["error"]["message"] == "(#10900) Activity already replied to"

    # Two workers racing on a fresh comment: exactly one reply leaves.
    await emulator.register_comment(PAGE_ID, "2000000000001_99", author_id="3000000000002")
    results = await asyncio.gather(*(send(http, emulator, {"comment_id": "2000000000001_99"}) for _ in range(2)))
    assert sorted(status for status, _ in results) == [200, 400]

    # The comment alone does not open the 24-hour window.
    status, body = await send(http, emulator, {"id": "3000000000001"})
    assert status == 400 and error_of(body) == (10, 2018278)


async def test_private_reply_refuses_unknown_or_foreign_comments(emulator, http) -> None:
    status, body = await send(http, emulator, {"comment_id": "123_456"})
    assert status == 400 and error_of(body) == (100, 2018292)
    assert body["error"]["message"] == "(#100) Invalid comment_id parameter"
    await emulator.register_comment(OTHER_PAGE_ID, "777_888", author_id="3000000000003")
    status, body = await send(http, emulator, {"comment_id": "777_888"})
    assert error_of(body) == (100, 2018292), "a comment on another Page"


async def test_private_reply_only_within_7_days_of_the_comment(emulator, http) -> None:
    now = time.time()
    await emulator.register_comment(PAGE_ID, "1_old", author_id="u1", created_time=now - 7 * DAY - 60)
    await emulator.register_comment(PAGE_ID, "1_recent", author_id="u2", created_time=now - 7 * DAY + 120)
    status, body = await send(http, emulator, {"comment_id": "1_old"})
    assert status == 400 and error_of(body) == (10, 2018278)
    status, _ = await send(http, emulator, {"comment_id": "1_recent"})
    assert status == 200, "private replies need no 24-hour window, only the comment's 7 days"

    await emulator.register_comment(PAGE_ID, "1_now", author_id="u3")
    await emulator.set_clock_offset(7 * DAY + 60)
    assert error_of((await send(http, emulator, {"comment_id": "1_now"}))[1]) == (10, 2018278)


async def test_private_reply_to_a_visitor_post(emulator, http) -> None:
    await emulator.register_post(PAGE_ID, f"{PAGE_ID}_555", author_id="3000000000009")
    status, body = await send(http, emulator, {"post_id": f"{PAGE_ID}_555"})
    assert status == 200 and body["recipient_id"] == "3000000000009"
    assert error_of((await send(http, emulator, {"post_id": f"{PAGE_ID}_555"}))[1]) == (10900, None)
    assert error_of((await send(http, emulator, {"post_id": "nope"}))[1]) == (100, 2018292)


# --- public replies and hiding -----------------------------------------------------------------------------


async def test_public_reply_and_hide(emulator, http) -> None:
    await emulator.register_comment(PAGE_ID, "901097836652708_903438993085259", author_id="3000000000001")
    path = "901097836652708_903438993085259"
    status, first = await graph(http, emulator, "POST", f"{path}/comments", form={"message": "Thanks, see DM!"})
    assert status == 200 and set(first) == {"id"} and first["id"].startswith("901097836652708_")
    _, second = await graph(http, emulator, "POST", f"{path}/comments", form={"message": "Thanks, see DM!"})
    assert second["id"] != first["id"], "not idempotent, like Meta"

    status, body = await graph(http, emulator, "POST", path, form={"is_hidden": "true"})
    assert (status, body) == (200, {"success": True})
    state = {c["id"]: c for c in (await emulator.comments())["comments"]}
    assert state[path]["is_hidden"] is True and state[path]["replies"] == [first["id"], second["id"]]
    assert (await graph(http, emulator, "POST", path, form={"is_hidden": "false"}))[1] == {"success": True}
    assert not {c["id"]: c for c in (await emulator.comments())["comments"]}[path]["is_hidden"]

    status, body = await graph(http, emulator, "POST", path, form={"is_hidden": "maybe"})
    assert status == 400 and error_of(body) == (100, None)
    status, body = await graph(http, emulator, "POST", f"{path}/comments", form={})
    assert status == 400 and error_of(body) == (100, None)
    for unknown in ("1_2/comments", "1_2"):
        form = {"message": "hi", "is_hidden": "true"}
        status, body = await graph(http, emulator, "POST", unknown, form=form)
        assert status == 400 and error_of(body) == (100, 33), unknown
    status, body = await graph(http, emulator, "POST", path, form={"is_hidden": "true"}, token=OTHER_TOKEN)
    assert status == 400 and error_of(body) == (190, None), "the token of the Page owning the comment"
