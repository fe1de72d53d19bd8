"""A journey survey in Messenger: the star quick replies, their payloads read back, the texts in both languages."""

from __future__ import annotations

from bot.replies.payload_codec import PayloadAction, encode_payload
from bot.replies.surveys import (
    parse_survey_payload,
    survey_ask_comment,
    survey_quick_replies,
    survey_thanks,
)


def test_five_star_quick_replies_each_carry_the_message_and_its_stars() -> None:
    replies = [reply.to_meta() for reply in survey_quick_replies(42)]
    assert [reply["title"] for reply in replies] == ["★★★★★", "★★★★☆", "★★★☆☆", "★★☆☆☆", "★☆☆☆☆"]
    assert [parse_survey_payload(reply["payload"]) for reply in replies] == [
        (PayloadAction.SURVEY, 42, stars) for stars in (5, 4, 3, 2, 1)
    ]


def test_a_tampered_or_foreign_payload_is_not_a_survey_answer() -> None:
    assert parse_survey_payload(encode_payload(PayloadAction.SURVEY, "42", "6")) is None
    assert parse_survey_payload(encode_payload(PayloadAction.SURVEY, "42", "0")) is None
    assert parse_survey_payload(encode_payload(PayloadAction.SURVEY, "x42", "5")) is None
    assert parse_survey_payload("v1:SURVEY:42") is None
    assert parse_survey_payload("v9:SURVEY:42:5") is None
    assert parse_survey_payload(encode_payload(PayloadAction.CART)) is None
    assert parse_survey_payload(None) is None


def test_the_ask_for_a_comment_has_skip_in_the_shoppers_language() -> None:
    (english,) = survey_ask_comment("en", 42, 4)
    (chinese,) = survey_ask_comment("zh_Hant", 42, 4)
    assert "★★★★☆" in english["text"] and "Skip" in english["text"]
    assert "★★★★☆" in chinese["text"] and "略過" in chinese["text"]
    assert chinese["quick_replies"][0]["title"] == "略過"
    assert parse_survey_payload(chinese["quick_replies"][0]["payload"]) == (PayloadAction.SURVEY_SKIP, 42, None)
    assert "小店" in survey_thanks("zh_Hant", "小店")[0]["text"]
