"""The console's FAQ page (issue 19, owners): a Page's keyword rules, created, edited and deleted in the
browser, with `plusone faq-test`'s explanation beside the form.

    GET  /inbox/faq[?page=]                  the Page's rules, a form for a new one, the tester
    GET  /inbox/faq/{key}[?page=]            one rule's form
    POST /inbox/faq                          save (create or replace) a rule, or (action=test) try a sample
                                             message against the rules with the form's rule as typed
    POST /inbox/faq/{key}/delete             delete it (refused while another rule's button answers with it)

A rule is read by `config.faq_file.parse_faq_rule_json` and checked against the Page's other rules by
`bot.web.faq_api`'s checks, so the shop file, the admin API and this page refuse the same things. Keywords
are typed in two boxes, English and Chinese (one per line or comma-separated); the rule keeps them as one
list. A rule's quick replies and buttons are kept as they are (the file or the API sets them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.inbox.views.common import USER, form_field, redirect, render, signed_in
from bot.replies.i18n import gettext, pick_locale
from bot.services import READ_SESSIONS, SESSIONS
from bot.store.faq_rules import PageFaqInfo, delete_rule, fetch_page_faq, rule_to_dict, save_rule
from bot.web.faq_api import delete_problem, target_problem
from carts.payments import fetch_shop_payments
from config.faq_file import parse_faq_rule_json
from parsers.faq import FaqMatch, FaqRule, MatchMode, is_agent_request, match_faq

routes = web.RouteTableDef()
_HAN = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]")
_SPLIT = re.compile(r"[\n,，、;；]+")
SAMPLE_MAX = 2000


def owner_only(request: web.Request) -> None:
    """Managing the shop is an owner's work: an agent gets the 403 page."""
    if not request[USER].is_owner:
        raise web.HTTPForbidden(text="only an owner may manage the shop\n")


# The shop file's refusals (config/) are English; the console shows them in the reader's language. Most
# are fixed texts (each its own msgid); these carry a value, kept as it is.
_PROBLEM_PATTERNS = (
    (
        re.compile(r"must be a whole number from (?P<low>-?\d+) to (?P<high>-?\d+)"),
        "must be a whole number from {low} to {high}",
    ),
    (
        re.compile(r"unknown time zone (?P<name>'.*') \(use an IANA name like Asia/Hong_Kong\)"),
        "unknown time zone {name} (use an IANA name like Asia/Hong_Kong)",
    ),
    (re.compile(r"must be at most (?P<n>\d+) characters"), "must be at most {n} characters"),
    (re.compile(r"must be 1 to (?P<n>\d+) characters"), "must be 1 to {n} characters"),
    (
        re.compile(r"must be at most the tier's spend \((?P<spend>[\d.]+)\)"),
        "must be at most the tier's spend ({spend})",
    ),
    (re.compile(r"duplicate key (?P<key>'.*')"), "duplicate key {key}"),
    (
        re.compile(r"is the same keyword as keywords\[(?P<n>\d+)\] \(case and width do not count\)"),
        "is the same keyword as keywords[{n}] (case and width do not count)",
    ),
    (re.compile(r"must be at most (?P<n>\d+) with at most 2 decimals"), "must be at most {n} with at most 2 decimals"),
    (re.compile(r"must be more than [\w.\[\]]+'s \((?P<n>[\d.]+)\)"), "must be more than the tier above's ({n})"),
)


def problem_text(locale: str, problem: str) -> str:
    """A refusal of the shop file's parsers in the reader's language (English when it has no translation)."""
    for pattern, msgid in _PROBLEM_PATTERNS:
        if found := pattern.fullmatch(problem):
            return gettext(locale, msgid, **found.groupdict())
    return gettext(locale, problem)


def _page_id(request: web.Request, given: str | None) -> str:
    pages = sorted(request[USER].pages)
    if not pages:
        raise web.HTTPForbidden(text="you have no Page\n")
    if given in (None, ""):
        return pages[0]
    if given not in pages:  # another shop's Page: nothing to learn about it
        raise web.HTTPNotFound(text="no such Page\n")
    return given  # type: ignore[return-value]


def split_keywords(keywords: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """The English and the Chinese keywords, one per line, for the two boxes."""
    chinese = [k for k in keywords if _HAN.search(k)]
    return "\n".join(k for k in keywords if k not in chinese), "\n".join(chinese)


@dataclass
class RuleForm:
    """The form as shown: a stored rule's values or what was typed, and the problem beside a field."""

    key: str = ""
    keywords_en: str = ""
    keywords_zh: str = ""
    match: str = "any"
    priority: str = "0"
    reply: str = ""  # in English, or one text for every shopper when reply_zh is empty
    reply_zh: str = ""  # in Traditional Chinese: Chinese readers get it, others too when `reply` is empty
    editing: bool = False
    error_field: str = ""
    error: str = ""
    extras: dict[str, Any] = field(default_factory=dict)  # quick replies and buttons, kept

    @classmethod
    def of(cls, rule: FaqRule) -> RuleForm:
        english, chinese = split_keywords(rule.keywords)
        data = rule_to_dict(rule)
        extras = {k: data[k] for k in ("quick_replies", "buttons") if data[k]}
        texts = dict(rule.reply.texts)
        return cls(
            rule.key,
            english,
            chinese,
            rule.match.value,
            str(rule.priority),
            texts.get("en", "") if texts else rule.reply.text,
            texts.get("zh_Hant", ""),
            True,
            extras=extras,
        )

    def body(self) -> dict[str, Any]:
        """The rule as the admin API's JSON: `parse_faq_rule_json` decides what is wrong with it."""
        words = [w.strip() for box in (self.keywords_en, self.keywords_zh) for w in _SPLIT.split(box) if w.strip()]
        priority: Any = self.priority.strip() or "0"
        if re.fullmatch(r"[+-]?\d{1,6}", priority):
            priority = int(priority)
        return {
            "key": self.key.strip(),
            "keywords": words,
            "match": self.match,
            "priority": priority,
            # One text for everyone unless a Chinese one is given: then one per language.
            "reply": {"en": self.reply, "zh_Hant": self.reply_zh} if self.reply_zh.strip() else self.reply,
            **self.extras,
        }


def _typed(request: web.Request, extras: dict[str, Any]) -> RuleForm:
    return RuleForm(
        key=form_field(request, "key").strip(),
        keywords_en=form_field(request, "keywords_en"),
        keywords_zh=form_field(request, "keywords_zh"),
        match=form_field(request, "match", "any"),
        priority=form_field(request, "priority", "0"),
        reply=form_field(request, "reply"),
        reply_zh=form_field(request, "reply_zh"),
        editing=form_field(request, "editing") == "1",
        extras=extras,
    )


def explain(locale: str, found: FaqMatch, rules: tuple[FaqRule, ...]) -> list[dict[str, Any]]:
    """Each rule's outcome in the reader's language, the winner first (what `plusone faq-test` prints)."""
    by_key = {rule.key: rule for rule in rules}
    winner = found.rule

    def quote(words: tuple[str, ...]) -> str:
        return "、".join(f"「{w}」" for w in words) if locale != "en" else ", ".join(f'"{w}"' for w in words)

    lines = []
    for outcome in sorted(found.outcomes, key=lambda o: not o.won):
        rule = by_key[outcome.key]
        if outcome.won:
            text = gettext(
                locale,
                "answers: matched {words} ({mode}, priority {priority})",
                words=quote(outcome.matched),
                mode=_mode_name(locale, rule.match),
                priority=rule.priority,
            )
        elif outcome.matched and not outcome.missing and winner is not None:
            if rule.priority != winner.priority:
                why = gettext(locale, "lower priority ({mine} < {theirs})", mine=rule.priority, theirs=winner.priority)
            elif rule.match is not winner.match:
                why = gettext(locale, "same priority, a less specific match mode")
            else:
                why = gettext(locale, "same priority and mode: longer keywords, then the rule listed first, win")
            text = gettext(
                locale,
                "matched {words} but lost to {winner}: {why}",
                words=quote(outcome.matched),
                winner=winner.key,
                why=why,
            )
        elif rule.match is MatchMode.EXACT:
            text = gettext(locale, "no match: the whole message must be one of {words}", words=quote(rule.keywords))
        elif rule.match is MatchMode.ALL and outcome.matched:
            text = gettext(
                locale,
                "no match: needs every keyword; found {found}, missing {missing}",
                found=quote(outcome.matched),
                missing=quote(outcome.missing),
            )
        else:
            text = gettext(locale, "no match: none of {words}", words=quote(rule.keywords))
        lines.append({"key": outcome.key, "won": outcome.won, "text": text})
    return lines


def _mode_name(locale: str, mode: MatchMode) -> str:
    names = {
        MatchMode.ANY: "any keyword",
        MatchMode.ALL: "every keyword",
        MatchMode.EXACT: "the whole message",
    }
    return gettext(locale, names[mode])


async def _page(
    request: web.Request,
    page_id: str,
    faq: PageFaqInfo,
    form: RuleForm,
    *,
    sample: str = "",
    status: int = 200,
    template: str = "faq.html",
) -> web.Response:
    trial = None
    if sample.strip():
        # The form's rule as typed takes its stored self's place (or comes last), when it is a rule at all.
        rules = faq.rules
        draft_note = ""
        try:
            draft = parse_faq_rule_json(form.body())
        except ValueError:
            draft_note = "invalid"
        else:
            rules = tuple(r for r in faq.rules if r.key != draft.key)
            position = next((i for i, r in enumerate(faq.rules) if r.key == draft.key), len(rules))
            rules = (*rules[:position], draft, *rules[position:])
        found = match_faq(rules, sample)
        trial = {
            "sample": sample,
            "person": is_agent_request(sample),
            "rule": found.rule,
            "lines": explain(await reader_locale(request), found, rules),
            "draft_note": draft_note,
        }
    return await render(
        request,
        template,
        status,
        page_id=page_id,
        pages=sorted(request[USER].pages),
        faq=faq,
        form=form,
        sample=sample,
        trial=trial,
        split_keywords=split_keywords,
        modes=[m.value for m in MatchMode],
    )


async def reader_locale(request: web.Request) -> str:
    """The language the page is in, picked as `common.render` picks it, for texts made here."""
    async with request.app[READ_SESSIONS]() as session:
        shop_language = (await fetch_shop_payments(session)).language
    return pick_locale(request.query.get("lang"), request[USER].locale, shop_language)


@routes.get("/inbox/faq")
@signed_in
async def faq_page(request: web.Request) -> web.Response:
    owner_only(request)
    page_id = _page_id(request, request.query.get("page"))
    async with request.app[READ_SESSIONS]() as session:
        faq = await fetch_page_faq(session, page_id)
    return await _page(request, page_id, faq, RuleForm())


@routes.get("/inbox/faq/{key}")
@signed_in
async def rule_page(request: web.Request) -> web.Response:
    owner_only(request)
    page_id = _page_id(request, request.query.get("page"))
    async with request.app[READ_SESSIONS]() as session:
        faq = await fetch_page_faq(session, page_id)
    rule = faq.rule(request.match_info["key"])
    if rule is None:
        raise web.HTTPNotFound(text="no such FAQ rule\n")
    return await _page(request, page_id, faq, RuleForm.of(rule), template="faq_rule.html")


@routes.post("/inbox/faq")
@signed_in
async def save_faq_rule(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    page_id = _page_id(request, form_field(request, "page_id"))
    async with request.app[SESSIONS]() as session, session.begin():
        faq = await fetch_page_faq(session, page_id)
        editing = form_field(request, "editing") == "1"
        stored = faq.rule(form_field(request, "key").strip()) if editing else None
        form = _typed(request, RuleForm.of(stored).extras if stored else {})
        template = "faq_rule.html" if editing else "faq.html"
        if form_field(request, "action") == "test":
            sample = form_field(request, "sample")[:SAMPLE_MAX]
            return await _page(request, page_id, faq, form, sample=sample, template=template)
        locale = await reader_locale(request)
        problem = None
        try:
            rule = parse_faq_rule_json(form.body())
        except ValueError as exc:
            problem = str(exc)
        else:
            if not editing and faq.rule(rule.key) is not None:
                problem = "key: " + gettext(locale, "the Page already has a rule {key}: edit that one", key=rule.key)
            else:
                problem = target_problem(faq, rule)
        if problem is not None:
            name, _, text = problem.partition(": ")
            # The reply's languages are two boxes: `reply` (English, or for everyone) and `reply_zh`.
            form.error_field = {"reply.en": "reply", "reply.zh_Hant": "reply_zh"}.get(name) or re.sub(
                r"\[\d+\].*$", "", name
            )
            form.error = problem_text(locale, text)
            return await _page(request, page_id, faq, form, status=400, template=template)
        await save_rule(session, page_id, rule)
    return redirect(f"/inbox/faq?page={page_id}")


@routes.post("/inbox/faq/{key}/delete")
@signed_in
async def delete_faq_rule(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    page_id = _page_id(request, form_field(request, "page_id"))
    key = request.match_info["key"]
    async with request.app[SESSIONS]() as session, session.begin():
        faq = await fetch_page_faq(session, page_id)
        if faq.rule(key) is None:
            raise web.HTTPNotFound(text="no such FAQ rule\n")
        if problem := delete_problem(faq, key):
            form = RuleForm()
            form.error_field, form.error = "delete", problem
            return await _page(request, page_id, faq, form, status=409)
        await delete_rule(session, page_id, key)
    return redirect(f"/inbox/faq?page={page_id}")
