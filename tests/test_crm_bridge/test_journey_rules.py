"""crm_bridge.journey_rules, pure: every refusal code names its step and field (loops, waits for ever,
unapproved templates, unknown segments and coupons...), the placeholders, the shop-local wait ends and
the channel choice."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm_bridge.journey_rules import (
    Channel,
    JourneyError,
    JourneyErrorCode,
    ReasonCode,
    StepKind,
    TriggerKind,
    choose_channel,
    coupon_terms_text,
    definition_json,
    next_weekday_hour,
    parse_journey,
    pick_text,
    render_text,
    wait_end,
)

HK = ZoneInfo("Asia/Hong_Kong")
SEGMENTS, COUPONS, TEMPLATES = {3, 4}, {9}, {"order_shipped_v1"}

GOOD: dict[str, Any] = {
    "trigger": {"kind": "order_paid"},
    "stay_in_segment": 3,
    "attribution_days": 7,
    "steps": [
        {"id": "wait1", "kind": "wait", "days": 3, "hours": 0},
        {"id": "b1", "kind": "branch", "if": {"tag": "VIP"}, "then": "m2", "else": "m1"},
        {"id": "m1", "kind": "send", "text": {"en": "Thanks {name}!", "zh_Hant": "多謝 {name}！"}, "coupon": 9},
        {"id": "wait2", "kind": "wait_until", "weekday": 4, "hour": 20},
        {
            "id": "m2",
            "kind": "send",
            "text": {"en": "Shipped {order_ref}"},
            "update": True,
            "template": "order_shipped_v1",
        },
        {"id": "t1", "kind": "tag", "add": ["thanked"], "remove": []},
        {"id": "p1", "kind": "points", "points": 50},
        {"id": "x", "kind": "exit"},
    ],
}


def parse(definition: Any) -> Any:
    return parse_journey(definition, segments=SEGMENTS, coupons=COUPONS, approved_templates=TEMPLATES)


def edited(path: list[Any], value: Any = ..., drop: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(GOOD)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    if drop:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def test_a_good_definition_parses_and_comes_back_as_the_same_json() -> None:
    journey = parse(GOOD)
    assert journey.trigger.kind is TriggerKind.ORDER_PAID
    assert [s.kind for s in journey.steps] == [
        StepKind.WAIT, StepKind.BRANCH, StepKind.SEND, StepKind.WAIT_UNTIL,
        StepKind.SEND, StepKind.TAG, StepKind.POINTS, StepKind.EXIT,
    ]  # fmt: skip
    assert journey.steps[1].condition is not None and journey.steps[1].condition.tag == "vip"
    assert journey.segments() == {3} and journey.coupons() == {9}
    assert parse(definition_json(journey)) == journey


@pytest.mark.parametrize(
    ("definition", "code", "step", "field"),
    [
        (edited(["steps", 1, "else"], "wait1"), JourneyErrorCode.LOOPS, "b1", "else"),
        (edited(["steps", 1, "then"], "b1"), JourneyErrorCode.LOOPS, "b1", "then"),
        (edited(["steps", 1, "then"], "nowhere"), JourneyErrorCode.UNKNOWN_STEP, "b1", "then"),
        (edited(["steps", 0, "days"], 366), JourneyErrorCode.WAITS_FOREVER, "wait1", "days"),
        (edited(["steps", 0, "hours"], 365 * 24 + 1), JourneyErrorCode.WAITS_FOREVER, "wait1", "days"),
        (edited(["steps", 0, "days"], 0), JourneyErrorCode.BAD_WAIT, "wait1", "days"),
        (edited(["steps", 0, "days"], -1), JourneyErrorCode.BAD_WAIT, "wait1", "days"),
        (edited(["steps", 0, "days"], "3"), JourneyErrorCode.BAD_WAIT, "wait1", "days"),
        (edited(["steps", 3, "hour"], 24), JourneyErrorCode.BAD_HOUR, "wait2", "hour"),
        (edited(["steps", 3, "hour"], -1), JourneyErrorCode.BAD_HOUR, "wait2", "hour"),
        (edited(["steps", 3, "weekday"], 7), JourneyErrorCode.BAD_WEEKDAY, "wait2", "weekday"),
        (edited(["steps", 3, "hour"], drop=True), JourneyErrorCode.MISSING_FIELD, "wait2", "hour"),
        (edited(["steps", 4, "template"], "promo_blast"), JourneyErrorCode.UNAPPROVED_TEMPLATE, "m2", "template"),
        (edited(["steps", 4, "update"], False), JourneyErrorCode.TEMPLATE_WITHOUT_UPDATE, "m2", "template"),
        (edited(["steps", 2, "text"], {"en": " ", "zh_Hant": ""}), JourneyErrorCode.EMPTY_TEXT, "m1", "text"),
        (edited(["steps", 2, "text"], {"en": "Hi {nmae}"}), JourneyErrorCode.UNKNOWN_PLACEHOLDER, "m1", "text.en"),
        (
            edited(["steps", 2, "text"], {"zh_Hant": "你好 {"}),
            JourneyErrorCode.UNKNOWN_PLACEHOLDER,
            "m1",
            "text.zh_Hant",
        ),
        (edited(["steps", 2, "text"], {"fr": "Salut"}), JourneyErrorCode.UNKNOWN_FIELD, "m1", "text.fr"),
        (edited(["steps", 2, "coupon"], 10), JourneyErrorCode.UNKNOWN_COUPON, "m1", "coupon"),
        (edited(["steps", 1, "if"], {"segment": 5}), JourneyErrorCode.UNKNOWN_SEGMENT, "b1", "if.segment"),
        (edited(["steps", 1, "if"], {"tag": "a", "segment": 3}), JourneyErrorCode.BAD_VALUE, "b1", "if"),
        (edited(["steps", 1, "if"], {"bought": 1}), JourneyErrorCode.UNKNOWN_FIELD, "b1", "if.bought"),
        (edited(["stay_in_segment"], 99), JourneyErrorCode.UNKNOWN_SEGMENT, None, "stay_in_segment"),
        (
            edited(["trigger"], {"kind": "entered_segment", "segment": 8}),
            JourneyErrorCode.UNKNOWN_SEGMENT,
            None,
            "trigger.segment",
        ),
        (edited(["trigger"], {"kind": "nth_order", "n": 1}), JourneyErrorCode.BAD_VALUE, None, "trigger.n"),
        (edited(["trigger"], {"kind": "no_order_for", "days": 731}), JourneyErrorCode.BAD_VALUE, None, "trigger.days"),
        (edited(["trigger"], {"kind": "order_paid", "n": 2}), JourneyErrorCode.UNKNOWN_FIELD, None, "trigger.n"),
        (edited(["trigger"], {"kind": "ordered"}), JourneyErrorCode.UNKNOWN_TRIGGER, None, "trigger.kind"),
        (edited(["trigger"], drop=True), JourneyErrorCode.MISSING_FIELD, None, "trigger"),
        (edited(["steps", 5, "kind"], "sms"), JourneyErrorCode.UNKNOWN_KIND, "t1", "kind"),
        (edited(["steps", 5, "colour"], "red"), JourneyErrorCode.UNKNOWN_FIELD, "t1", "colour"),
        (edited(["steps", 5, "add"], [""]), JourneyErrorCode.BAD_TAG, "t1", "add[0]"),
        (edited(["steps", 6, "id"], "t1"), JourneyErrorCode.DUPLICATE_ID, "t1", "id"),
        (edited(["steps", 6, "id"], drop=True), JourneyErrorCode.MISSING_ID, None, "steps[6].id"),
        (edited(["steps", 6, "points"], 0), JourneyErrorCode.BAD_VALUE, "p1", "points"),
        (edited(["steps"], []), JourneyErrorCode.NO_STEPS, None, "steps"),
        (edited(["steps"], drop=True), JourneyErrorCode.NO_STEPS, None, "steps"),
        (edited(["attribution_days"], 61), JourneyErrorCode.BAD_VALUE, None, "attribution_days"),
        (edited(["colour"], "red"), JourneyErrorCode.UNKNOWN_FIELD, None, "colour"),
        ([], JourneyErrorCode.NOT_AN_OBJECT, None, None),
    ],
)
def test_each_bad_definition_is_refused_naming_its_step_and_field(
    definition: Any, code: JourneyErrorCode, step: str | None, field: str | None
) -> None:
    with pytest.raises(JourneyError) as refused:
        parse(definition)
    assert (refused.value.code, refused.value.step_id, refused.value.field) == (code, step, field)


@pytest.mark.parametrize(
    "steps",
    [
        [{"id": "m", "kind": "send", "text": {"en": "Hi"}}, {"id": "w", "kind": "wait", "days": 2}],
        [{"id": "w", "kind": "wait", "days": 2}, {"id": "u", "kind": "wait_until", "hour": 9}],
        [
            {"id": "w", "kind": "wait", "days": 2},
            {"id": "x", "kind": "exit"},
            {"id": "m", "kind": "send", "text": {"en": "Hi"}},
        ],
    ],
)
def test_a_wait_with_nothing_to_do_after_it_waits_for_ever(steps: list[dict[str, Any]]) -> None:
    with pytest.raises(JourneyError) as refused:
        parse({"trigger": {"kind": "joined"}, "steps": steps})
    assert refused.value.code is JourneyErrorCode.WAITS_FOREVER


def test_placeholders_render_in_the_members_language_and_unknown_values_render_empty() -> None:
    texts = {"en": "Thanks {name}, use {coupon_code}", "zh_Hant": "多謝 {name}，用 {coupon_code}"}
    assert pick_text(texts, "zh-HK") == ("zh_Hant", texts["zh_Hant"])
    assert pick_text(texts, None) == ("en", texts["en"])
    assert pick_text({"zh_Hant": "你好"}, "en") == ("zh_Hant", "你好")
    assert render_text(texts["zh_Hant"], {"name": "陳小姐", "coupon_code": "WB-7K2Q"}) == "多謝 陳小姐，用 WB-7K2Q"
    assert render_text("Hi {name}{points}", {"name": "Amy"}) == "Hi Amy"


def test_a_wait_of_days_keeps_the_shop_local_time_across_a_clock_change() -> None:
    london = ZoneInfo("Europe/London")
    start = datetime(2026, 3, 27, 9, tzinfo=UTC)  # 09:00 GMT, two days before clocks go forward
    end = wait_end(start, 3, 0, london)
    assert end.astimezone(london).hour == 9 and end - start == timedelta(days=3, hours=-1)
    assert wait_end(datetime(2026, 5, 1, 15, 30, tzinfo=UTC), 0, 5, HK) == datetime(2026, 5, 1, 20, 30, tzinfo=UTC)


def test_wait_until_lands_on_the_next_weekday_and_hour_in_the_shop_zone() -> None:
    # Thursday 2026-12-03 23:30 in Hong Kong is 15:30 UTC.
    now = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
    friday_8pm = next_weekday_hour(now, 4, 20, HK)
    assert friday_8pm.astimezone(HK) == datetime(2026, 12, 4, 20, tzinfo=HK)
    # Any day at 09:00: tomorrow morning local (already past today's).
    assert next_weekday_hour(now, None, 9, HK).astimezone(HK) == datetime(2026, 12, 4, 9, tzinfo=HK)
    # Thursday at 23:00 local is past: next week's Thursday. Exactly at the hour: the next one, never now.
    assert next_weekday_hour(now, 3, 23, HK).astimezone(HK) == datetime(2026, 12, 10, 23, tzinfo=HK)
    at = datetime(2026, 12, 4, 20, tzinfo=HK)
    assert next_weekday_hour(at, None, 20, HK).astimezone(HK) == datetime(2026, 12, 5, 20, tzinfo=HK)


@pytest.mark.parametrize(
    ("kwargs", "channel", "code"),
    [
        ({"has_psid": True, "window_open": True}, Channel.MESSENGER, None),
        ({"has_psid": True, "window_open": False, "update": True, "template": "t"}, Channel.MESSENGER, None),
        ({"has_psid": True, "window_open": False, "update": True}, None, ReasonCode.NO_CHANNEL),
        ({"has_psid": True, "window_open": False, "email": "a@b.hk"}, Channel.EMAIL, ReasonCode.OUTSIDE_WINDOW),
        ({"has_psid": False, "window_open": False, "email": "a@b.hk"}, Channel.EMAIL, ReasonCode.NO_CHANNEL),
        ({"has_psid": True, "window_open": True, "opted_out": True}, None, ReasonCode.OPTED_OUT),
    ],
)
def test_the_channel_follows_each_channels_rules(kwargs: dict[str, Any], channel: Channel | None, code: Any) -> None:
    args = {"opted_out": False, "update": False, "template": None, "email": None} | kwargs
    choice = choose_channel(**args)
    assert (choice.channel, choice.code) == (channel, code)


def test_nowhere_to_send_says_why_for_each_channel() -> None:
    choice = choose_channel(opted_out=False, has_psid=True, window_open=False, update=False, template=None, email=None)
    assert (choice.messenger, choice.email) == (ReasonCode.OUTSIDE_WINDOW, ReasonCode.NO_EMAIL)


def test_coupon_terms_read_in_each_language_with_the_shop_local_end_day() -> None:
    ends = datetime(2026, 12, 31, 17, tzinfo=UTC)  # already 1 January in Hong Kong
    terms = {"value": Decimal("10.00"), "currency": "HKD", "min_spend": Decimal("200.00"), "ends_at": ends, "zone": HK}
    assert coupon_terms_text("en", percent=True, **terms) == "10% off, min. spend HKD 200, until 1 Jan 2027"
    assert coupon_terms_text("zh_Hant", percent=True, **terms) == "減 10%，最低消費 HKD 200，有效至 2027年1月1日"
    assert (
        coupon_terms_text("en", percent=False, value=Decimal(50), currency="TWD", min_spend=None, ends_at=None, zone=HK)
        == "TWD 50 off"
    )
