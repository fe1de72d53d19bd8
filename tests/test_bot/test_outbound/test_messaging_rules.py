"""Meta's messaging rules, decided before sending: a table of cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.outbound.graph import GraphErrorClass, classify_graph_error, parse_usage_headers
from bot.outbound.messaging_rules import (
    Author,
    RefusalCode,
    decide_instagram_private_reply,
    decide_message,
    decide_order_update,
    decide_private_reply,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("last_user", "author", "tag", "allowed", "messaging_type", "sent_tag", "refusal"),
    [
        (NOW - 5 * M, Author.BOT, None, True, "RESPONSE", None, None),
        (NOW - 23 * H - 59 * M, Author.BOT, None, True, "RESPONSE", None, None),  # 23h59: inside
        (NOW - 24 * H - M, Author.BOT, None, False, None, None, RefusalCode.OUTSIDE_WINDOW),  # 24h01
        (NOW - 23 * H - 59 * M, Author.AGENT, None, True, "RESPONSE", None, None),
        (NOW - 24 * H - M, Author.AGENT, None, True, "MESSAGE_TAG", "HUMAN_AGENT", None),
        (NOW - 6 * 24 * H, Author.AGENT, None, True, "MESSAGE_TAG", "HUMAN_AGENT", None),
        (NOW - 7 * 24 * H - M, Author.AGENT, None, False, None, None, RefusalCode.OUTSIDE_HUMAN_WINDOW),
        (None, Author.BOT, None, False, None, None, RefusalCode.NO_WINDOW),
        (None, Author.AGENT, None, False, None, None, RefusalCode.NO_WINDOW),
        (NOW - M, Author.BOT, "POST_PURCHASE_UPDATE", False, None, None, RefusalCode.RETIRED_TAG),
        (NOW - M, Author.AGENT, "ACCOUNT_UPDATE", False, None, None, RefusalCode.RETIRED_TAG),
        (NOW - M, Author.BOT, "CONFIRMED_EVENT_UPDATE", False, None, None, RefusalCode.RETIRED_TAG),
        (NOW - 30 * H, Author.BOT, "HUMAN_AGENT", False, None, None, RefusalCode.BOT_CANNOT_USE_TAG),
    ],
)
def test_decide_message(last_user, author, tag, allowed, messaging_type, sent_tag, refusal) -> None:  # type: ignore[no-untyped-def]
    decision = decide_message(NOW, last_user, author, tag, human_agent=True)
    assert (decision.allowed, decision.messaging_type, decision.tag, decision.refusal) == (
        allowed,
        messaging_type,
        sent_tag,
        refusal,
    )
    assert decision.allowed or decision.reason  # every refusal says why


def test_without_the_human_agent_permission_a_person_cannot_answer_after_24_hours() -> None:
    for hours_ago in (24 * H + M, 6 * 24 * H):
        decision = decide_message(NOW, NOW - hours_ago, Author.AGENT)
        assert (decision.allowed, decision.tag, decision.refusal) == (False, None, RefusalCode.NO_HUMAN_AGENT)
        assert "Human Agent permission" in decision.reason and "utility template" in decision.reason
    inside = decide_message(NOW, NOW - 23 * H, Author.AGENT)
    assert (inside.allowed, inside.messaging_type) == (True, "RESPONSE"), "inside 24 hours nothing changes"


def test_a_bot_is_never_given_the_human_agent_tag() -> None:
    for hours in range(0, 24 * 8, 3):
        decision = decide_message(NOW, NOW - hours * H, Author.BOT)
        assert decision.tag is None


@pytest.mark.parametrize(
    ("age", "already", "allowed", "refusal"),
    [
        (timedelta(minutes=1), False, True, None),
        (timedelta(days=6, hours=23), False, True, None),
        (timedelta(days=7, minutes=1), False, False, RefusalCode.PRIVATE_REPLY_EXPIRED),
        (timedelta(minutes=1), True, False, RefusalCode.PRIVATE_REPLY_USED),
    ],
)
def test_decide_private_reply(age: timedelta, already: bool, allowed: bool, refusal: RefusalCode | None) -> None:
    decision = decide_private_reply(NOW, NOW - age, already)
    assert (decision.allowed, decision.refusal) == (allowed, refusal)


@pytest.mark.parametrize(
    ("code", "subcode", "status", "expected"),
    [
        (1, None, 500, GraphErrorClass.RETRY_LATER),
        (2, None, 500, GraphErrorClass.RETRY_LATER),
        (4, None, 400, GraphErrorClass.THROTTLED),
        (17, None, 400, GraphErrorClass.THROTTLED),
        (32, None, 400, GraphErrorClass.THROTTLED),
        (613, None, 400, GraphErrorClass.THROTTLED),
        (None, None, 502, GraphErrorClass.RETRY_LATER),
        (None, None, None, GraphErrorClass.RETRY_LATER),  # timeout / connection reset
        (10, 2018278, 400, GraphErrorClass.OUTSIDE_WINDOW),
        (10, 2018065, 400, GraphErrorClass.OUTSIDE_WINDOW),
        (10, 2534022, 400, GraphErrorClass.OUTSIDE_WINDOW),  # Instagram's
        (551, 1545041, 400, GraphErrorClass.UNAVAILABLE),
        (551, None, 400, GraphErrorClass.UNAVAILABLE),
        (10, 2018108, 400, GraphErrorClass.UNAVAILABLE),
        (190, None, 400, GraphErrorClass.BAD_TOKEN),
        (190, 463, 400, GraphErrorClass.BAD_TOKEN),
        (10, None, 400, GraphErrorClass.PERMISSION),
        (10, 1893063, 400, GraphErrorClass.PAGE_RESTRICTED),  # Page temporarily restricted from sending
        (368, None, 400, GraphErrorClass.PAGE_RESTRICTED),  # deemed abusive: not a passing fault
        (368, 1390008, 400, GraphErrorClass.PAGE_RESTRICTED),
        (80006, None, 400, GraphErrorClass.THROTTLED),  # Messenger's business use case throttle
        (80000, None, 400, GraphErrorClass.THROTTLED),
        (80014, None, 400, GraphErrorClass.THROTTLED),
        (80015, None, 400, GraphErrorClass.INVALID_REQUEST),  # past Meta's documented range
        (None, None, 429, GraphErrorClass.THROTTLED),
        (10900, None, 400, GraphErrorClass.ALREADY_SENT),  # Activity already replied to
        (200, 2018028, 400, GraphErrorClass.PERMISSION),
        (230, None, 400, GraphErrorClass.PERMISSION),
        (100, None, 400, GraphErrorClass.INVALID_REQUEST),
        (100, 2018292, 400, GraphErrorClass.INVALID_REQUEST),
        (None, None, 404, GraphErrorClass.INVALID_REQUEST),
    ],
)
def test_classify_graph_error(
    code: int | None, subcode: int | None, status: int | None, expected: GraphErrorClass
) -> None:
    assert classify_graph_error(code, subcode, status) is expected
    assert expected.retryable == (expected in {GraphErrorClass.RETRY_LATER, GraphErrorClass.THROTTLED})
    pausing = {GraphErrorClass.THROTTLED, GraphErrorClass.PAGE_RESTRICTED, GraphErrorClass.BAD_TOKEN}
    assert expected.pauses_page == (expected in pausing | {GraphErrorClass.PERMISSION})


@pytest.mark.parametrize(
    ("headers", "percent", "regain_s"),
    [
        ({}, None, None),
        ({"X-App-Usage": '{"call_count":28,"total_time":25,"total_cputime":25}'}, 28.0, None),
        ({"x-page-usage": '{"call_count":101,"total_cputime":3,"total_time":5}'}, 101.0, None),
        (
            {
                "X-Business-Use-Case-Usage": '{"1001":[{"type":"messenger","call_count":100,"total_cputime":4,'
                '"total_time":7,"estimated_time_to_regain_access":2}],"1002":[{"type":"pages","call_count":9,'
                '"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}]}'
            },
            100.0,
            120.0,
        ),
        ({"X-App-Usage": "not json", "X-Page-Usage": '{"call_count":"x","total_time":12}'}, 12.0, None),
        ({"X-App-Usage": "[]"}, 0.0, None),
    ],
)
def test_usage_headers(headers: dict[str, str], percent: float | None, regain_s: float | None) -> None:
    usage = parse_usage_headers(headers)
    if percent is None:
        assert usage is None
    else:
        assert usage is not None
        assert (usage.percent, usage.regain_access_s) == (percent, regain_s)


@pytest.mark.parametrize(
    ("created", "on_live", "live_ended", "refusal"),
    [
        (NOW - H, False, None, None),  # a post's comment, an hour old
        (NOW - 7 * 24 * H + M, False, None, None),  # 6 days 23h59
        (NOW - 7 * 24 * H - M, False, None, RefusalCode.PRIVATE_REPLY_EXPIRED),  # as on Facebook: 7 days
        (NOW - M, True, None, None),  # a live's comment, the live still on (as far as we know)
        (NOW - M, True, NOW + M, None),  # ends in a minute: still on
        (NOW - 5 * M, True, NOW - M, RefusalCode.PRIVATE_REPLY_LIVE_ENDED),  # ended a minute ago
        (NOW - 5 * M, False, NOW - M, None),  # an end only matters for a live's comment
    ],
)
def test_instagram_private_replies_within_7_days_and_a_lives_only_while_it_is_live(
    created: datetime, on_live: bool, live_ended: datetime | None, refusal: RefusalCode | None
) -> None:
    decision = decide_instagram_private_reply(NOW, created, False, on_live=on_live, live_ended_at=live_ended)
    assert decision.refusal == refusal and decision.allowed is (refusal is None)
    assert decide_instagram_private_reply(NOW, created, True).refusal is RefusalCode.PRIVATE_REPLY_USED


def test_instagrams_outside_window_code_is_outside_window_and_final() -> None:
    assert classify_graph_error(10, 2534022) is GraphErrorClass.OUTSIDE_WINDOW
    assert not GraphErrorClass.OUTSIDE_WINDOW.retryable


@pytest.mark.parametrize(
    ("hours_since_shopper", "approved", "instagram", "use_template", "refusal"),
    [
        (2, False, False, False, None),  # in the window: the free-form message, on either channel
        (2, False, True, False, None),
        (30, True, False, True, None),  # Messenger after the window: the approved utility template
        (30, False, False, False, RefusalCode.NO_CHANNEL),
        (30, True, True, False, RefusalCode.NO_CHANNEL),  # Instagram Direct has no utility templates
    ],
)
def test_decide_order_update(
    hours_since_shopper: float, approved: bool, instagram: bool, use_template: bool, refusal: RefusalCode | None
) -> None:
    last = NOW - timedelta(hours=hours_since_shopper)
    decision = decide_order_update(NOW, last, "shipped", approved, instagram=instagram)
    assert (decision.use_template, decision.refusal) == (use_template, refusal)
    assert decision.allowed == (refusal is None)
