"""The journey editor's fields: a definition round-trips through them, typed numbers reach the rules as
typed, and the row actions add, remove and move steps with their fields."""

from __future__ import annotations

from bot.inbox.journey_form import apply_action, definition_values, form_definition, step_index_of
from crm_bridge.journey_library import ReadyMade, ready_made_definition
from crm_bridge.journey_rules import definition_json, parse_journey

RICH = {
    "trigger": {"kind": "nth_order", "n": 3},
    "stay_in_segment": 4,
    "attribution_days": 10,
    "steps": [
        {"id": "w", "kind": "wait", "days": 2, "hours": 5},
        {"id": "u", "kind": "wait_until", "weekday": None, "hour": 10},
        {"id": "b", "kind": "branch", "if": {"tag": "vip"}, "then": "m", "else": "exit"},
        {"id": "b2", "kind": "branch", "if": {"ordered_since_start": True}},
        {
            "id": "m",
            "kind": "send",
            "text": {"en": "Hi {name}", "zh_Hant": "你好 {name}"},
            "coupon": 7,
            "survey": True,
            "update": False,
            "template": None,
        },
        {"id": "t", "kind": "tag", "add": ["vip", "regular"], "remove": []},
        {"id": "p", "kind": "points", "points": 50},
        {"id": "x", "kind": "exit"},
    ],
}


def test_a_definition_round_trips_through_the_fields() -> None:
    assert form_definition(definition_values(RICH)) == RICH
    for key in ReadyMade:
        made = ready_made_definition(key, translate=lambda _locale, msgid: msgid + "!", coupon_id=2)
        parsed = parse_journey(
            form_definition(definition_values(made)), segments=set(), coupons={2}, approved_templates=set()
        )
        assert definition_json(parsed) == made


def test_what_is_typed_reaches_the_rules_as_typed() -> None:
    values = {"trigger.kind": "no_order_for", "trigger.days": "ninety", "steps[0].kind": "wait", "steps[0].days": "3天"}
    definition = form_definition(values)
    assert definition["trigger"] == {"kind": "no_order_for", "days": "ninety"}
    assert definition["steps"][0]["days"] == "3天"


def test_add_remove_and_move_steps_keep_each_steps_fields() -> None:
    values = definition_values(RICH)
    added = apply_action(values, "add:send")
    assert added is not None and added["steps[8].kind"] == "send" and added["steps[8].id"] == "send1"
    moved = apply_action(values, "up:4")
    assert moved is not None and moved["steps[3].id"] == "m" and moved["steps[3].text.en"] == "Hi {name}"
    assert moved["steps[4].id"] == "b2"
    down = apply_action(values, "down:7")
    assert down is not None and down["steps[7].id"] == "x"  # the last step stays last
    removed = apply_action(values, "remove:0")
    assert removed is not None and removed["steps[0].id"] == "u" and "steps[7].id" not in removed
    assert removed["trigger.n"] == "3"
    assert apply_action(values, "remove:99") is None and apply_action(values, "save") is None


def test_a_refusal_names_the_row_of_its_step() -> None:
    values = definition_values(RICH)
    assert step_index_of(values, "m") == 4
    assert step_index_of(values, None) is None
