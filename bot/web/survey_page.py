"""The public survey page a journey's e-mail links to: `/s/<signed token>` (bot.outbound.survey_links).

- `GET /s/<token>`: the question with 1–5 stars and a comment box, in the message's language (`?lang=`
  wins), styled like the checkout's pages; once answered, the answer and a thank-you.
- `POST /s/<token>`: stores the stars and comment for that message's member (crm_bridge.surveys): one
  answer per message, so a second (the link again, or Messenger first) is refused politely and the first
  stays. Stars outside 1–5 are a 400 that says so, with what was typed kept. A tampered, truncated or made-up
  token, or a message that is not a sent survey, is a styled 400 and changes nothing.
"""

from __future__ import annotations

from aiohttp import web

from bot.outbound.email_links import link_key
from bot.outbound.survey_links import read_survey_token
from bot.replies.i18n import gettext, normalize_locale, pick_locale
from bot.runtime.clock import utcnow
from bot.services import SESSIONS, SETTINGS
from bot.web.checkout import HEADERS
from bot.web.error_pages import error_page, reader_locale
from bot.web.forms import read_form
from bot.web.rendering import render_page
from carts.orders import fetch_shop_name
from crm_bridge.journey_tables import JourneyMessage
from crm_bridge.surveys import MAX_COMMENT, SurveyOutcome, answer_survey, fetch_answer

routes = web.RouteTableDef()
BAD_LINK = "This survey link is not valid: it may have been cut short. Use the link in your e-mail."


async def _message(request: web.Request) -> JourneyMessage | None:
    try:
        key = link_key(request.app[SETTINGS])
    except ValueError:
        return None
    message_id = read_survey_token(key, request.match_info["token"])
    if message_id is None:
        return None
    async with request.app[SESSIONS]() as session:
        message = await session.get(JourneyMessage, message_id)
    return message if message is not None and message.survey and message.status == "sent" else None


async def _page(
    request: web.Request,
    message: JourneyMessage,
    status: int = 200,
    *,
    error: str | None = None,
    already: bool = False,
    typed: dict[str, str] | None = None,
) -> web.Response:
    chosen = normalize_locale(request.query.get("lang"))
    locale = chosen or pick_locale(message.locale)
    async with request.app[SESSIONS]() as session:
        shop_name = await fetch_shop_name(session)
        answer = await fetch_answer(session, message.id or 0)
    context = {
        "locale": locale,
        "shop_name": shop_name,
        "heading": gettext(locale, "How was it?"),
        "question": message.text,
        "answer": answer,
        "already": already,
        "error": None if error is None else gettext(locale, error),
        "typed": typed or {},
        "max_comment": MAX_COMMENT,
        "action": request.path + (f"?lang={chosen}" if chosen else ""),
        "here": request.path,
        "other_lang": "en" if locale == "zh_Hant" else "zh_Hant",
    }
    return await render_page("survey.html", context, status=status, headers=HEADERS)


@routes.get("/s/{token}")
async def survey_page(request: web.Request) -> web.Response:
    message = await _message(request)
    if message is None:
        return await error_page(request, 400, gettext(await reader_locale(request), BAD_LINK))
    return await _page(request, message)


@routes.post("/s/{token}")
async def answer(request: web.Request) -> web.Response:
    message = await _message(request)
    if message is None:
        return await error_page(request, 400, gettext(await reader_locale(request), BAD_LINK))
    form = await read_form(request, "the survey form")
    typed = {"stars": str(form.get("stars", "")), "comment": str(form.get("comment", ""))[:MAX_COMMENT]}
    stars = int(typed["stars"]) if typed["stars"].isdigit() else 0
    if not 1 <= stars <= 5:
        return await _page(request, message, 400, error="Choose 1 to 5 stars.", typed=typed)
    async with request.app[SESSIONS]() as session, session.begin():
        result = await answer_survey(
            session, message.id or 0, message.member_id, stars, channel="email", now=utcnow(), comment=typed["comment"]
        )
    if result.outcome is SurveyOutcome.ALREADY_ANSWERED:
        return await _page(request, message, 409, already=True)
    if result.outcome is not SurveyOutcome.RECORDED:
        return await error_page(request, 400, gettext(await reader_locale(request), BAD_LINK))
    return await _page(request, message)
