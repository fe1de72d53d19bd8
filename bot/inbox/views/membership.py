"""The console's membership rules (issue 19, owners): tiers (spend, earn and redeem rates, express
upgrade, bonus), the programme's points rules, referral levels and rewards, with a preview of what a
sample order would earn.

    GET  /inbox/membership   the programme's form and the preview
    POST /inbox/membership   action=save: store it (303), or 400 with the problem beside the field and
                             nothing changed; action=preview: what the sample order would earn under the
                             rules as typed (nothing saved)

The form is read by the shop file's own `membership:` parser (`config.console_forms`) and stored by
`crm_bridge.program.apply_program`, as `plusone load` and `PUT /api/shop` store it (a later load sets it
back to the file's). The preview follows the paid-order path of `crm_bridge.order_events`: points at the
member's tier, each referrer's reward up the chain, and the tier the period's spend (or the order's
express upgrade) lifts them to, all from `crm_bridge.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from aiohttp import web

from bot.inbox.views.common import FORM, redirect, render, signed_in
from bot.inbox.views.faq import owner_only, problem_text, reader_locale
from bot.replies.i18n import gettext
from bot.runtime.clock import utcnow
from bot.services import READ_SESSIONS, SESSIONS
from carts.tables import ShopInfo as ShopRow
from config.console_forms import LEVEL_INPUTS, PROGRAM_INPUTS, TIER_INPUTS, FormError, parse_membership_form
from crm_bridge.program import apply_program, fetch_program
from crm_bridge.rules import (
    MAX_REFERRAL_LEVELS,
    MAX_TIERS,
    Program,
    Reward,
    calculate_order_points,
    calculate_purchase_awards,
    calculate_upgrade,
)

routes = web.RouteTableDef()
PREVIEW_INPUTS = ("preview.amount", "preview.tier", "preview.spent", "preview.referrers", "preview.first")
MONEY_MAX = Decimal("10000000000")
SPARE_TIER_ROWS = 2  # blank rows under the tiers, to add one


def _reward_text(reward: Reward) -> str:
    if reward.percent is not None:
        return f"{reward.percent.normalize():f}%"
    return str(reward.points) if reward.points else ""


def program_values(program: Program) -> dict[str, str]:
    """The programme as the form's inputs hold it (the shop file's way of writing each value)."""
    values: dict[str, str] = {
        "page_username": program.page_username or "",
        "period_months": str(program.period_months),
        "carry_over": "true" if program.carry_over else "",
        "return_window_days": str(program.return_window_days),
        "points_expire_months": "never" if program.expiry_months is None else str(program.expiry_months),
        "birthday_points": str(program.birthday_points),
        "redeem_cap_percent": f"{program.redeem_cap_percent.normalize():f}",
        "redeem_cap_points": "" if program.redeem_cap_points is None else str(program.redeem_cap_points),
        "referral.new_member_points": str(program.referral.new_member_points),
        "referral.daily_cap": "" if program.referral.daily_cap is None else str(program.referral.daily_cap),
    }
    for index, tier in enumerate(program.tiers):
        for name, value in (
            ("key", tier.key),
            ("name", tier.name),
            ("spend", f"{tier.threshold:f}"),
            ("earn.points", str(tier.earn_points)),
            ("earn.per", f"{tier.earn_per:f}"),
            ("redeem.points", str(tier.redeem_points)),
            ("redeem.value", f"{tier.redeem_value:f}"),
            ("express_upgrade", "" if tier.express_upgrade is None else f"{tier.express_upgrade:f}"),
            ("bonus", str(tier.bonus) if tier.bonus else ""),
        ):
            values[f"tiers[{index}].{name}"] = value
    for index, level in enumerate(program.referral.levels):
        values[f"referral.levels[{index}].signup"] = str(level.signup) if level.signup else ""
        values[f"referral.levels[{index}].first_purchase"] = _reward_text(level.first_purchase)
        values[f"referral.levels[{index}].later_purchase"] = _reward_text(level.later_purchase)
    return values


def _form_inputs() -> list[str]:
    tiers = [f"tiers[{i}].{name}" for i in range(MAX_TIERS) for name in TIER_INPUTS]
    levels = [f"referral.levels[{i}].{name}" for i in range(MAX_REFERRAL_LEVELS) for name in LEVEL_INPUTS]
    return [*PROGRAM_INPUTS, *tiers, *levels, *PREVIEW_INPUTS]


@dataclass(frozen=True, slots=True)
class Preview:
    """What one sample paid order earns."""

    tier_name: str
    points: int
    awards: list[tuple[int, int]]  # (level, points) per referrer up the chain
    new_tier: str | None  # the tier it lifts the member to, if any
    bonus: int


def _money(text: str, field: str, locale: str) -> Decimal:
    try:
        value = Decimal(text.strip().replace(",", "") or "0")
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value > MONEY_MAX or value != value.quantize(Decimal("0.01")):
        raise FormError(field, gettext(locale, "must be an amount like 1280 or 99.50"))
    return value


def preview(program: Program, values: dict[str, str], locale: str) -> Preview:
    """The sample order of the preview inputs, as `crm_bridge.order_events` would credit it once paid."""
    amount = _money(values.get("preview.amount", ""), "preview.amount", locale)
    spent = _money(values.get("preview.spent", ""), "preview.spent", locale)
    tier = program.tier(values.get("preview.tier") or None)
    try:
        referrers = int(values.get("preview.referrers") or 0)
    except ValueError:
        referrers = -1
    if not 0 <= referrers <= MAX_REFERRAL_LEVELS:
        raise FormError("preview.referrers", gettext(locale, "must be 0 to 3"))
    first = values.get("preview.first") == "true"
    chain = list(range(1, referrers + 1))  # stand-in member ids: only the levels count here
    awards = calculate_purchase_awards(program.referral, chain, amount, first)
    change = calculate_upgrade(program, tier, spent + amount, amount)
    return Preview(
        tier_name=tier.name,
        points=calculate_order_points(tier, amount),
        awards=[(award.level, award.points) for award in awards],
        new_tier=change.tier.name if change.changed else None,
        bonus=change.bonus,
    )


async def _page(
    request: web.Request,
    program: Program,
    values: dict[str, str],
    *,
    error: FormError | None = None,
    result: Preview | None = None,
    status: int = 200,
) -> web.Response:
    async with request.app[READ_SESSIONS]() as session:
        shop = await session.get(ShopRow, 1)
    filled = sum(1 for i in range(MAX_TIERS) if any(values.get(f"tiers[{i}].{n}") for n in TIER_INPUTS))
    return await render(
        request,
        "membership.html",
        status,
        values=values,
        program=program,
        error=error,
        result=result,
        currency=shop.currency if shop else "HKD",
        tier_rows=min(MAX_TIERS, max(filled, 1) + SPARE_TIER_ROWS),
        level_rows=MAX_REFERRAL_LEVELS,
        saved=request.query.get("saved") == "1",
    )


_SAMPLE = {"preview.amount": "1000", "preview.spent": "0", "preview.referrers": "1", "preview.first": "true"}


@routes.get("/inbox/membership")
@signed_in
async def membership_page(request: web.Request) -> web.Response:
    owner_only(request)
    async with request.app[READ_SESSIONS]() as session:
        program = await fetch_program(session)
    values = {**program_values(program), **_SAMPLE}
    result = preview(program, values, await reader_locale(request))
    return await _page(request, program, values, result=result)


@routes.post("/inbox/membership")
@signed_in
async def save_membership(request: web.Request) -> web.StreamResponse:
    owner_only(request)
    form = request[FORM]
    typed = {name: str(form.get(name, "")) for name in _form_inputs()}
    locale = await reader_locale(request)
    async with request.app[READ_SESSIONS]() as session:
        stored = await fetch_program(session)
    try:
        program = parse_membership_form(typed)
        result = preview(program, typed, locale) if form.get("action") == "preview" else None
    except FormError as exc:
        error = FormError(exc.field, problem_text(locale, exc.problem))
        return await _page(request, stored, typed, error=error, status=400)
    if result is not None:
        return await _page(request, program, typed, result=result)
    async with request.app[SESSIONS]() as session, session.begin():
        await apply_program(session, program, utcnow())
    return redirect("/inbox/membership?saved=1")
