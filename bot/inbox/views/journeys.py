"""The console's Journeys pages (issue 21, owners): the list, the editor with its live preview, a journey's
runs and answers, a run's history.

    GET  /inbox/journeys                     the journeys: trigger in words, on/off, version, runs, sends,
                                             attributed orders, survey answers; the playbook (added on first use)
    POST /inbox/journeys/playbook            add the ready-made journeys not added yet (off), with a coupon
    GET  /inbox/journeys/new                 the editor, empty
    GET  /inbox/journeys/{key}               the editor with the journey's current version and its preview
    POST /inbox/journeys/new, /inbox/journeys/{key}
                                             action=preview (the preview of the form as typed, nothing saved),
                                             add:<kind> / remove:<i> / up:<i> / down:<i> (the steps), save
                                             (a changed definition is a new version; 303 to the list saying so),
                                             or 400 with the problem beside its step
    POST /inbox/journeys/{key}/enabled       switch it on or off (`enabled` = 1 or 0)
    GET  /inbox/journeys/{key}/runs          its runs, survey answers and attributed orders
    GET  /inbox/journeys/runs/{id}           one run's history in words, its messages and answer

Saving goes through crm_bridge.journeys.save_journey, the same code as the admin API, so both refuse the
same definitions (crm_bridge.journey_rules.JourneyError) and name the same step and field.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.inbox.journey_form import (
    CONDITIONS,
    STEP_KINDS,
    TRIGGER_KINDS,
    apply_action,
    definition_values,
    form_definition,
    step_count,
    step_index_of,
)
from bot.inbox.journey_preview import preview_journey
from bot.inbox.views.common import FORM, USER, redirect, render, signed_in
from bot.inbox.views.faq import owner_only, reader_locale
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from bot.store.tables import MessageTemplate
from bot.web.numbers import path_id
from carts.coupon_tables import Coupon
from carts.coupons import fetch_signup_coupon, set_signup_coupon
from carts.payments import fetch_shop_payments
from carts.tables import ShopInfo
from crm_bridge.attribution import fetch_attributions, journey_figures
from crm_bridge.journey_library import READY_MADE, ready_made_definition
from crm_bridge.journey_rules import JourneyError, JourneyErrorCode
from crm_bridge.journey_tables import Journey, JourneyRun, JourneyVersion
from crm_bridge.journeys import (
    fetch_journey,
    fetch_journeys,
    fetch_run_history,
    fetch_run_messages,
    fetch_runs,
    save_journey,
    set_enabled,
    validate_journey,
)
from crm_bridge.program import fetch_program
from crm_bridge.segment_tables import SavedSegment
from crm_bridge.segments import fetch_cuts, fetch_zone
from crm_bridge.surveys import fetch_answer, survey_summary
from crm_bridge.tables import Member

routes = web.RouteTableDef()

# Each refusal of crm_bridge.journey_rules in the reader's words (python-side msgids; the catalog has them).
ERROR_TEXTS = {
    JourneyErrorCode.NOT_AN_OBJECT: "This is not a journey.",
    JourneyErrorCode.UNKNOWN_FIELD: "This field is not part of a journey.",
    JourneyErrorCode.MISSING_FIELD: "Fill this in.",
    JourneyErrorCode.BAD_VALUE: "This value is not right here.",
    JourneyErrorCode.UNKNOWN_TRIGGER: "Choose what starts the journey.",
    JourneyErrorCode.UNKNOWN_KIND: "Choose what this step does.",
    JourneyErrorCode.NO_STEPS: "Add at least one step.",
    JourneyErrorCode.TOO_MANY_STEPS: "A journey has at most 50 steps.",
    JourneyErrorCode.MISSING_ID: "Give this step a name.",
    JourneyErrorCode.DUPLICATE_ID: "Another step has this name already.",
    JourneyErrorCode.UNKNOWN_STEP: "No step has this name.",
    JourneyErrorCode.LOOPS: "A branch may only jump to a later step: this one would loop.",
    JourneyErrorCode.BAD_WAIT: "Wait at least one hour.",
    JourneyErrorCode.WAITS_FOREVER: (
        "This wait never ends in anything: wait at most 365 days, and do something after it."
    ),
    JourneyErrorCode.BAD_HOUR: "The hour is 0 to 23.",
    JourneyErrorCode.BAD_WEEKDAY: "Choose a day of the week.",
    JourneyErrorCode.EMPTY_TEXT: "Write the message in at least one language.",
    JourneyErrorCode.TEXT_TOO_LONG: "A message has at most 2,000 characters.",
    JourneyErrorCode.UNKNOWN_PLACEHOLDER: "Use only the placeholders listed, each in braces like {name}.",
    JourneyErrorCode.UNAPPROVED_TEMPLATE: "Meta has not approved this template for the Page.",
    JourneyErrorCode.TEMPLATE_WITHOUT_UPDATE: "A template is only for news of the member's order: tick that first.",
    JourneyErrorCode.UNKNOWN_SEGMENT: "No such segment.",
    JourneyErrorCode.UNKNOWN_COUPON: "No such coupon.",
    JourneyErrorCode.BAD_TAG: "A tag is 1 to 40 characters.",
}
_STEP_FIELD = {  # a refusal's field → the editor's input of that step
    "if.segment": "if_value",
    "if.tag": "if_value",
    "if.ordered_within_days": "if_value",
    "if.ordered_since_start": "if",
    "text": "text.en",
}
KEY_TAKEN = "Another journey has this short name."
KEY_WORDS = "A short name is 1 to 60 lowercase letters, digits, - or _, starting with a letter or digit."
PLACEHOLDERS = ("name", "shop", "coupon_code", "coupon_terms", "points", "tier", "survey_link", "order_ref")


def shown_error(locale: str, values: dict[str, str], error: JourneyError) -> dict[str, Any]:
    """Where the page shows a refusal (the step's row and input, or a journey-wide field) and its words."""
    text = gettext(locale, ERROR_TEXTS.get(error.code, "This value is not right here."))
    field = error.field or ""
    if field == "key":  # the journey's own short name (links, the API): its own words
        taken = error.code is JourneyErrorCode.DUPLICATE_ID
        return {"row": None, "field": "key", "problem": gettext(locale, KEY_TAKEN if taken else KEY_WORDS)}
    row = step_index_of(values, error.step_id)
    if row is None and field.startswith("steps["):  # a step without a usable id: `steps[2].id`
        position, _, rest = field.partition("].")
        row, field = int(position.removeprefix("steps[")), rest
    if row is not None:
        base = field.split("[", 1)[0]
        return {"row": row, "field": f"steps[{row}].{_STEP_FIELD.get(field, base or 'kind')}", "problem": text}
    if field == "steps":
        return {"row": None, "field": "steps", "problem": text}
    return {"row": None, "field": field or "trigger.kind", "problem": text}


async def _approved_templates(session: Any) -> set[str]:
    rows = await session.execute(select(MessageTemplate.name).where(MessageTemplate.status == "approved"))
    return set(rows.scalars())


async def _choices(session: Any) -> dict[str, Any]:
    """What the editor's selects offer: segments, coupons, tiers, approved templates."""
    segments = (await session.execute(select(SavedSegment.id, SavedSegment.name).order_by(SavedSegment.name))).all()
    coupons = (
        await session.execute(
            select(Coupon.id, Coupon.title, Coupon.code).where(Coupon.stopped_at.is_(None)).order_by(Coupon.id)  # type: ignore[union-attr]
        )
    ).all()
    program = await fetch_program(session)
    return {
        "segments": [(s.id, s.name) for s in segments],
        "coupons": [(c.id, c.title, c.code) for c in coupons],
        "tiers": [(t.key, t.name) for t in program.tiers],
        "templates": sorted(await _approved_templates(session)),
    }


async def _editor(
    request: web.Request,
    journey: Journey | None,
    values: dict[str, str],
    *,
    status: int = 200,
    error: JourneyError | None = None,
    preview: bool = True,
) -> web.Response:
    locale = await reader_locale(request)
    now = utcnow()
    result = None
    async with request.app[READ_SESSIONS]() as session:
        if preview and error is None:
            try:
                parsed = await validate_journey(
                    session, form_definition(values), approved_templates=await _approved_templates(session)
                )
            except JourneyError as exc:
                error, status = exc, 400 if values.get("_action") == "preview" else status
            else:
                shop_locale = (await fetch_shop_payments(session)).language or "en"
                result = await preview_journey(
                    session, parsed, now, shop_tz=await fetch_zone(session), shop_locale=shop_locale
                )
        choices = await _choices(session)
        version = None
        if journey is not None and journey.current_version_id:
            version = await session.get(JourneyVersion, journey.current_version_id)
    shown = None if error is None else shown_error(locale, values, error)
    return await render(
        request,
        "journey_editor.html",
        status,
        journey=journey,
        version=version,
        values=values,
        steps=step_count(values),
        step_kinds=STEP_KINDS,
        trigger_kinds=TRIGGER_KINDS,
        conditions=CONDITIONS,
        placeholders=PLACEHOLDERS,
        error=shown,
        preview=result,
        **choices,
    )


async def _journey(request: web.Request) -> Journey:
    async with request.app[READ_SESSIONS]() as session:
        journey = await fetch_journey(session, request.match_info["key"])
    if journey is None:
        raise web.HTTPNotFound(text="no such journey\n")
    return journey


def _translate(locale: str, msgid: str) -> str:
    return gettext(locale, msgid)


async def add_playbook(session: Any, now: Any, coupon_id: int | None, by: str | None) -> list[str]:
    """The ready-made journeys the shop has not added yet, added OFF; the keys added. Without a `coupon_id`
    they carry the shop's sign-up coupon (the coupon page's setting), if it has one."""
    if coupon_id is None:
        signup = await fetch_signup_coupon(session)
        coupon_id = signup.id if signup is not None else None
    have = {j.ready_made for j in await fetch_journeys(session)} | {j.key for j in await fetch_journeys(session)}
    definitions = await _ready_made_definitions(session, coupon_id)
    templates = await _approved_templates(session)
    added = []
    for made in READY_MADE:
        if made.key.value in have:
            continue
        definition = definitions[made.key.value]
        name = made.name  # the English msgid; the list shows a ready-made journey's name in the reader's words
        await save_journey(
            session,
            made.key.value.replace("_", "-"),
            name,
            definition,
            approved_templates=templates,
            by=by,
            now=now,
            ready_made=made.key.value,
        )
        added.append(made.key.value)
    return added


@routes.get("/inbox/journeys")
@signed_in
async def journeys_page(request: web.Request) -> web.Response:
    owner_only(request)
    async with request.app[SESSIONS]() as session, session.begin():
        if not await fetch_journeys(session):  # first use: the playbook is there to read, every journey off
            await add_playbook(session, utcnow(), None, request[USER].name)
    async with request.app[READ_SESSIONS]() as session:
        journeys = await fetch_journeys(session)
        figures = await journey_figures(session)
        versions = {
            v.id: v
            for v in (
                await session.execute(
                    select(JourneyVersion).where(JourneyVersion.id.in_([j.current_version_id for j in journeys]))  # type: ignore[union-attr]
                )
            ).scalars()
        }
        surveys = {j.id: await survey_summary(session, j.id or 0, comments=0) for j in journeys}
        coupons = (await _choices(session))["coupons"]
        missing = [m for m in READY_MADE if m.key.value not in {j.ready_made for j in journeys}]
        currency = (await session.get(ShopInfo, 1) or ShopInfo()).currency
    rows = []
    for journey in journeys:
        version = versions.get(journey.current_version_id)
        definition = json.loads(version.definition) if version else {}
        rows.append(
            {
                "journey": journey,
                "version": version,
                "trigger": definition.get("trigger", {}),
                "figures": figures.get(journey.id or 0),
                "survey": surveys.get(journey.id),
            }
        )
    return await render(
        request,
        "journeys.html",
        rows=rows,
        playbook={m.key.value: m for m in READY_MADE},
        missing=missing,
        coupons=coupons,
        currency=currency,
        saved=request.query.get("saved"),
        version_saved=request.query.get("version"),
    )


@routes.post("/inbox/journeys/playbook")
@signed_in
async def playbook(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    typed = str(request[FORM].get("coupon", "")).strip()
    async with request.app[SESSIONS]() as session, session.begin():
        coupon_id = int(typed) if typed.isdigit() else None
        if coupon_id is not None and await session.get(Coupon, coupon_id) is None:
            raise web.HTTPBadRequest(text="coupon: no such coupon\n")
        await add_playbook(session, utcnow(), coupon_id, request[USER].name)
    return redirect("/inbox/journeys?saved=playbook")


SIGNUP_COUPON_TITLE = "Sign-up gift: 10% off"


async def _ready_made_definitions(session: Any, coupon_id: int | None) -> dict[str, dict[str, Any]]:
    cuts = await fetch_cuts(session)
    program = await fetch_program(session)
    return {
        made.key.value: ready_made_definition(
            made.key,
            translate=_translate,
            coupon_id=coupon_id if made.uses_coupon else None,
            lapse_days=cuts.lapse_days,
            birthday_points=program.birthday_points,
        )
        for made in READY_MADE
    }


@routes.post("/inbox/journeys/signup-coupon")
@signed_in
async def make_signup_coupon(request: web.Request) -> web.StreamResponse:
    """A shop without a coupon: one with sensible terms (10% off, once per member, a code each), put in the
    playbook's journeys that send a code and are as the playbook wrote them (an edited one is left alone)."""
    owner_only(request)
    locale = await reader_locale(request)
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        coupon = Coupon(
            title=gettext(locale, SIGNUP_COUPON_TITLE),
            kind="percent",
            value=Decimal(10),
            per_shopper_limit=1,
            source="signup",
            created_at=now,
            updated_at=now,
        )
        session.add(coupon)
        await session.flush()
        if await fetch_signup_coupon(session) is None:  # new members get it with the bot's welcome too
            await set_signup_coupon(session, coupon.id, now)
        without = await _ready_made_definitions(session, None)
        with_coupon = await _ready_made_definitions(session, coupon.id)
        templates = await _approved_templates(session)
        for journey in await fetch_journeys(session):
            made = next((m for m in READY_MADE if m.key.value == journey.ready_made and m.uses_coupon), None)
            version = (
                await session.get(JourneyVersion, journey.current_version_id) if journey.current_version_id else None
            )
            if made is None or version is None:
                continue
            unedited = json.loads(version.definition) == without[made.key.value]
            if unedited:
                await save_journey(
                    session,
                    journey.key,
                    journey.name,
                    with_coupon[made.key.value],
                    approved_templates=templates,
                    by=request[USER].name,
                    now=now,
                )
    return redirect("/inbox/journeys?saved=coupon")


@routes.get("/inbox/journeys/new")
@signed_in
async def new_journey(request: web.Request) -> web.Response:
    owner_only(request)
    values = {"trigger.kind": "joined", "attribution_days": "7", "steps[0].id": "send1", "steps[0].kind": "send"}
    return await _editor(request, None, values, preview=False)


@routes.get("/inbox/journeys/{key}")
@signed_in
async def edit_journey(request: web.Request) -> web.Response:
    owner_only(request)
    journey = await _journey(request)
    async with request.app[READ_SESSIONS]() as session:
        version = await session.get(JourneyVersion, journey.current_version_id) if journey.current_version_id else None
    values = definition_values(json.loads(version.definition) if version else {})
    values |= {"name": journey.name, "key": journey.key}
    return await _editor(request, journey, values)


async def _post(request: web.Request, journey: Journey | None) -> web.StreamResponse:
    form = request[FORM]
    values = {key: str(value) for key, value in form.items() if key != "csrf" and isinstance(value, str)}
    action = values.pop("action", "save")
    if journey is not None:
        values["key"] = journey.key
    changed = apply_action(values, action)
    if changed is not None:
        return await _editor(request, journey, changed)
    if action == "preview":
        return await _editor(request, journey, values | {"_action": "preview"})
    key = values.get("key", "").strip().lower()
    now = utcnow()
    async with request.app[SESSIONS]() as session, session.begin():
        before = journey.current_version_id if journey else None
        if journey is None and await fetch_journey(session, key) is not None:
            # A new journey's short name taken by another: saving would edit that one. Nothing changed.
            error = JourneyError(JourneyErrorCode.DUPLICATE_ID, None, "key")
            return await _editor(request, None, values, status=400, error=error, preview=False)
        try:
            saved = await save_journey(
                session,
                key,
                values.get("name", ""),
                form_definition(values),
                approved_templates=await _approved_templates(session),
                by=request[USER].name,
                now=now,
            )
        except JourneyError as exc:
            await session.rollback()
            return await _editor(request, journey, values, status=400, error=exc, preview=False)
        version = await session.get(JourneyVersion, saved.current_version_id)
        number = version.number if version else 1
        new_version = saved.current_version_id != before
    query = f"saved={saved.key}" + (f"&version={number}" if new_version else "")
    return redirect(f"/inbox/journeys?{query}")


@routes.post("/inbox/journeys/new")
@signed_in
async def create_journey(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    return await _post(request, None)


@routes.post("/inbox/journeys/{key}")
@signed_in
async def update_journey(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    return await _post(request, await _journey(request))


@routes.post("/inbox/journeys/{key}/enabled")
@signed_in
async def switch_journey(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    journey = await _journey(request)
    wanted = str(request[FORM].get("enabled", "")) == "1"
    async with request.app[SESSIONS]() as session, session.begin():
        await set_enabled(session, journey.key, wanted, utcnow())
    return redirect(f"/inbox/journeys?saved={journey.key}")


async def _members(session: Any, ids: set[int]) -> dict[int, Member]:
    if not ids:
        return {}
    rows = await session.execute(select(Member).where(Member.id.in_(ids)))  # type: ignore[union-attr]
    return {m.id: m for m in rows.scalars()}


@routes.get("/inbox/journeys/{key}/runs")
@signed_in
async def journey_runs(request: web.Request) -> web.Response:
    owner_only(request)
    journey = await _journey(request)
    async with request.app[READ_SESSIONS]() as session:
        runs = await fetch_runs(session, journey_id=journey.id)
        versions = {
            v.id: v.number
            for v in (
                await session.execute(select(JourneyVersion).where(JourneyVersion.journey_id == journey.id))
            ).scalars()
        }
        summary = await survey_summary(session, journey.id or 0)
        credited = await fetch_attributions(session, journey.id or 0)
        figures = (await journey_figures(session, [journey.id or 0])).get(journey.id or 0)
        members = await _members(session, {r.member_id for r in runs} | {c.member_id for c in summary.comments})
        currency = (await session.get(ShopInfo, 1) or ShopInfo()).currency
    return await render(
        request,
        "journey_runs.html",
        journey=journey,
        runs=runs,
        versions=versions,
        summary=summary,
        credited=credited,
        figures=figures,
        members=members,
        currency=currency,
    )


@routes.get(r"/inbox/journeys/runs/{id:\d+}")
@signed_in
async def run_page(request: web.Request) -> web.Response:
    owner_only(request)
    run_id = path_id(request)
    async with request.app[READ_SESSIONS]() as session:
        run = None if run_id is None else await session.get(JourneyRun, run_id)
        if run is None:
            raise web.HTTPNotFound(text="no such run\n")
        journey = await session.get(Journey, run.journey_id)
        version = await session.get(JourneyVersion, run.version_id)
        history = await fetch_run_history(session, run.id or 0)
        messages = await fetch_run_messages(session, run.id or 0)
        answers = {m.id: await fetch_answer(session, m.id or 0) for m in messages if m.survey}
        member = await session.get(Member, run.member_id)
    return await render(
        request,
        "journey_run.html",
        run=run,
        journey=journey,
        version=version,
        history=[(event, json.loads(event.detail or "{}")) for event in history],
        messages=messages,
        answers=answers,
        member=member,
        context=json.loads(run.context or "{}"),
    )
