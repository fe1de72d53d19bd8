"""The console's Segments page (issue 21, owners) and the buyer panel's tags (everyone in the inbox).

    GET  /inbox/segments                    the segments with their counts, the lapse threshold
    GET  /inbox/segments/new                the builder, empty
    GET  /inbox/segments/{id}               the builder with the segment, its count and preview
    POST /inbox/segments/new, /inbox/segments/{id}
                                            action=preview (count and first 20 members of the form as
                                            typed, nothing saved), add_match / add_exclude (one more row),
                                            save (303 to the list), or 400 with the problem beside its row
    POST /inbox/segments/{id}/delete        delete it
    POST /inbox/segments/settings           the shop's lapse threshold (days, or empty for the derived one)
    POST /inbox/c/{id}/member/tags          tag the conversation's member by hand (`tag`)
    POST /inbox/c/{id}/member/tags/remove   take a tag off (`tag`)

The builder's rows become the admin API's JSON body (`bot.web.segments_api.apply_segment`), so the page and
`POST /api/segments` refuse the same things and name the same fields.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from bot.inbox.views.common import (
    FORM,
    USER,
    back_to,
    form_field,
    load_conversation,
    redirect,
    render,
    render_conversation,
    signed_in,
)
from bot.inbox.views.faq import owner_only, problem_text, reader_locale
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import INBOX_PUBLISHER, READ_SESSIONS, SESSIONS
from bot.web.numbers import path_id
from bot.web.segments_api import apply_segment, read_definition
from carts.tables import ShopInfo
from crm_bridge.members import fetch_member_by_psid
from crm_bridge.program import fetch_program
from crm_bridge.segment_rules import SegmentError, parse_lapse_days
from crm_bridge.segment_tables import SavedSegment
from crm_bridge.segments import (
    count_segment,
    delete_segment,
    fetch_cuts,
    fetch_segments,
    preview_segment,
    refresh_member_segments,
    segment_definition,
    set_shop_lapse_days,
    tag_member,
    untag_member,
)

routes = web.RouteTableDef()
MIN_ROWS = 2
MAX_ROWS = 30
# Each test the builder offers: `field:op`, and whether its value is a list (comma-separated in the box).
TESTS: tuple[tuple[str, bool], ...] = (
    ("tags:any", True),
    ("tags:all", True),
    ("tags:none", True),
    ("napl:in", True),
    ("nes:in", True),
    ("r_score:min", False),
    ("r_score:max", False),
    ("f_score:min", False),
    ("f_score:max", False),
    ("m_score:min", False),
    ("m_score:max", False),
    ("total_spend:min", False),
    ("total_spend:max", False),
    ("order_count:min", False),
    ("order_count:max", False),
    ("last_order:within_days", False),
    ("last_order:not_within_days", False),
    ("last_order:before", False),
    ("last_order:after", False),
    ("tier:in", True),
    ("product:any", True),
    ("campaign:any", True),
    ("channel:any", True),
    ("birthday_month:in", True),
)
_LISTS = {key for key, is_list in TESTS if is_list}
_SPLIT = re.compile(r"\s*[,，、]\s*")
# The states and channels as the Chinese labels name them, typed in the value box: read as their keys.
_WORDS = {"新客": "new", "活躍": "active", "沉寂": "passive", "流失": "lapsed", "既有客": "existing"}
_WORDS |= {"沉睡客": "sleeping", "留言": "comment"}
_WORDED = ("napl:in", "nes:in", "channel:any")

# The refusals of crm_bridge.segment_rules that carry a value, in the reader's language.
_PATTERNS = (
    (re.compile(r"unknown field (?P<name>'.*')"), "unknown field {name}"),
    (re.compile(r"must be one of (?P<values>.*) for (?P<field>\w+)"), "must be one of {values}"),
    (re.compile(r"must be one of (?P<values>.*)"), "must be one of {values}"),
    (re.compile(r"must have at most (?P<n>\d+) (values|conditions)"), "must have at most {n} values"),
    (
        re.compile(r"must be a whole number from (?P<low>\d+) to (?P<high>\d+), or auto"),
        "must be a whole number of days from {low} to {high}, or empty",
    ),
)


def _problem(locale: str, problem: str) -> str:
    for pattern, msgid in _PATTERNS:
        if found := pattern.fullmatch(problem):
            return gettext(locale, msgid, **{k: v for k, v in found.groupdict().items() if k != "field"})
    return problem_text(locale, problem)


def _rows(values: dict[str, str], part: str) -> int:
    try:
        wanted = int(values.get(f"{part}_rows", "0"))
    except ValueError:
        wanted = 0
    used = 1 + max((i for i in range(MAX_ROWS) if values.get(f"{part}[{i}].test")), default=-1)
    return min(MAX_ROWS, max(wanted, used, MIN_ROWS if part == "match" else 1))


def definition_values(definition: dict[str, Any]) -> dict[str, str]:
    """A stored definition as the builder's inputs hold it."""
    values: dict[str, str] = {}
    for part in ("match", "exclude"):
        for i, cond in enumerate(definition.get(part, [])):
            value = cond["value"]
            values[f"{part}[{i}].test"] = f"{cond['field']}:{cond['op']}"
            values[f"{part}[{i}].value"] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return values


def form_definition(values: dict[str, str]) -> dict[str, Any]:
    """The builder's rows as the API's definition JSON (a row without a test is left out; its index kept
    for the field names, so an error points at the row as the reader sees it)."""
    out: dict[str, Any] = {"version": 1, "match": [], "exclude": []}
    for part in ("match", "exclude"):
        for i in range(_rows(values, part)):
            test = values.get(f"{part}[{i}].test", "")
            if not test:
                continue
            field, _, op = test.partition(":")
            text = values.get(f"{part}[{i}].value", "").strip()
            value: Any = [v for v in _SPLIT.split(text) if v] if test in _LISTS else text
            if test in _WORDED:
                value = [_WORDS.get(v, v.lower()) for v in value]
            out[part].append({"field": field, "op": op, "value": value})
    return out


def _row_of(values: dict[str, str], field: str) -> str:
    """The builder input an API field names: `definition.match[1].value[0]` is the box of the second
    test typed (rows left empty are skipped by `form_definition`)."""
    found = re.match(r"definition\.(match|exclude)\[(\d+)\]\.(\w+)", field)
    if not found:
        return field.removeprefix("definition.")
    part, nth, what = found.group(1), int(found.group(2)), found.group(3)
    filled = [i for i in range(_rows(values, part)) if values.get(f"{part}[{i}].test")]
    row = filled[nth] if nth < len(filled) else nth
    return f"{part}[{row}].{'test' if what in ('field', 'op') else 'value'}"


async def _builder(
    request: web.Request,
    segment: SavedSegment | None,
    values: dict[str, str],
    *,
    status: int = 200,
    error: SegmentError | None = None,
    preview: bool = True,
) -> web.Response:
    now = utcnow()
    count, rows = None, []
    async with request.app[READ_SESSIONS]() as session:
        program = await fetch_program(session)
        if preview and error is None:
            try:
                definition = await read_definition(session, form_definition(values))
            except SegmentError as exc:
                error = exc
                status = 400
            else:
                count = await count_segment(session, definition, now)
                rows = await preview_segment(session, definition, now)
        cuts = await fetch_cuts(session)
        shop = await session.get(ShopInfo, 1)
    locale = await reader_locale(request)
    shown = (
        None if error is None else {"field": _row_of(values, error.field), "problem": _problem(locale, error.problem)}
    )
    return await render(
        request,
        "segments_builder.html",
        status,
        segment=segment,
        values=values,
        match_rows=_rows(values, "match"),
        exclude_rows=_rows(values, "exclude"),
        tests=[key for key, _ in TESTS],
        list_tests=_LISTS,
        tiers=program.tiers,
        error=shown,
        count=count,
        rows=rows,
        cuts=cuts,
        currency=shop.currency if shop else "HKD",
    )


@routes.get("/inbox/segments")
@signed_in
async def segments_page(request: web.Request) -> web.Response:
    owner_only(request)
    now = utcnow()
    async with request.app[READ_SESSIONS]() as session:
        listed = [(s, await count_segment(session, segment_definition(s), now)) for s in await fetch_segments(session)]
        cuts = await fetch_cuts(session)
    return await render(
        request,
        "segments.html",
        segments=listed,
        cuts=cuts,
        values={"lapse_days": "" if cuts.shop_lapse_days is None else str(cuts.shop_lapse_days)},
        error=None,
        saved=request.query.get("saved"),
    )


@routes.post("/inbox/segments/settings")
@signed_in
async def save_settings(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    typed = form_field(request, "lapse_days")
    try:
        days = parse_lapse_days(typed)
    except SegmentError as exc:
        locale = await reader_locale(request)
        now = utcnow()
        async with request.app[READ_SESSIONS]() as session:
            listed = [
                (s, await count_segment(session, segment_definition(s), now)) for s in await fetch_segments(session)
            ]
            cuts = await fetch_cuts(session)
        error = {"field": "lapse_days", "problem": _problem(locale, exc.problem)}
        return await render(
            request,
            "segments.html",
            400,
            segments=listed,
            cuts=cuts,
            values={"lapse_days": typed},
            error=error,
            saved=None,
        )
    async with request.app[SESSIONS]() as session, session.begin():
        await set_shop_lapse_days(session, days, utcnow())
    return redirect("/inbox/segments?saved=settings")


async def _segment(request: web.Request) -> SavedSegment:
    segment_id = path_id(request)
    async with request.app[READ_SESSIONS]() as session:
        segment = None if segment_id is None else await session.get(SavedSegment, segment_id)
    if segment is None:
        raise web.HTTPNotFound(text="no such segment\n")
    return segment


@routes.get("/inbox/segments/new")
@signed_in
async def new_segment(request: web.Request) -> web.Response:
    owner_only(request)
    return await _builder(request, None, {}, preview=False)


@routes.get(r"/inbox/segments/{id:\d+}")
@signed_in
async def edit_segment(request: web.Request) -> web.Response:
    owner_only(request)
    segment = await _segment(request)
    values = {
        "name": segment.name,
        "tag_on_entry": segment.tag_on_entry or "",
        **definition_values(json.loads(segment.definition)),
    }
    return await _builder(request, segment, values)


async def _post(request: web.Request, segment: SavedSegment | None) -> web.StreamResponse:
    form = request[FORM]
    values = {key: str(value) for key, value in form.items() if key != "csrf" and isinstance(value, str)}
    action = values.pop("action", "save")
    if action in ("add_match", "add_exclude"):
        part = action.removeprefix("add_")
        values[f"{part}_rows"] = str(_rows(values, part) + 1)
        return await _builder(request, segment, values)
    if action == "preview":
        return await _builder(request, segment, values)
    body = {
        "name": values.get("name", ""),
        "definition": form_definition(values),
        "tag_on_entry": values.get("tag_on_entry") or None,
    }
    async with request.app[SESSIONS]() as session, session.begin():
        try:
            saved = await apply_segment(session, body, utcnow(), None if segment is None else segment.id)
        except SegmentError as exc:
            await session.rollback()
            return await _builder(request, segment, values, status=400, error=exc, preview=False)
    return redirect(f"/inbox/segments?saved={saved.id}")


@routes.post("/inbox/segments/new")
@signed_in
async def create_segment(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    return await _post(request, None)


@routes.post(r"/inbox/segments/{id:\d+}")
@signed_in
async def update_segment(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    return await _post(request, await _segment(request))


@routes.post(r"/inbox/segments/{id:\d+}/delete")
@signed_in
async def remove_segment(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    segment = await _segment(request)
    async with request.app[SESSIONS]() as session, session.begin():
        await delete_segment(session, segment.id or 0)
    return redirect("/inbox/segments?saved=deleted")


# --- the buyer panel's tags ---------------------------------------------------------------------------


async def _tag_post(request: web.Request, remove: bool) -> web.StreamResponse:
    user = request[USER]
    typed = form_field(request, "tag")
    async with request.app[SESSIONS]() as session, session.begin():
        conversation = await load_conversation(request, session)
        member = await fetch_member_by_psid(session, conversation.page_id, conversation.psid)
        if member is None:
            raise web.HTTPConflict(text="the shopper is no member yet: make them one first\n")
        if remove:
            await untag_member(session, member.id or 0, typed, utcnow())
        else:
            try:
                await tag_member(session, member.id or 0, typed, "hand", utcnow(), user.name)
            except SegmentError as exc:
                await session.rollback()
                locale = await reader_locale(request)
                return await render_conversation(request, 400, tag_error=_problem(locale, exc.problem))
        await refresh_member_segments(session, member.id or 0, utcnow())  # a tag can put them in a segment
    await request.app[INBOX_PUBLISHER].publish("member", conversation.page_id, conversation.psid)
    return back_to(conversation.id or 0, "#member-segments")


@routes.post(r"/inbox/c/{id:\d+}/member/tags")
@signed_in
async def add_tag(request: web.Request) -> web.StreamResponse:
    return await _tag_post(request, remove=False)


@routes.post(r"/inbox/c/{id:\d+}/member/tags/remove")
@signed_in
async def remove_tag(request: web.Request) -> web.StreamResponse:
    return await _tag_post(request, remove=True)
