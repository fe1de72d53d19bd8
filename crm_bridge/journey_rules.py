"""Journeys' rules: the definition (a trigger, then steps) parsed from its JSON and validated, the texts'
placeholders, when a wait ends in the shop's time zone, and which channel a message may take. Pure: plain
values in, values or `JourneyError` (a code, the step and the field) out; `crm_bridge.journeys` runs them.

A definition is checked whole before anything is stored. Steps run in order; a branch may only jump
forward (to a later step id, or "exit"), so every run ends: a branch to itself or an earlier step is
refused as `loops`. A wait is 1 hour to 365 days; more is `waits_forever`, as is a wait that ends the
journey (nothing after it: the run would wait for nothing).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

LOCALES = ("en", "zh_Hant")
STEP_ID_MAX = 40
MAX_STEPS = 50
MAX_WAIT_DAYS = 365
MAX_TEXT = 1900  # Messenger takes 2000 characters: room for the coupon code and the placeholders' values
TAG_MAX = 40
MAX_POINTS = 100_000
EXIT = "exit"
PLACEHOLDERS = frozenset({"name", "shop", "coupon_code", "coupon_terms", "points", "tier", "survey_link", "order_ref"})


class TriggerKind(StrEnum):
    JOINED = "joined"
    FIRST_ORDER_PAID = "first_order_paid"
    ORDER_PAID = "order_paid"
    ORDER_SHIPPED = "order_shipped"
    ORDER_DELIVERED = "order_delivered"
    NTH_ORDER = "nth_order"
    BIRTHDAY = "birthday"
    ENTERED_SEGMENT = "entered_segment"
    NO_ORDER_FOR = "no_order_for"
    TIER_CHANGED = "tier_changed"
    REFERRAL_JOINED = "referral_joined"


class StepKind(StrEnum):
    WAIT = "wait"
    WAIT_UNTIL = "wait_until"
    BRANCH = "branch"
    SEND = "send"
    TAG = "tag"
    POINTS = "points"
    EXIT = "exit"


class RunStatus(StrEnum):
    WAITING = "waiting"
    DONE = "done"
    STOPPED = "stopped"


class EventKind(StrEnum):
    ENTERED = "entered"
    WAITED = "waited"
    BRANCHED = "branched"
    SENT = "sent"
    REFUSED = "refused"
    TAGGED = "tagged"
    POINTS = "points"
    EXITED = "exited"
    STOPPED = "stopped"
    DONE = "done"
    ANSWERED = "answered"


class MessageStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    REFUSED = "refused"
    FAILED = "failed"


class Channel(StrEnum):
    MESSENGER = "messenger"
    EMAIL = "email"


class ReasonCode(StrEnum):
    """Why a run stopped or a message was not sent (the history's `code`)."""

    OPTED_OUT = "opted_out"
    LEFT_SEGMENT = "left_segment"
    OUTSIDE_WINDOW = "outside_window"
    NO_EMAIL = "no_email"
    NO_CHANNEL = "no_channel"
    NO_EMAIL_CHANNEL_YET = "no_email_channel_yet"
    META_REFUSED = "meta_refused"
    COUPON_UNAVAILABLE = "coupon_unavailable"
    MEMBER_GONE = "member_gone"
    JOURNEY_DISABLED = "journey_disabled"
    EXIT_STEP = "exit_step"
    BRANCH_EXIT = "branch_exit"
    END = "end"  # the run did its last step
    EMAIL_OFF = "email_off"  # no SMTP server is set up (delivery's detail: why not by e-mail)


class JourneyErrorCode(StrEnum):
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    BAD_VALUE = "bad_value"
    UNKNOWN_TRIGGER = "unknown_trigger"
    UNKNOWN_KIND = "unknown_kind"
    NO_STEPS = "no_steps"
    TOO_MANY_STEPS = "too_many_steps"
    MISSING_ID = "missing_id"
    DUPLICATE_ID = "duplicate_id"
    UNKNOWN_STEP = "unknown_step"
    LOOPS = "loops"
    BAD_WAIT = "bad_wait"
    WAITS_FOREVER = "waits_forever"
    BAD_HOUR = "bad_hour"
    BAD_WEEKDAY = "bad_weekday"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    UNKNOWN_PLACEHOLDER = "unknown_placeholder"
    UNAPPROVED_TEMPLATE = "unapproved_template"
    TEMPLATE_WITHOUT_UPDATE = "template_without_update"
    UNKNOWN_SEGMENT = "unknown_segment"
    UNKNOWN_COUPON = "unknown_coupon"
    BAD_TAG = "bad_tag"


class JourneyError(ValueError):
    """A definition refused: `code` says why, `step_id` which step (None: the trigger or the whole), `field`
    which of its fields (`trigger.kind`, `days`, `text.en`...)."""

    def __init__(self, code: JourneyErrorCode, step_id: str | None = None, field: str | None = None) -> None:
        where = ".".join(part for part in (step_id and f"steps[{step_id}]", field) if part)
        super().__init__(f"{where or 'journey'}: {code.value}")
        self.code = code
        self.step_id = step_id
        self.field = field


# --- the definition -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    n: int | None = None  # nth_order
    segment: int | None = None  # entered_segment
    days: int | None = None  # no_order_for
    to: str | None = None  # tier_changed: only to this tier (None: any change)


@dataclass(frozen=True, slots=True)
class Condition:
    """A branch's test: exactly one of these is set."""

    segment: int | None = None
    tag: str | None = None
    ordered_since_start: bool = False
    ordered_within_days: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    kind: StepKind
    # wait
    days: int = 0
    hours: int = 0
    # wait_until
    weekday: int | None = None  # 0 Monday .. 6 Sunday; None: any day
    hour: int = 0
    # branch: targets are step ids, "exit", or None (the next step)
    condition: Condition | None = None
    then: str | None = None
    otherwise: str | None = None
    # send
    text: Mapping[str, str] = field(default_factory=dict)
    coupon: int | None = None
    survey: bool = False
    update: bool = False
    template: str | None = None
    # tag
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    # points
    points: int = 0


@dataclass(frozen=True, slots=True)
class JourneyDefinition:
    trigger: Trigger
    steps: tuple[Step, ...]
    stay_in_segment: int | None = None
    attribution_days: int = 7

    def index_of(self, step_id: str) -> int:
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise KeyError(step_id)

    def target_index(self, target: str | None, after: int) -> int | None:
        """The step index a branch goes to (None: the run ends)."""
        if target is None:
            return after + 1 if after + 1 < len(self.steps) else None
        if target == EXIT:
            return None
        return self.index_of(target)

    def segments(self) -> set[int]:
        found = {s for s in (self.trigger.segment, self.stay_in_segment) if s is not None}
        return found | {s.condition.segment for s in self.steps if s.condition and s.condition.segment is not None}

    def coupons(self) -> set[int]:
        return {s.coupon for s in self.steps if s.coupon is not None}


# --- parsing --------------------------------------------------------------------------------------------

_TRIGGER_FIELDS = {
    TriggerKind.NTH_ORDER: {"n"},
    TriggerKind.ENTERED_SEGMENT: {"segment"},
    TriggerKind.NO_ORDER_FOR: {"days"},
    TriggerKind.TIER_CHANGED: {"to"},
}
_STEP_FIELDS = {
    StepKind.WAIT: {"days", "hours"},
    StepKind.WAIT_UNTIL: {"weekday", "hour"},
    StepKind.BRANCH: {"if", "then", "else"},
    StepKind.SEND: {"text", "coupon", "survey", "update", "template"},
    StepKind.TAG: {"add", "remove"},
    StepKind.POINTS: {"points"},
    StepKind.EXIT: set(),
}
_CONDITIONS = ("segment", "tag", "ordered_since_start", "ordered_within_days")


def _int(value: Any, low: int, high: int, code: JourneyErrorCode, step: str | None, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise JourneyError(code, step, name)
    return value


def _id_in(value: Any, known: set[int], code: JourneyErrorCode, step: str | None, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise JourneyError(JourneyErrorCode.BAD_VALUE, step, name)
    if value not in known:
        raise JourneyError(code, step, name)
    return value


def _tag(value: Any, step: str | None, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > TAG_MAX:
        raise JourneyError(JourneyErrorCode.BAD_TAG, step, name)
    return value.strip().lower()


def _only(data: Mapping[str, Any], allowed: set[str], step: str | None, prefix: str = "") -> None:
    for name in data:
        if name not in allowed:
            raise JourneyError(JourneyErrorCode.UNKNOWN_FIELD, step, prefix + str(name))


def _trigger(data: Any, segments: set[int]) -> Trigger:
    if not isinstance(data, dict):
        raise JourneyError(JourneyErrorCode.MISSING_FIELD, None, "trigger")
    try:
        kind = TriggerKind(data.get("kind"))
    except ValueError:
        raise JourneyError(JourneyErrorCode.UNKNOWN_TRIGGER, None, "trigger.kind") from None
    _only(data, {"kind"} | _TRIGGER_FIELDS.get(kind, set()), None, "trigger.")
    bad = JourneyErrorCode.BAD_VALUE
    if kind is TriggerKind.NTH_ORDER:
        return Trigger(kind, n=_int(data.get("n"), 2, 100, bad, None, "trigger.n"))
    if kind is TriggerKind.ENTERED_SEGMENT:
        if "segment" not in data:
            raise JourneyError(JourneyErrorCode.MISSING_FIELD, None, "trigger.segment")
        return Trigger(
            kind, segment=_id_in(data["segment"], segments, JourneyErrorCode.UNKNOWN_SEGMENT, None, "trigger.segment")
        )
    if kind is TriggerKind.NO_ORDER_FOR:
        return Trigger(kind, days=_int(data.get("days"), 1, 730, bad, None, "trigger.days"))
    if kind is TriggerKind.TIER_CHANGED:
        to = data.get("to")
        if to is not None and (not isinstance(to, str) or not to.strip() or len(to) > 40):
            raise JourneyError(bad, None, "trigger.to")
        return Trigger(kind, to=to.strip() if isinstance(to, str) else None)
    return Trigger(kind)


def _placeholders(text: str) -> set[str]:
    """The {names} a text uses (ValueError: a lone brace)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _send(data: Mapping[str, Any], sid: str, coupons: set[int], approved: set[str]) -> Step:
    text = data.get("text")
    if not isinstance(text, dict):
        raise JourneyError(JourneyErrorCode.EMPTY_TEXT, sid, "text")
    _only(text, set(LOCALES), sid, "text.")
    texts: dict[str, str] = {}
    for locale in LOCALES:
        value = text.get(locale) or ""
        if not isinstance(value, str):
            raise JourneyError(JourneyErrorCode.BAD_VALUE, sid, f"text.{locale}")
        if len(value) > MAX_TEXT:
            raise JourneyError(JourneyErrorCode.TEXT_TOO_LONG, sid, f"text.{locale}")
        try:
            names = _placeholders(value)
        except ValueError:
            raise JourneyError(JourneyErrorCode.UNKNOWN_PLACEHOLDER, sid, f"text.{locale}") from None
        if not names <= PLACEHOLDERS:
            raise JourneyError(JourneyErrorCode.UNKNOWN_PLACEHOLDER, sid, f"text.{locale}")
        if value.strip():
            texts[locale] = value.strip()
    if not texts:
        raise JourneyError(JourneyErrorCode.EMPTY_TEXT, sid, "text")
    coupon = data.get("coupon")
    if coupon is not None:
        coupon = _id_in(coupon, coupons, JourneyErrorCode.UNKNOWN_COUPON, sid, "coupon")
    flags = {}
    for name in ("survey", "update"):
        value = data.get(name, False)
        if not isinstance(value, bool):
            raise JourneyError(JourneyErrorCode.BAD_VALUE, sid, name)
        flags[name] = value
    template = data.get("template")
    if template is not None:
        if not isinstance(template, str) or not template.strip():
            raise JourneyError(JourneyErrorCode.BAD_VALUE, sid, "template")
        if not flags["update"]:
            raise JourneyError(JourneyErrorCode.TEMPLATE_WITHOUT_UPDATE, sid, "template")
        if template not in approved:
            raise JourneyError(JourneyErrorCode.UNAPPROVED_TEMPLATE, sid, "template")
    return Step(sid, StepKind.SEND, text=texts, coupon=coupon, template=template, **flags)


def _condition(data: Any, sid: str, segments: set[int]) -> Condition:
    if not isinstance(data, dict) or len(data) != 1:
        raise JourneyError(JourneyErrorCode.BAD_VALUE, sid, "if")
    _only(data, set(_CONDITIONS), sid, "if.")
    ((name, value),) = data.items()
    if name == "segment":
        return Condition(segment=_id_in(value, segments, JourneyErrorCode.UNKNOWN_SEGMENT, sid, "if.segment"))
    if name == "tag":
        return Condition(tag=_tag(value, sid, "if.tag"))
    if name == "ordered_since_start":
        if value is not True:
            raise JourneyError(JourneyErrorCode.BAD_VALUE, sid, "if.ordered_since_start")
        return Condition(ordered_since_start=True)
    return Condition(ordered_within_days=_int(value, 1, 730, JourneyErrorCode.BAD_VALUE, sid, "if.ordered_within_days"))


def _step(data: Any, position: int, segments: set[int], coupons: set[int], approved: set[str]) -> Step:
    if not isinstance(data, dict):
        raise JourneyError(JourneyErrorCode.NOT_AN_OBJECT, None, f"steps[{position}]")
    sid = data.get("id")
    if not isinstance(sid, str) or not sid.strip():
        raise JourneyError(JourneyErrorCode.MISSING_ID, None, f"steps[{position}].id")
    if len(sid) > STEP_ID_MAX or sid == EXIT:
        raise JourneyError(JourneyErrorCode.BAD_VALUE, sid, "id")
    try:
        kind = StepKind(data.get("kind"))
    except ValueError:
        raise JourneyError(JourneyErrorCode.UNKNOWN_KIND, sid, "kind") from None
    _only(data, {"id", "kind"} | _STEP_FIELDS[kind], sid)
    if kind is StepKind.WAIT:
        days = _int(data.get("days", 0), 0, 10**6, JourneyErrorCode.BAD_WAIT, sid, "days")
        hours = _int(data.get("hours", 0), 0, 10**6, JourneyErrorCode.BAD_WAIT, sid, "hours")
        total = timedelta(days=days, hours=hours)
        if total < timedelta(hours=1):
            raise JourneyError(JourneyErrorCode.BAD_WAIT, sid, "days")
        if total > timedelta(days=MAX_WAIT_DAYS):
            raise JourneyError(JourneyErrorCode.WAITS_FOREVER, sid, "days")
        return Step(sid, kind, days=days, hours=hours)
    if kind is StepKind.WAIT_UNTIL:
        weekday = data.get("weekday")
        if weekday is not None:
            weekday = _int(weekday, 0, 6, JourneyErrorCode.BAD_WEEKDAY, sid, "weekday")
        if "hour" not in data:
            raise JourneyError(JourneyErrorCode.MISSING_FIELD, sid, "hour")
        return Step(sid, kind, weekday=weekday, hour=_int(data["hour"], 0, 23, JourneyErrorCode.BAD_HOUR, sid, "hour"))
    if kind is StepKind.BRANCH:
        if "if" not in data:
            raise JourneyError(JourneyErrorCode.MISSING_FIELD, sid, "if")
        targets = {}
        for name in ("then", "else"):
            target = data.get(name)
            if target is not None and (not isinstance(target, str) or not target.strip()):
                raise JourneyError(JourneyErrorCode.BAD_VALUE, sid, name)
            targets[name] = target
        return Step(
            sid, kind, condition=_condition(data["if"], sid, segments), then=targets["then"], otherwise=targets["else"]
        )
    if kind is StepKind.SEND:
        return _send(data, sid, coupons, approved)
    if kind is StepKind.TAG:
        lists = {}
        for name in ("add", "remove"):
            value = data.get(name, [])
            if not isinstance(value, list) or len(value) > 20:
                raise JourneyError(JourneyErrorCode.BAD_VALUE, sid, name)
            lists[name] = tuple(dict.fromkeys(_tag(tag, sid, f"{name}[{i}]") for i, tag in enumerate(value)))
        if not lists["add"] and not lists["remove"]:
            raise JourneyError(JourneyErrorCode.MISSING_FIELD, sid, "add")
        return Step(sid, kind, add=lists["add"], remove=lists["remove"])
    if kind is StepKind.POINTS:
        return Step(
            sid, kind, points=_int(data.get("points"), 1, MAX_POINTS, JourneyErrorCode.BAD_VALUE, sid, "points")
        )
    return Step(sid, kind)


def _check_flow(steps: tuple[Step, ...]) -> None:
    """Branches jump forward to a step that exists; a wait is never the last thing a run can do."""
    index = {step.id: i for i, step in enumerate(steps)}
    for i, step in enumerate(steps):
        if step.kind is not StepKind.BRANCH:
            continue
        for name, target in (("then", step.then), ("else", step.otherwise)):
            if target is None or target == EXIT:
                continue
            if target not in index:
                raise JourneyError(JourneyErrorCode.UNKNOWN_STEP, step.id, name)
            if index[target] <= i:
                raise JourneyError(JourneyErrorCode.LOOPS, step.id, name)
    # A wait followed by nothing (the end, an exit, or only other waits) holds the run for nothing.
    for i, step in enumerate(steps):
        if step.kind in (StepKind.WAIT, StepKind.WAIT_UNTIL) and not _does_something_after(steps, i):
            raise JourneyError(JourneyErrorCode.WAITS_FOREVER, step.id, "kind")


def _does_something_after(steps: tuple[Step, ...], start: int) -> bool:
    """Whether some path from the step after `start` reaches a step that acts (branches count: they test)."""
    for step in steps[start + 1 :]:
        if step.kind is StepKind.EXIT:
            return False
        if step.kind not in (StepKind.WAIT, StepKind.WAIT_UNTIL):
            return True
    return False


def parse_journey(
    definition: Any, *, segments: set[int], coupons: set[int], approved_templates: set[str]
) -> JourneyDefinition:
    """The definition, checked whole (`JourneyError` on the first thing wrong); `segments` and `coupons` are
    the ids that exist, `approved_templates` the utility templates approved for the Page."""
    if not isinstance(definition, dict):
        raise JourneyError(JourneyErrorCode.NOT_AN_OBJECT)
    _only(definition, {"trigger", "stay_in_segment", "attribution_days", "steps"}, None)
    trigger = _trigger(definition.get("trigger"), segments)
    stay = definition.get("stay_in_segment")
    if stay is not None:
        stay = _id_in(stay, segments, JourneyErrorCode.UNKNOWN_SEGMENT, None, "stay_in_segment")
    attribution = _int(
        definition.get("attribution_days", 7), 1, 60, JourneyErrorCode.BAD_VALUE, None, "attribution_days"
    )
    raw_steps = definition.get("steps")
    if raw_steps is None or raw_steps == []:
        raise JourneyError(JourneyErrorCode.NO_STEPS, None, "steps")
    if not isinstance(raw_steps, list):
        raise JourneyError(JourneyErrorCode.BAD_VALUE, None, "steps")
    if len(raw_steps) > MAX_STEPS:
        raise JourneyError(JourneyErrorCode.TOO_MANY_STEPS, None, "steps")
    steps: list[Step] = []
    seen: set[str] = set()
    for position, raw in enumerate(raw_steps):
        step = _step(raw, position, segments, coupons, approved_templates)
        if step.id in seen:
            raise JourneyError(JourneyErrorCode.DUPLICATE_ID, step.id, "id")
        seen.add(step.id)
        steps.append(step)
    parsed = tuple(steps)
    _check_flow(parsed)
    return JourneyDefinition(trigger, parsed, stay, attribution)


def definition_json(definition: JourneyDefinition) -> dict[str, Any]:
    """The definition back as the contract's JSON (what a version stores: parse_journey reads it again)."""
    trigger: dict[str, Any] = {"kind": definition.trigger.kind.value}
    for name in ("n", "segment", "days", "to"):
        value = getattr(definition.trigger, name)
        if value is not None:
            trigger[name] = value
    steps: list[dict[str, Any]] = []
    for step in definition.steps:
        out: dict[str, Any] = {"id": step.id, "kind": step.kind.value}
        if step.kind is StepKind.WAIT:
            out |= {"days": step.days, "hours": step.hours}
        elif step.kind is StepKind.WAIT_UNTIL:
            out |= {"weekday": step.weekday, "hour": step.hour}
        elif step.kind is StepKind.BRANCH:
            assert step.condition is not None
            cond = step.condition
            test: dict[str, Any] = (
                {"segment": cond.segment}
                if cond.segment is not None
                else {"tag": cond.tag}
                if cond.tag is not None
                else {"ordered_since_start": True}
                if cond.ordered_since_start
                else {"ordered_within_days": cond.ordered_within_days}
            )
            out["if"] = test
            if step.then is not None:
                out["then"] = step.then
            if step.otherwise is not None:
                out["else"] = step.otherwise
        elif step.kind is StepKind.SEND:
            out |= {
                "text": dict(step.text),
                "coupon": step.coupon,
                "survey": step.survey,
                "update": step.update,
                "template": step.template,
            }
        elif step.kind is StepKind.TAG:
            out |= {"add": list(step.add), "remove": list(step.remove)}
        elif step.kind is StepKind.POINTS:
            out["points"] = step.points
        steps.append(out)
    return {
        "trigger": trigger,
        "stay_in_segment": definition.stay_in_segment,
        "attribution_days": definition.attribution_days,
        "steps": steps,
    }


# --- texts ----------------------------------------------------------------------------------------------


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def pick_text(texts: Mapping[str, str], locale: str | None) -> tuple[str, str]:
    """The text in the member's language, else the other one: (locale, text)."""
    wanted = "zh_Hant" if (locale or "").replace("-", "_").lower().startswith("zh") else "en"
    for candidate in (wanted, *LOCALES):
        if texts.get(candidate):
            return candidate, texts[candidate]
    raise ValueError("a send step without text")  # parse_journey refuses it


def render_text(text: str, values: Mapping[str, Any]) -> str:
    """The text with its {placeholders} filled (a value not known here renders empty, never "{name}")."""
    known = _Blank({k: "" if v is None else str(v) for k, v in values.items() if k in PLACEHOLDERS})
    return string.Formatter().vformat(text, (), known).strip()


# --- time -----------------------------------------------------------------------------------------------


def wait_end(now: datetime, days: int, hours: int, zone: ZoneInfo) -> datetime:
    """When a wait started at `now` ends: days on the shop's wall clock (the same local time N days on, even
    across a change of clock), then hours of elapsed time."""
    local = now.astimezone(zone)
    later = (local.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=zone, fold=local.fold)
    return later.astimezone(now.tzinfo) + timedelta(hours=hours)


def next_weekday_hour(now: datetime, weekday: int | None, hour: int, zone: ZoneInfo) -> datetime:
    """The first moment after `now` that is `hour`:00 in the shop's zone, on `weekday` (0 Monday; None: any
    day). Exactly at such a moment it is the next one: a wait_until always waits."""
    local = now.astimezone(zone)
    day = local.date()
    for offset in range(8):
        candidate_day = day + timedelta(days=offset)
        if weekday is not None and candidate_day.weekday() != weekday:
            continue
        candidate = datetime(candidate_day.year, candidate_day.month, candidate_day.day, hour, tzinfo=zone)
        if candidate.astimezone(now.tzinfo) > now:
            return candidate.astimezone(now.tzinfo)
    raise AssertionError("a weekday repeats within 8 days")


def step_wait_end(step: Step, now: datetime, zone: ZoneInfo) -> datetime:
    if step.kind is StepKind.WAIT:
        return wait_end(now, step.days, step.hours, zone)
    assert step.kind is StepKind.WAIT_UNTIL
    return next_weekday_hour(now, step.weekday, step.hour, zone)


# --- channels -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelChoice:
    channel: Channel | None  # None: not sent
    code: ReasonCode | None = None  # why not (or why not Messenger, when e-mail was chosen)
    messenger: ReasonCode | None = None  # not sent: why not by Messenger (outside_window, no_channel: no chat)
    email: ReasonCode | None = None  # not sent: why not by e-mail


def choose_channel(
    *, opted_out: bool, has_psid: bool, window_open: bool, update: bool, template: str | None, email: str | None
) -> ChannelChoice:
    """Where a journey message may go, by each channel's rules: Messenger inside the 24-hour window, or an
    update sent as its approved utility template; else e-mail when the member has an address; else nowhere.
    Opted out: nowhere, whatever the channel."""
    if opted_out:
        return ChannelChoice(None, ReasonCode.OPTED_OUT)
    if has_psid and (window_open or (update and template is not None)):
        return ChannelChoice(Channel.MESSENGER)
    messenger = ReasonCode.OUTSIDE_WINDOW if has_psid else ReasonCode.NO_CHANNEL
    if email:
        return ChannelChoice(Channel.EMAIL, messenger)
    return ChannelChoice(None, ReasonCode.NO_CHANNEL, messenger, ReasonCode.NO_EMAIL)


# --- stored definitions ---------------------------------------------------------------------------------


def parse_stored(definition: Any) -> JourneyDefinition:
    """A version's definition as stored: it was checked when saved, so the segments, coupons and template
    it names are taken as they were then (one deleted since is the engine's problem, not a parse error)."""
    segments: set[int] = set()
    coupons: set[int] = set()
    templates: set[str] = set()
    if isinstance(definition, dict):
        trigger = definition.get("trigger")
        for value in (trigger.get("segment") if isinstance(trigger, dict) else None, definition.get("stay_in_segment")):
            if isinstance(value, int):
                segments.add(value)
        for step in definition.get("steps") or []:
            if not isinstance(step, dict):
                continue
            test = step.get("if")
            if isinstance(test, dict) and isinstance(test.get("segment"), int):
                segments.add(test["segment"])
            if isinstance(step.get("coupon"), int):
                coupons.add(step["coupon"])
            if isinstance(step.get("template"), str):
                templates.add(step["template"])
    return parse_journey(definition, segments=segments, coupons=coupons, approved_templates=templates)


def coupon_terms_text(
    locale: str, *, percent: bool, value: Decimal, currency: str, min_spend: Decimal | None, ends_at: datetime | None,
    zone: ZoneInfo,
) -> str:  # fmt: skip
    """{coupon_terms}: what the code takes off, from what spend, until when, in the member's language."""
    amount = f"{value.normalize():f}"
    parts: list[str]
    if locale == "zh_Hant":
        parts = [f"減 {amount}%" if percent else f"減 {currency} {amount}"]
        if min_spend is not None:
            parts.append(f"最低消費 {currency} {min_spend.normalize():f}")
        if ends_at is not None:
            end = ends_at.astimezone(zone)
            parts.append(f"有效至 {end.year}年{end.month}月{end.day}日")
        return "，".join(parts)
    parts = [f"{amount}% off" if percent else f"{currency} {amount} off"]
    if min_spend is not None:
        parts.append(f"min. spend {currency} {min_spend.normalize():f}")
    if ends_at is not None:
        end = ends_at.astimezone(zone)
        parts.append(f"until {end.day} {end:%b} {end.year}")
    return ", ".join(parts)
