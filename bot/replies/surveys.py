"""A journey's satisfaction survey as the shopper reads it in Messenger: five star quick replies under the
journey's message, then the ask for a comment (with Skip), the thanks, and the polite refusals. Pure: no I/O.

The stars' payloads carry the journey message's id (`v1:SURVEY:<message id>:<stars>`); whose message it is
is checked against the tapping PSID's member when the answer is stored (crm_bridge.surveys), so a forged
payload gets `SURVEY_NOT_YOURS` and stores nothing.
"""

from __future__ import annotations

from bot.replies.i18n import gettext
from bot.replies.payload_codec import Payload, PayloadAction, decode_payload, encode_payload
from bot.replies.render import Message, QuickReply, render_text

__all__ = [
    "SKIP_WORDS",
    "STARS",
    "SURVEY_ALREADY",
    "SURVEY_ASK_COMMENT",
    "SURVEY_CLOSED",
    "SURVEY_NOT_YOURS",
    "SURVEY_THANKS",
    "parse_survey_payload",
    "survey_already_answered",
    "survey_ask_comment",
    "survey_closed",
    "survey_email_text",
    "survey_not_yours",
    "survey_quick_replies",
    "survey_thanks",
]

STARS = (1, 2, 3, 4, 5)
SURVEY_ASK_COMMENT = "Thank you for the {stars}! Anything you would like to tell us? Type a comment, or tap Skip."
SURVEY_SKIP = "Skip"
SURVEY_THANKS = "Thank you! Your answer helps {shop} do better."
SURVEY_ALREADY = "You have already answered this survey: thank you!"
SURVEY_NOT_YOURS = "Sorry, this survey is not yours to answer."
SURVEY_CLOSED = "Sorry, this survey is closed."
SURVEY_EMAIL_LINK = "Tap 1 to 5 stars here (a comment is welcome too): {url}"
# What a shopper may type instead of tapping Skip (normalised: lower case, stripped).
SKIP_WORDS = frozenset({"skip", "no", "no thanks", "略過", "跳過", "唔使", "不用", "沒有", "冇"})


def stars_label(stars: int) -> str:
    """`★★★☆☆`: a person reads it in any language (a quick reply's title is at most 20 characters)."""
    return "★" * stars + "☆" * (5 - stars)


def survey_quick_replies(message_id: int) -> list[QuickReply]:
    """Five quick replies, 5 stars first (what most tap), each carrying the journey message's id."""
    return [
        QuickReply(stars_label(stars), encode_payload(PayloadAction.SURVEY, str(message_id), str(stars)))
        for stars in reversed(STARS)
    ]


def parse_survey_payload(raw: str | None) -> tuple[PayloadAction, int, int | None] | None:
    """(SURVEY, message id, stars) or (SURVEY_SKIP, message id, None); None when it is not a usable survey tap."""
    decoded = decode_payload(raw)
    if not isinstance(decoded, Payload) or decoded.action not in (PayloadAction.SURVEY, PayloadAction.SURVEY_SKIP):
        return None
    if not decoded.args[0].isdigit():
        return None
    message_id = int(decoded.args[0])
    if decoded.action is PayloadAction.SURVEY_SKIP:
        return PayloadAction.SURVEY_SKIP, message_id, None
    stars = decoded.args[1]
    if not stars.isdigit() or int(stars) not in STARS:
        return None
    return PayloadAction.SURVEY, message_id, int(stars)


def survey_ask_comment(locale: str, message_id: int, stars: int) -> list[Message]:
    """After the stars: the ask for a comment, with a Skip quick reply."""
    skip = QuickReply(gettext(locale, SURVEY_SKIP), encode_payload(PayloadAction.SURVEY_SKIP, str(message_id)))
    return render_text(gettext(locale, SURVEY_ASK_COMMENT, stars=stars_label(stars)), [skip])


def survey_thanks(locale: str, shop: str) -> list[Message]:
    return render_text(gettext(locale, SURVEY_THANKS, shop=shop))


def survey_email_text(locale: str, text: str, url: str) -> str:
    """A survey's e-mail: the journey's text, then the link to its star page (bot.web.survey_page)."""
    return f"{text}\n\n{gettext(locale, SURVEY_EMAIL_LINK, url=url)}"


def survey_already_answered(locale: str) -> list[Message]:
    return render_text(gettext(locale, SURVEY_ALREADY))


def survey_not_yours(locale: str) -> list[Message]:
    return render_text(gettext(locale, SURVEY_NOT_YOURS))


def survey_closed(locale: str) -> list[Message]:
    return render_text(gettext(locale, SURVEY_CLOSED))
