"""The playbook's ready-made journeys: their triggers and steps as the issue asks, both languages filled."""

from __future__ import annotations

import json
import string

import pytest

from bot.replies.i18n import gettext, translations
from crm_bridge.journey_library import READY_MADE, ReadyMade, library_msgids, ready_made_definition
from crm_bridge.journey_rules import definition_json, parse_journey

PLACEHOLDERS = {"name", "shop", "coupon_code", "coupon_terms", "points", "tier", "survey_link", "order_ref"}


def _zh(locale: str, msgid: str) -> str:
    return gettext(locale, msgid)


def _names(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _sends(definition: dict) -> list[dict]:
    return [step for step in definition["steps"] if step["kind"] == "send"]


def test_every_playbook_text_has_its_chinese_with_the_same_placeholders() -> None:
    catalog = translations("zh_Hant")
    for msgid in library_msgids():
        chinese = catalog.ugettext(msgid)
        assert chinese != msgid, f"no zh_Hant for {msgid!r}"
        assert _names(chinese) == _names(msgid), msgid
        assert _names(msgid) <= PLACEHOLDERS, msgid


@pytest.mark.parametrize("key", list(ReadyMade))
def test_each_definition_is_plain_json_with_texts_in_both_languages(key: ReadyMade) -> None:
    definition = ready_made_definition(key, translate=_zh, coupon_id=5, lapse_days=120, birthday_points=80)
    assert json.loads(json.dumps(definition)) == definition
    assert 1 <= definition["attribution_days"] <= 60
    ids = [step["id"] for step in definition["steps"]]
    assert len(ids) == len(set(ids))
    for send in _sends(definition):
        assert set(send["text"]) == {"en", "zh_Hant"}
        assert send["text"]["zh_Hant"] != send["text"]["en"]
        assert _names(send["text"]["zh_Hant"]) == _names(send["text"]["en"])


def test_the_triggers_and_waits_the_issue_names() -> None:
    def made(key: ReadyMade) -> dict:
        return ready_made_definition(key, translate=_zh, coupon_id=5, lapse_days=120, birthday_points=80)

    assert made(ReadyMade.WELCOME)["trigger"] == {"kind": "joined"}
    assert _sends(made(ReadyMade.WELCOME))[0]["coupon"] == 5
    thanks = made(ReadyMade.THANK_YOU)
    assert thanks["trigger"] == {"kind": "first_order_paid"}
    assert thanks["steps"][0] == {"id": "wait3d", "kind": "wait", "days": 3, "hours": 0}
    survey = made(ReadyMade.SURVEY)
    assert survey["trigger"] == {"kind": "order_delivered"}
    assert survey["steps"][0]["days"] == 7 and _sends(survey)[0]["survey"] is True
    repeat = made(ReadyMade.REPEAT_BUYER)
    assert repeat["trigger"] == {"kind": "nth_order", "n": 3} and _sends(repeat)[0]["coupon"] == 5
    win_back = made(ReadyMade.WIN_BACK)
    assert win_back["trigger"] == {"kind": "no_order_for", "days": 120} and _sends(win_back)[0]["coupon"] == 5


def test_the_birthday_journey_greets_and_never_gives_the_points_again() -> None:
    with_points = ready_made_definition(ReadyMade.BIRTHDAY, translate=_zh, birthday_points=80)
    assert with_points["trigger"] == {"kind": "birthday"}
    assert [step["kind"] for step in with_points["steps"]] == ["send"]
    assert "{points}" in _sends(with_points)[0]["text"]["en"]
    without = ready_made_definition(ReadyMade.BIRTHDAY, translate=_zh, birthday_points=0)
    assert "{points}" not in _sends(without)[0]["text"]["en"]


def test_without_a_coupon_the_texts_do_not_promise_a_code() -> None:
    for key in (ReadyMade.WELCOME, ReadyMade.REPEAT_BUYER, ReadyMade.WIN_BACK):
        send = _sends(ready_made_definition(key, translate=_zh, coupon_id=None))[0]
        assert send["coupon"] is None
        assert all("{coupon_code}" not in text for text in send["text"].values()), key


def test_the_playbook_lists_each_journey_once_and_refuses_an_unknown_key() -> None:
    assert [journey.key for journey in READY_MADE] == list(ReadyMade)
    with pytest.raises(ValueError):
        ready_made_definition("anniversary", translate=_zh)


@pytest.mark.parametrize("key", list(ReadyMade))
@pytest.mark.parametrize("coupon_id", [5, None])
def test_each_ready_made_journey_passes_the_journey_rules(key: ReadyMade, coupon_id: int | None) -> None:
    definition = ready_made_definition(key, translate=_zh, coupon_id=coupon_id, lapse_days=120, birthday_points=80)
    parsed = parse_journey(definition, segments=set(), coupons={5}, approved_templates=set())
    assert definition_json(parsed) == definition
