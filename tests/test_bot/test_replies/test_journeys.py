"""bot.replies.journeys: a journey e-mail's subject in the member's language, with or without a shop name."""

from __future__ import annotations

from bot.replies.journeys import journey_email_subject


def test_the_subject_names_the_shop_in_the_members_language() -> None:
    assert journey_email_subject("en", "Little Shop") == "A message from Little Shop"
    assert journey_email_subject("zh_Hant", "小店") == "小店 的訊息"
    assert journey_email_subject("zh_Hant", " ") == "商店的訊息"
