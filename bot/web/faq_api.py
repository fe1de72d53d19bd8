"""Admin JSON API for a Page's keyword FAQ (issue 6). Same conventions as `bot.web.shop_api`:
`Authorization: Bearer <admin token>`, bad input 4xx with `{"error": "..."}` and nothing changed.

    GET    /api/pages/{page_id}/faq                   {"page_id", "welcome", "fallback", "rules": [...]}
    POST   /api/pages/{page_id}/faq/test              {"text": "..."} → the answering rule and why
    GET    /api/pages/{page_id}/faq/{key}             one rule
    PUT    /api/pages/{page_id}/faq/{key}             create (201) or replace (200) a rule: keywords, match,
                                                      priority, reply, quick_replies, buttons
    DELETE /api/pages/{page_id}/faq/{key}             delete it (409 while another rule's button names it)

A later `plusone load` or `PUT /api/shop` whose file has a `faq:` section for the Page sets its rules
back to the file's.
"""

from __future__ import annotations

from aiohttp import web

from bot.services import SESSIONS
from bot.store.faq_rules import PageFaqInfo, delete_rule, fetch_page_faq, rule_to_dict, save_rule
from bot.web.json_api import fail as _fail
from bot.web.json_api import path_page_id, read_json_object
from bot.web.json_api import respond as _json
from config.faq_file import FAQ_RULE_FIELDS, parse_faq_rule_json
from parsers.faq import FaqRule, match_faq

routes = web.RouteTableDef()
TEST_BODY = 'the body must be {"text": "..."}'
RULE_BODY = f"body: must be a JSON object with {', '.join(FAQ_RULE_FIELDS)}"  # as parse_faq_rule_json says


def _targets(rule: FaqRule) -> list[tuple[str, str]]:
    """(field, rule key) of every quick reply and button that answers with another rule."""
    quick = [(f"quick_replies[{i}].rule", q.rule) for i, q in enumerate(rule.reply.quick_replies)]
    buttons = [(f"buttons[{i}].rule", b.rule) for i, b in enumerate(rule.reply.buttons) if b.rule is not None]
    return quick + buttons


def target_problem(faq: PageFaqInfo, rule: FaqRule) -> str | None:
    """ "field: problem" when one of the rule's quick replies or buttons names a rule the Page has not
    (the console's FAQ page checks the same)."""
    known = {r.key for r in faq.rules} | {rule.key}
    for field_name, target in _targets(rule):
        if target not in known:
            return f"{field_name}: Page {faq.page_id} has no FAQ rule {target!r}"
    return None


def delete_problem(faq: PageFaqInfo, key: str) -> str | None:
    """Why the rule `key` may not go yet: another rule's quick reply or button answers with it."""
    for other in faq.rules:
        named = [field_name for field_name, target in _targets(other) if target == key and other.key != key]
        if named:
            return f"rule {other.key!r} answers with {key!r} ({named[0]}): change it first"
    return None


@routes.get("/api/pages/{page_id}/faq")
async def get_faq(request: web.Request) -> web.Response:
    page_id = path_page_id(request)
    async with request.app[SESSIONS]() as session:
        faq = await fetch_page_faq(session, page_id)
    return _json(
        {
            "page_id": page_id,
            "welcome": faq.welcome,
            "fallback": faq.fallback,
            "rules": [rule_to_dict(rule) for rule in faq.rules],
        }
    )


@routes.post("/api/pages/{page_id}/faq/test")
async def test_faq(request: web.Request) -> web.Response:
    """Which rule would answer a message, and why: `plusone faq-test` against the stored rules."""
    page_id = path_page_id(request)
    body = await read_json_object(request, expected=TEST_BODY)
    if not isinstance(body.get("text"), str) or set(body) != {"text"}:
        _fail(web.HTTPBadRequest, TEST_BODY)
    async with request.app[SESSIONS]() as session:
        faq = await fetch_page_faq(session, page_id)
    found = match_faq(faq.rules, body["text"])
    return _json({"rule": found.rule.key if found.rule else None, "explanation": found.explain()})


@routes.get("/api/pages/{page_id}/faq/{key}")
async def get_rule(request: web.Request) -> web.Response:
    page_id, key = path_page_id(request), request.match_info["key"]
    async with request.app[SESSIONS]() as session:
        rule = (await fetch_page_faq(session, page_id)).rule(key)
    if rule is None:
        _fail(web.HTTPNotFound, f"Page {page_id} has no FAQ rule {key!r}")
    return _json(rule_to_dict(rule))


@routes.put("/api/pages/{page_id}/faq/{key}")
async def put_rule(request: web.Request) -> web.Response:
    page_id, key = path_page_id(request), request.match_info["key"]
    try:
        rule = parse_faq_rule_json(await read_json_object(request, expected=RULE_BODY), key)
    except ValueError as exc:
        _fail(web.HTTPBadRequest, str(exc))
    async with request.app[SESSIONS]() as session, session.begin():
        faq = await fetch_page_faq(session, page_id)
        if problem := target_problem(faq, rule):
            _fail(web.HTTPBadRequest, problem)
        created = await save_rule(session, page_id, rule)
    return _json(rule_to_dict(rule), status=201 if created else 200)


@routes.delete("/api/pages/{page_id}/faq/{key}")
async def remove_rule(request: web.Request) -> web.Response:
    page_id, key = path_page_id(request), request.match_info["key"]
    async with request.app[SESSIONS]() as session, session.begin():
        faq = await fetch_page_faq(session, page_id)
        if faq.rule(key) is None:
            _fail(web.HTTPNotFound, f"Page {page_id} has no FAQ rule {key!r}")
        if problem := delete_problem(faq, key):
            _fail(web.HTTPConflict, problem)
        await delete_rule(session, page_id, key)
    return _json({"deleted": key})
