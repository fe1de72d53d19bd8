"""The emulator's memory kept in a file (the demo inside `plusone serve`): a restart forgets nothing Meta keeps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp

from tests.conftest import PAGE_ID
from tests.test_bot.test_emulator.conftest import HOUR, StartEmulator, graph, send


async def test_a_restarted_emulator_keeps_windows_comments_and_subscriptions(
    start_emulator: StartEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    state_file = tmp_path / "data" / "emulator-state.json"
    first = await start_emulator(state_file=state_file)
    await first.open_window(PAGE_ID, "7201", at=time.time() - HOUR)  # 23 hours of the window left
    await first.register_comment(PAGE_ID, "2000000000001_7", author_id="7202")
    status, _ = await send(http, first, {"comment_id": "2000000000001_7"})
    assert status == 200
    form = {"subscribed_fields": "feed,messages"}
    assert (await graph(http, first, "POST", f"{PAGE_ID}/subscribed_apps", form=form))[1] == {"success": True}
    await first.stop()  # Ctrl-C

    second = await start_emulator(state_file=state_file)  # `make run` again

    status, body = await send(http, second, {"id": "7201"}, messaging_type="RESPONSE")
    assert status == 200, body  # the window is still open
    status, body = await send(http, second, {"comment_id": "2000000000001_7"})
    assert status == 400, "one private reply per comment, across the restart"
    assert [c["id"] for c in (await second.comments())["comments"]] == ["2000000000001_7"]
    _, subscribed = await graph(http, second, "GET", f"{PAGE_ID}/subscribed_apps")
    assert [app["subscribed_fields"] for app in subscribed["data"]] == [["feed", "messages"]]
    saved = json.loads(state_file.read_text())
    assert saved["activity"][0][:2] == [PAGE_ID, "7201"]


async def test_an_unreadable_state_file_is_set_aside_and_the_emulator_starts_fresh(
    start_emulator: StartEmulator, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    state_file = tmp_path / "emulator-state.json"
    state_file.write_text("{not json")

    emulator = await start_emulator(state_file=state_file)

    status, _ = await send(http, emulator, {"id": "7301"}, messaging_type="RESPONSE")
    assert status == 400  # no window: nothing was restored
    assert (tmp_path / "emulator-state.json.unreadable").read_text() == "{not json"
    await emulator.stop()
    assert json.loads(state_file.read_text())["version"] == 1  # written afresh at stop
