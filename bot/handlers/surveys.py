"""A journey survey answered in Messenger: the star quick replies under a journey's message, then the comment.

A tap on `v1:SURVEY:<message>:<stars>` stores the stars for that message when the tapping shopper is the
message's member (crm_bridge.surveys refuses another member's: a forged or forwarded payload stores nothing
and gets a polite answer), and asks for a comment with Skip; the shopper's next text within the comment
window is the comment, `skip` or Skip ends it. A second answer to the same message is refused politely.
Registered before the FAQ and the fallback: a comment is never read as a question.
"""

from __future__ import annotations

from bot.inbound.events import EventKind, MessageEvent, PostbackEvent
from bot.inbound.router import HandlerContext, Router
from bot.outbound.outbox import enqueue_messages
from bot.outbound.shopper_locale import locale_of
from bot.replies.payload_codec import PayloadAction
from bot.replies.render import Message
from bot.replies.surveys import (
    SKIP_WORDS,
    parse_survey_payload,
    survey_already_answered,
    survey_ask_comment,
    survey_closed,
    survey_not_yours,
    survey_thanks,
)
from bot.runtime.clock import utcnow
from carts.orders import fetch_shop_name
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.surveys import SurveyOutcome, add_comment, answer_survey, skip_comment, waiting_comment


def _payload(event: MessageEvent | PostbackEvent) -> str | None:
    return event.payload if isinstance(event, PostbackEvent) else event.quick_reply_payload


async def survey_filter(event: MessageEvent | PostbackEvent, ctx: HandlerContext) -> dict[str, object] | bool:
    """A star or Skip tap; or a text while the shopper's comment is awaited."""
    if event.from_page:
        return False
    tapped = parse_survey_payload(_payload(event))
    if tapped is not None:
        action, message_id, stars = tapped
        return {"action": action.value, "message_id": message_id, "stars": stars}
    if not isinstance(event, MessageEvent) or not event.text or event.quick_reply_payload:
        return False
    member = await fetch_member_by_psid(ctx.session, event.page_id, event.psid)
    if member is None or await waiting_comment(ctx.session, member.id or 0, utcnow()) is None:
        return False
    return {"action": "comment", "message_id": 0, "stars": None}


async def handle_survey(
    event: MessageEvent | PostbackEvent, ctx: HandlerContext, action: str, message_id: int, stars: int | None
) -> None:
    now = utcnow()
    locale = await locale_of(ctx.session, event.page_id, event.psid)
    member = await fetch_member_by_psid(ctx.session, event.page_id, event.psid)
    messages: list[Message]
    if member is None:
        messages = survey_not_yours(locale)  # no member has this PSID: the survey was sent to someone else
    elif action == PayloadAction.SURVEY.value and stars is not None:
        result = await answer_survey(
            ctx.session, message_id, member.id or 0, stars, channel="messenger", now=now, wait_for_comment=True
        )
        if result.outcome is SurveyOutcome.RECORDED:
            messages = survey_ask_comment(locale, message_id, stars)
        elif result.outcome is SurveyOutcome.ALREADY_ANSWERED:
            messages = survey_already_answered(locale)
        elif result.outcome is SurveyOutcome.NOT_YOURS:
            messages = survey_not_yours(locale)
        else:
            messages = survey_closed(locale)
    elif action == PayloadAction.SURVEY_SKIP.value:
        await skip_comment(ctx.session, message_id, member.id or 0, now)
        messages = survey_thanks(locale, await fetch_shop_name(ctx.session))
    else:
        answer = await waiting_comment(ctx.session, member.id or 0, now)
        if answer is None:
            return
        text = (event.text or "") if isinstance(event, MessageEvent) else ""
        skipped = text.strip().lower() in SKIP_WORDS
        await add_comment(ctx.session, answer, None if skipped else text, now)
        messages = survey_thanks(locale, await fetch_shop_name(ctx.session))
    await enqueue_messages(
        ctx.session, key=f"survey:{event.key}", page_id=event.page_id, psid=event.psid, messages=messages
    )
    ctx.wake_outbox()


def build_survey_router() -> Router:
    router = Router("surveys")
    router.register(handle_survey, survey_filter, kinds=[EventKind.MESSAGE, EventKind.POSTBACK], name="survey")
    return router
