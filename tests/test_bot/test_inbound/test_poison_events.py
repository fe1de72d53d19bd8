"""One poison event fails alone: the events beside it in the same delivery are applied, text that no UTF-8
encoder can write is stored with replacement characters, and the dead letters still show."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.inbound import webhook_factory as wf
from bot.inbound.events import EventKind, MessageEvent
from bot.inbound.router import Router
from bot.store.conversations import BOT_METADATA_PREFIX
from bot.store.tables import CommentLog, Message
from tests.conftest import PAGE_ID, wait_until
from tests.test_bot.test_inbound.test_worker import ADMIN, drained, post, rows, start

SHOPPER = "3000000000042"


def _before_and_after(poison: dict[str, Any]) -> dict[str, Any]:
    before = wf.message_item(page_id=PAGE_ID, psid=SHOPPER, text="before", mid="m-before")
    after = wf.message_item(page_id=PAGE_ID, psid=SHOPPER, text="after", mid="m-after")
    return wf.messaging_delivery(PAGE_ID, [before, poison, after])


POISON = {
    "lone surrogate in a message": (
        wf.message_item(page_id=PAGE_ID, psid=SHOPPER, text="A+1 \ud83d", mid="m-bad"),
        "A+1 \ufffd",
    ),
    "outbox id of 21 digits in an echo": (
        wf.message_item(
            page_id=PAGE_ID,
            psid=SHOPPER,
            text="echo",
            mid="m-echo",
            echo=True,
            metadata=f"{BOT_METADATA_PREFIX}outbox:{'9' * 21}",
        ),
        "echo",
    ),
}


@pytest.mark.parametrize("case", list(POISON))
async def test_a_poison_message_is_stored_and_the_rest_of_its_delivery_too(aiohttp_client, settings, case) -> None:  # type: ignore[no-untyped-def]
    client = await start(aiohttp_client, settings)
    poison, stored_as = POISON[case]
    await post(client, _before_and_after(poison))
    await wait_until(lambda: drained(client), what="stream drained")
    assert await rows(client, select(Message.text).order_by(Message.id)) == ["before", stored_as, "after"]
    letters = await (await client.get("/api/dead-letters", headers=ADMIN)).json()
    assert letters["dead_letters"] == []


async def test_a_lone_surrogate_in_a_commenters_name_and_comment(aiohttp_client, settings) -> None:  # type: ignore[no-untyped-def]
    client = await start(aiohttp_client, settings)
    bad = wf.comment_change(
        page_id=PAGE_ID, post_id="55", message="A+1 \ud800", user_id="42", user_name="Ann \ud83d", comment_id="55_bad"
    )
    good = wf.comment_change(page_id=PAGE_ID, post_id="55", message="A+1", user_id="43", comment_id="55_good")
    await post(client, wf.page_delivery([{"id": PAGE_ID, "time": 1, "changes": [bad, good]}]))
    await wait_until(lambda: drained(client), what="stream drained")
    logged = await rows(client, select(CommentLog).order_by(CommentLog.id))
    assert [(c.comment_id, c.author_name, c.message) for c in logged] == [
        ("55_bad", "Ann \ufffd", "A+1 \ufffd"),
        ("55_good", "Shopper", "A+1"),
    ]


async def test_a_failing_event_fails_alone_and_its_dead_letter_shows(aiohttp_client, settings) -> None:  # type: ignore[no-untyped-def]
    router = Router()
    handled: list[str | None] = []

    @router.on(EventKind.MESSAGE)
    async def fragile(event: MessageEvent, ctx) -> None:  # type: ignore[no-untyped-def]
        if event.text and event.text.startswith("poison"):
            raise RuntimeError("cannot handle poison")
        handled.append(event.text)

    client = await start(aiohttp_client, settings, router)
    poison = wf.message_item(page_id=PAGE_ID, psid=SHOPPER, text="poison \ud83d", mid="m-poison")
    await post(client, _before_and_after(poison))

    async def dead_lettered() -> bool:
        resp = await client.get("/api/dead-letters", headers=ADMIN)
        return resp.status == 200 and len((await resp.json())["dead_letters"]) == 1

    await wait_until(dead_lettered, what="dead letter")
    assert handled == ["before", "after"]  # the event after the poison went on, once
    assert await rows(client, select(Message.text).order_by(Message.id)) == ["before", "after"]
    letter = (await (await client.get("/api/dead-letters", headers=ADMIN)).json())["dead_letters"][0]
    assert "mid:m-poison" in letter["error"] and "cannot handle poison" in letter["error"]
    assert "mid:m-after" not in letter["error"]
