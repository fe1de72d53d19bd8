"""Ready-made journeys from the shops' playbook: their definitions (the contract's JSON), pure, no I/O.

Six journeys every Hong Kong or Taiwan shop that sells through its Page asks for: a welcome with the sign-up
coupon, a thank-you three days after a first order, a satisfaction survey seven days after delivery, an offer
after the third order, a win-back when a member lapses, a birthday greeting. They are added to a shop OFF;
the merchant reads them, edits them and turns them on.

The texts are English msgids of the Babel catalog (bot/locale); this package cannot import bot's catalog
(layers), so the caller passes `translate(locale, msgid)` and each send step gets both languages. The
`{name}`-style placeholders stay in the text for the engine to fill per member.

The birthday journey only greets: the programme's birthday points are given by crm_bridge.maintenance
(`birthday:<member>:<year>` in the ledger), so the journey has no points step and never gives them twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "LOCALES",
    "READY_MADE",
    "ReadyMade",
    "ReadyMadeJourney",
    "library_msgids",
    "ready_made_definition",
]

LOCALES = ("en", "zh_Hant")
Translate = Callable[[str, str], str]


class ReadyMade(StrEnum):
    """The ready-made journeys' keys (crm_journey.ready_made)."""

    WELCOME = "welcome"
    THANK_YOU = "thank_you"
    SURVEY = "satisfaction_survey"
    REPEAT_BUYER = "repeat_buyer"
    WIN_BACK = "win_back"
    BIRTHDAY = "birthday"


@dataclass(frozen=True, slots=True)
class ReadyMadeJourney:
    key: ReadyMade
    name: str  # msgid
    description: str  # msgid: what it does, for the playbook's list
    uses_coupon: bool  # its send step carries the shop's coupon when there is one


READY_MADE: tuple[ReadyMadeJourney, ...] = (
    ReadyMadeJourney(
        ReadyMade.WELCOME,
        "Welcome with a sign-up coupon",
        "When someone becomes a member: a welcome message with the shop's sign-up coupon.",
        True,
    ),
    ReadyMadeJourney(
        ReadyMade.THANK_YOU,
        "Thank you after a first order",
        "Three days after a member's first order is paid: a thank-you.",
        False,
    ),
    ReadyMadeJourney(
        ReadyMade.SURVEY,
        "Satisfaction survey",
        "Seven days after an order is delivered: 1 to 5 stars and a comment.",
        False,
    ),
    ReadyMadeJourney(
        ReadyMade.REPEAT_BUYER,
        "Repeat-buyer offer",
        "After a member's third order: a coupon to thank a regular.",
        True,
    ),
    ReadyMadeJourney(
        ReadyMade.WIN_BACK,
        "Win-back",
        "When a member has not ordered for the shop's lapse threshold: a coupon to come back.",
        True,
    ),
    ReadyMadeJourney(
        ReadyMade.BIRTHDAY,
        "Birthday greeting",
        "On a member's birthday: a greeting (the programme gives the birthday points itself).",
        False,
    ),
)

# The messages, English msgids with the engine's placeholders; a variant without the coupon when the shop has none.
WELCOME_TEXT = (
    "Welcome to {shop}, {name}! Here is your sign-up gift: code {coupon_code} ({coupon_terms}). "
    "Comment a product's code under our posts or lives to order."
)
WELCOME_TEXT_NO_COUPON = (
    "Welcome to {shop}, {name}! Comment a product's code under our posts or lives to order, "
    "and earn points on every order."
)
THANK_YOU_TEXT = (
    "Thank you for your first order with {shop}, {name}! We hope you love it. "
    "You have {points} points: they count towards your next orders."
)
SURVEY_TEXT = (
    "Hi {name}, your order {order_ref} arrived a week ago. How did you like it? "
    "Tap 1 to 5 stars; a comment helps us too."
)
REPEAT_TEXT = (
    "{name}, that is your third order with {shop}: thank you for coming back! "
    "Here is a gift for the next one: code {coupon_code} ({coupon_terms})."
)
REPEAT_TEXT_NO_COUPON = (
    "{name}, that is your third order with {shop}: thank you for coming back! You are now {tier} with {points} points."
)
WIN_BACK_TEXT = (
    "We miss you, {name}! New arrivals are waiting at {shop}. Come back with code {coupon_code} ({coupon_terms})."
)
WIN_BACK_TEXT_NO_COUPON = (
    "We miss you, {name}! New arrivals are waiting at {shop}: watch our next live or comment under our posts."
)
BIRTHDAY_TEXT = "Happy birthday, {name}! Your birthday points are in: you now have {points} points to use at {shop}."
BIRTHDAY_TEXT_NO_POINTS = "Happy birthday, {name}! Everyone at {shop} wishes you a wonderful day."

_DEFAULT_ATTRIBUTION_DAYS = 7
_WIN_BACK_ATTRIBUTION_DAYS = 14  # a lapsed member takes longer to come back than a new one


def _texts(msgid: str, translate: Translate) -> dict[str, str]:
    return {locale: msgid if locale == "en" else translate(locale, msgid) for locale in LOCALES}


def _send(step_id: str, msgid: str, translate: Translate, *, coupon: int | None = None, survey: bool = False) -> dict:
    return {
        "id": step_id,
        "kind": "send",
        "text": _texts(msgid, translate),
        "coupon": coupon,
        "survey": survey,
        "update": False,
        "template": None,
    }


def _wait(step_id: str, days: int) -> dict[str, Any]:
    return {"id": step_id, "kind": "wait", "days": days, "hours": 0}


def ready_made_definition(
    key: ReadyMade | str,
    *,
    translate: Translate,
    coupon_id: int | None = None,
    lapse_days: int = 90,
    birthday_points: int = 0,
) -> dict[str, Any]:
    """The definition of ready-made journey `key` for this shop.

    `coupon_id`: the shop's sign-up coupon for the welcome, the coupon for the repeat-buyer offer and the
    win-back (None: those send their text without a code). `lapse_days`: the shop's lapse threshold
    (crm_bridge.segments' cuts) for the win-back's trigger. `birthday_points`: what the programme gives on a
    birthday (0: the greeting does not mention points). Raises ValueError for an unknown key.
    """
    journey = ReadyMade(key)
    attribution = _DEFAULT_ATTRIBUTION_DAYS
    if journey is ReadyMade.WELCOME:
        trigger: dict[str, Any] = {"kind": "joined"}
        steps = [_send("welcome", WELCOME_TEXT if coupon_id else WELCOME_TEXT_NO_COUPON, translate, coupon=coupon_id)]
    elif journey is ReadyMade.THANK_YOU:
        trigger = {"kind": "first_order_paid"}
        steps = [_wait("wait3d", 3), _send("thanks", THANK_YOU_TEXT, translate)]
    elif journey is ReadyMade.SURVEY:
        trigger = {"kind": "order_delivered"}
        steps = [_wait("wait7d", 7), _send("survey", SURVEY_TEXT, translate, survey=True)]
    elif journey is ReadyMade.REPEAT_BUYER:
        trigger = {"kind": "nth_order", "n": 3}
        text = REPEAT_TEXT if coupon_id else REPEAT_TEXT_NO_COUPON
        steps = [_wait("wait1d", 1), _send("offer", text, translate, coupon=coupon_id)]
    elif journey is ReadyMade.WIN_BACK:
        trigger = {"kind": "no_order_for", "days": max(1, min(730, lapse_days))}
        attribution = _WIN_BACK_ATTRIBUTION_DAYS
        text = WIN_BACK_TEXT if coupon_id else WIN_BACK_TEXT_NO_COUPON
        steps = [_send("come_back", text, translate, coupon=coupon_id)]
    else:
        trigger = {"kind": "birthday"}
        steps = [_send("greeting", BIRTHDAY_TEXT if birthday_points > 0 else BIRTHDAY_TEXT_NO_POINTS, translate)]
    return {"trigger": trigger, "stay_in_segment": None, "attribution_days": attribution, "steps": steps}


def library_msgids() -> set[str]:
    """Every msgid the playbook uses: names, descriptions, messages (a test checks each is translated)."""
    texts = {
        WELCOME_TEXT,
        WELCOME_TEXT_NO_COUPON,
        THANK_YOU_TEXT,
        SURVEY_TEXT,
        REPEAT_TEXT,
        REPEAT_TEXT_NO_COUPON,
        WIN_BACK_TEXT,
        WIN_BACK_TEXT_NO_COUPON,
        BIRTHDAY_TEXT,
        BIRTHDAY_TEXT_NO_POINTS,
    }
    return texts | {journey.name for journey in READY_MADE} | {journey.description for journey in READY_MADE}
