"""The control routes refuse bad input with 400 and a reason.

Each test starts a real emulator on a free port (fixtures in conftest.py).
"""

from __future__ import annotations

from typing import Any

from tests.conftest import PAGE_ID


async def test_bad_control_input_is_400_with_a_reason(emulator, http) -> None:
    bad: list[tuple[str, str, Any]] = [
        ("POST", "faults", {"kind": "meteor"}),
        ("POST", "faults", {"kind": "timeout", "next": 0}),
        ("POST", "faults", {"kind": "timeout", "next": 1, "share": 0.5}),
        ("POST", "faults", {"kind": "timeout", "share": 2}),
        ("POST", "faults", {"kind": "server_error", "status": 418}),
        ("POST", "faults", ["not", "an", "object"]),
        ("POST", "activity", {"page_id": "404", "psid": "1"}),
        ("POST", "activity", {"page_id": PAGE_ID}),
        ("POST", "activity", {"page_id": PAGE_ID, "psid": "1", "at": "yesterday"}),
        ("POST", "block", {"page_id": PAGE_ID, "psid": "1", "blocked": "yes"}),
        ("POST", "clock", {"offset_s": "a lot"}),
        ("POST", "comments", {"page_id": PAGE_ID}),
        ("POST", "comments", {"page_id": PAGE_ID, "comment_id": "1_2", "created_time": "last week"}),
        ("POST", "unsubscribe", {}),
        ("POST", "webhooks/comment", {"page_id": PAGE_ID, "post_id": "1", "user_id": "2"}),
        ("POST", "webhooks/message", {"page_id": PAGE_ID, "psid": "2", "text": 5}),
        ("POST", "webhooks/raw", {"payload": "nope"}),
    ]
    for method, path, body in bad:
        async with http.request(method, f"{emulator.base_url}_emulator/{path}", json=body) as resp:
            answer = await resp.json()
            assert resp.status == 400 and answer["error"], (path, body, answer)
    async with http.post(f"{emulator.base_url}_emulator/clock", data=b"{oops") as resp:
        assert resp.status == 400
    async with http.get(f"{emulator.base_url}_emulator/nothing-here") as resp:
        assert resp.status == 404
