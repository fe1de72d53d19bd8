"""Meta's payloads → typed events: every webhook sample, batches, legacy shapes, and junk."""

from __future__ import annotations

import json

import pytest

from bot.inbound.events import (
    Channel,
    CommentEvent,
    CommentVerb,
    DeliveryEvent,
    IgnoredEvent,
    LiveVideoEvent,
    MessageEvent,
    PostbackEvent,
    ReactionEvent,
    ReadEvent,
    ReferralEvent,
    TestPingEvent,
)
from bot.inbound.payloads import parse_delivery
from tests.conftest import load_sample


def only(events: list) -> object:
    assert len(events) == 1, events
    return events[0]


def test_comment_add_by_the_page_itself() -> None:
    event = only(parse_delivery(load_sample("feed_comment_add.json")))
    assert isinstance(event, CommentEvent)
    assert event.verb is CommentVerb.ADD
    assert event.comment_id == "901097836652708_903438993085259"
    assert event.post_id == "1234567890321_901097836652708"
    assert event.author_id == "1234567890321" and event.author_name == "Tester"
    assert event.message == "and the next one"
    assert event.created_time == 1449135003
    assert not event.is_reply
    assert event.from_page  # from.id == page id: the loop guard must see it
    assert event.key == "comment:901097836652708_903438993085259:add"


def test_comment_reply_is_a_reply_by_a_shopper() -> None:
    event = only(parse_delivery(load_sample("feed_comment_reply.json")))
    assert isinstance(event, CommentEvent)
    assert event.is_reply
    assert event.parent_id == "139560936744456_139562213411528"
    assert event.author_id == "139560936744123"
    assert not event.from_page
    assert event.message == "Good"


def test_comment_edited_key_depends_on_the_new_text() -> None:
    event = only(parse_delivery(load_sample("feed_comment_edited.json")))
    assert isinstance(event, CommentEvent)
    assert event.verb is CommentVerb.EDITED
    assert event.message == "Great"
    other = json.loads(load_sample("feed_comment_edited.json"))
    other["entry"][0]["changes"][0]["value"]["message"] = "Great!!"
    edited_again = only(parse_delivery(json.dumps(other)))
    assert isinstance(edited_again, CommentEvent)
    assert edited_again.key != event.key
    assert edited_again.key.startswith("comment:139560936744456_139597043408045:edited:")


def test_comment_remove_has_no_message_or_time() -> None:
    event = only(parse_delivery(load_sample("feed_comment_remove.json")))
    assert isinstance(event, CommentEvent)
    assert event.verb is CommentVerb.REMOVE
    assert event.message is None and event.created_time is None
    assert event.comment_id == "905578656204626_905579239537901"


def test_reaction_on_a_comment_is_ignored_not_a_comment() -> None:
    event = only(parse_delivery(load_sample("feed_reaction_add_on_comment.json")))
    assert isinstance(event, IgnoredEvent)
    assert event.reason == "feed item not handled"
    assert event.detail == "reaction/add"


def test_live_video_status() -> None:
    event = only(parse_delivery(load_sample("live_videos_status_live.json")))
    assert event == LiveVideoEvent(
        page_id="25604775729", channel=Channel.FACEBOOK, video_id="10159868569485730", status="live"
    )


def test_messenger_text() -> None:
    event = only(parse_delivery(load_sample("messenger_text.json")))
    assert isinstance(event, MessageEvent)
    assert (event.page_id, event.sender_id, event.recipient_id) == (
        "1895382890692545",
        "1412611362105802",
        "1895382890692545",
    )
    assert event.text == "text" and event.mid == "mid.1486464322190:cb04e5a654"
    assert event.timestamp == 1486464322190
    assert event.psid == "1412611362105802"
    assert not event.is_echo and not event.from_page
    assert event.key == "mid:mid.1486464322190:cb04e5a654"


def test_messenger_echo_is_the_pages_own_and_keeps_app_id() -> None:
    event = only(parse_delivery(load_sample("messenger_echo.json")))
    assert isinstance(event, MessageEvent)
    assert event.is_echo and event.from_page
    assert event.app_id == "1821152484774199"  # a number in the payload, a string for us
    assert event.psid == "1244813222196986"  # the shopper is the recipient of an echo


def test_messenger_quick_reply() -> None:
    event = only(parse_delivery(load_sample("messenger_quick_reply.json")))
    assert isinstance(event, MessageEvent)
    assert event.quick_reply_payload == "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED"
    assert event.text == "Red"


def test_messenger_image_attachment() -> None:
    event = only(parse_delivery(load_sample("messenger_image_attachment.json")))
    assert isinstance(event, MessageEvent)
    assert event.text is None
    assert len(event.attachments) == 1 and event.attachments[0].type == "image"
    assert event.attachments[0].url is not None and event.attachments[0].url.startswith("https://scontent")


def test_messenger_postback() -> None:
    event = only(parse_delivery(load_sample("messenger_postback.json")))
    assert isinstance(event, PostbackEvent)
    assert event.payload == "USER_DEFINED_PAYLOAD" and event.referral is None
    assert event.key == "postback:1423587017700273:1491798782090:USER_DEFINED_PAYLOAD"


def test_messenger_referral_existing_thread() -> None:
    event = only(parse_delivery(load_sample("messenger_referral_mme_existing_thread.json")))
    assert isinstance(event, ReferralEvent)
    assert event.referral.ref == "aaaa" and event.referral.source == "SHORTLINK"
    assert event.referral.type == "OPEN_THREAD"


def test_get_started_postback_carries_the_referral() -> None:
    body = {
        "object": "page",
        "entry": [
            {
                "id": "1",
                "time": 1,
                "messaging": [
                    {
                        "sender": {"id": "7"},
                        "recipient": {"id": "1"},
                        "timestamp": 1700000000000,
                        "postback": {
                            "payload": "GET_STARTED",
                            "title": "Get Started",
                            "referral": {"ref": "friend42", "source": "SHORTLINK", "type": "OPEN_THREAD"},
                        },
                    }
                ],
            }
        ],
    }
    event = only(parse_delivery(json.dumps(body)))
    assert isinstance(event, PostbackEvent)
    assert event.referral is not None and event.referral.ref == "friend42"


def test_delivery_read_reaction_reply_to_and_standby() -> None:
    base = {"sender": {"id": "7"}, "recipient": {"id": "1"}, "timestamp": 1700000000500}
    items = [
        {**base, "delivery": {"watermark": 1700000000000, "mids": ["m1", "m2"]}},
        {**base, "read": {"watermark": 1700000000400}},
        {**base, "reaction": {"mid": "m1", "reaction": "love", "action": "react"}},
        {**base, "message": {"mid": "m9", "text": "this one", "reply_to": {"mid": "m1"}}},
    ]
    body = {"object": "page", "entry": [{"id": "1", "time": 1, "messaging": items[:3], "standby": items[3:]}]}
    delivery, read, reaction, reply = parse_delivery(json.dumps(body))
    assert isinstance(delivery, DeliveryEvent) and delivery.watermark == 1700000000000
    assert delivery.mids == ("m1", "m2")
    assert isinstance(read, ReadEvent) and read.watermark == 1700000000400
    assert isinstance(reaction, ReactionEvent) and reaction.reaction == "love" and reaction.mid == "m1"
    assert isinstance(reply, MessageEvent) and reply.reply_to_mid == "m1" and reply.standby
    assert not delivery.standby


def test_legacy_sender_fields_are_accepted() -> None:
    body = {
        "object": "page",
        "entry": [
            {
                "id": "1",
                "time": 1,
                "changes": [
                    {
                        "field": "feed",
                        "value": {
                            "item": "comment",
                            "verb": "add",
                            "comment_id": "2_3",
                            "post_id": "1_2",
                            "parent_id": "1_2",
                            "sender_id": 44,
                            "sender_name": "Old Style",
                            "created_time": 1449135003,
                            "message": "A+1",
                        },
                    }
                ],
            }
        ],
    }
    event = only(parse_delivery(json.dumps(body)))
    assert isinstance(event, CommentEvent)
    assert (event.author_id, event.author_name) == ("44", "Old Style")


def test_instagram_comment_and_message_get_their_channel() -> None:
    body = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841400000000000",
                "time": 1700000000,
                "changes": [
                    {
                        "field": "live_comments",
                        "value": {
                            "id": "18000000000000001",
                            "text": "A+1",
                            "from": {"id": "900", "username": "amy.hk"},
                            "media": {"id": "18100000000000000", "media_product_type": "LIVE"},
                        },
                    }
                ],
            },
            {
                "id": "17841400000000000",
                "time": 1700000000000,
                "messaging": [
                    {
                        "sender": {"id": "900"},
                        "recipient": {"id": "17841400000000000"},
                        "timestamp": 1700000000000,
                        "message": {"mid": "ig-mid-1", "text": "hi"},
                    }
                ],
            },
        ],
    }
    comment, message = parse_delivery(json.dumps(body))
    assert isinstance(comment, CommentEvent) and comment.channel is Channel.INSTAGRAM
    assert comment.post_id == "18100000000000000" and comment.author_name == "amy.hk"
    assert comment.message == "A+1" and not comment.is_reply
    assert isinstance(message, MessageEvent) and message.channel is Channel.INSTAGRAM


def test_dashboard_test_ping_is_recognised() -> None:
    body = {"object": "page", "entry": [{"id": "0", "time": 1, "changes": [{"field": "messages", "value": {}}]}]}
    event = only(parse_delivery(json.dumps(body)))
    assert isinstance(event, TestPingEvent) and event.field_name == "messages"


def test_a_batch_keeps_every_item_in_order() -> None:
    changes = [
        {
            "field": "feed",
            "value": {
                "item": "comment",
                "verb": "add",
                "comment_id": f"2_{i}",
                "post_id": "1_2",
                "parent_id": "1_2",
                "from": {"id": str(100 + i)},
                "created_time": 1700000000,
                "message": f"A+{i}",
            },
        }
        for i in range(1000)
    ]
    events = parse_delivery(json.dumps({"object": "page", "entry": [{"id": "1", "time": 1, "changes": changes}]}))
    assert [e.comment_id for e in events] == [f"2_{i}" for i in range(1000)]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b'{"object": "whatsapp_business_account", "entry": []}', "unknown object"),
        (b'{"object": "page"}', "delivery has no entries"),
        (b'{"object": "page", "entry": [7]}', "entry is not an object"),
        (b'{"object": "page", "entry": [{"time": 1, "changes": []}]}', "entry has no id"),
        (b'{"object": "page", "entry": [{"id": "1"}]}', "entry has no changes or messaging"),
        (
            b'{"object": "page", "entry": [{"id": "1", "changes": [{"field": "ratings", "value": {}}]}]}',
            "unknown field",
        ),
        (
            b'{"object": "page", "entry": [{"id": "1", "changes": [{"field": "feed", "value": {"item": "comment",'
            b' "verb": "pin", "comment_id": "1_2", "post_id": "1_3"}}]}]}',
            "comment verb not handled",
        ),
        (
            b'{"object": "page", "entry": [{"id": "1", "changes": [{"field": "feed", "value": {"item": "comment",'
            b' "verb": "add", "post_id": "1_3"}}]}]}',
            "comment without comment_id or post_id",
        ),
        (
            b'{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"}, "recipient": {"id": "1"},'
            b' "timestamp": 99999999999999999999, "message": {"mid": "m"}}]}]}',
            "messaging item without sender, recipient or time",
        ),
        (
            b'{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"}, "recipient": {"id": "1"},'
            b' "timestamp": 5, "message": {"text": "no mid"}}]}]}',
            "message without mid",
        ),
        (
            b'{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": {"id": "2"}, "recipient": {"id": "1"},'
            b' "timestamp": 5, "optin": {"ref": "x"}}]}]}',
            "messaging kind not handled",
        ),
        (
            b'{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": {"id": [1]}, "recipient": {"id": "1"},'
            b' "timestamp": 5, "message": {"mid": "m"}}]}]}',
            "messaging item without sender, recipient or time",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "body is not JSON"),
    ],
)
def test_junk_becomes_an_ignored_event_with_a_reason(body: bytes, reason: str) -> None:
    event = only(parse_delivery(body))
    assert isinstance(event, IgnoredEvent)
    assert event.reason == reason


def test_one_bad_item_does_not_spoil_the_batch() -> None:
    good = {
        "field": "feed",
        "value": {
            "item": "comment",
            "verb": "add",
            "comment_id": "2_3",
            "post_id": "1_2",
            "from": {"id": "5"},
            "message": "B+1",
            "created_time": 1700000000,
        },
    }
    body = {"object": "page", "entry": [{"id": "1", "changes": ["junk", {"field": "feed", "value": None}, good]}]}
    events = parse_delivery(json.dumps(body))
    assert [type(e).__name__ for e in events] == ["IgnoredEvent", "IgnoredEvent", "CommentEvent"]
