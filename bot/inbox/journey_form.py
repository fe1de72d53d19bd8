"""The journey editor's form: a definition (the contract's JSON) as flat form fields and back, and the
editor's row actions (add a step, remove one, move one up or down). Pure: no I/O.

Fields are `trigger.kind`, `trigger.n`, `trigger.days`, `trigger.segment`, `trigger.to`, `stay_in_segment`,
`attribution_days`, and per step `steps[i].<field>`: `id`, `kind`, `days`, `hours`, `weekday`, `hour`,
`if` (segment | tag | ordered_since_start | ordered_within_days) with `if_value`, `then`, `else`,
`text.en`, `text.zh_Hant`, `coupon`, `survey`, `update`, `template`, `add`, `remove`, `points`.
What the owner typed goes to crm_bridge.journey_rules as typed (a number box with letters stays a string),
so the refusal names the field; the page shows it beside the step.
"""

from __future__ import annotations

import re
from typing import Any

MAX_STEPS = 50
STEP_KINDS = ("send", "wait", "wait_until", "branch", "tag", "points", "exit")
TRIGGER_KINDS = (
    "joined",
    "first_order_paid",
    "order_paid",
    "order_shipped",
    "order_delivered",
    "nth_order",
    "birthday",
    "entered_segment",
    "no_order_for",
    "tier_changed",
    "referral_joined",
)
CONDITIONS = ("segment", "tag", "ordered_since_start", "ordered_within_days")
_SPLIT = re.compile(r"\s*[,，、]\s*")
_INT = re.compile(r"[+-]?\d+")
_STEP_FIELDS = (
    "id",
    "kind",
    "days",
    "hours",
    "weekday",
    "hour",
    "if",
    "if_value",
    "then",
    "else",
    "text.en",
    "text.zh_Hant",
    "coupon",
    "survey",
    "update",
    "template",
    "add",
    "remove",
    "points",
)


def _number(text: str) -> int | str:
    """An integer when it reads as one; else the text as typed (the rules refuse it, naming the field)."""
    text = text.strip()
    return int(text) if _INT.fullmatch(text) else text


def _optional_id(text: str) -> int | str | None:
    return None if not text.strip() else _number(text)


def step_count(values: dict[str, str]) -> int:
    """How many steps the form holds: the highest `steps[i].kind` given, plus one."""
    found = [int(m.group(1)) for key in values if (m := re.fullmatch(r"steps\[(\d+)\]\.kind", key))]
    return min(MAX_STEPS, 1 + max(found, default=-1))


def _step(values: dict[str, str], i: int) -> dict[str, Any]:
    def get(name: str) -> str:
        return values.get(f"steps[{i}].{name}", "").strip()

    kind = get("kind")
    step: dict[str, Any] = {"id": get("id") or f"s{i + 1}", "kind": kind}
    if kind == "wait":
        step |= {"days": _number(get("days") or "0"), "hours": _number(get("hours") or "0")}
    elif kind == "wait_until":
        step |= {"weekday": _optional_id(get("weekday")), "hour": _number(get("hour") or "0")}
    elif kind == "branch":
        condition = get("if")
        value = get("if_value")
        test: dict[str, Any]
        if condition == "ordered_since_start":
            test = {"ordered_since_start": True}
        elif condition in ("segment", "ordered_within_days"):
            test = {condition: _number(value)}
        else:
            test = {condition or "tag": value}
        step["if"] = test
        for name in ("then", "else"):
            if get(name):
                step[name] = get(name)
    elif kind == "send":
        step |= {
            "text": {
                "en": values.get(f"steps[{i}].text.en", ""),
                "zh_Hant": values.get(f"steps[{i}].text.zh_Hant", ""),
            },
            "coupon": _optional_id(get("coupon")),
            "survey": get("survey") in ("1", "on", "true"),
            "update": get("update") in ("1", "on", "true"),
            "template": get("template") or None,
        }
    elif kind == "tag":
        step |= {
            "add": [t for t in _SPLIT.split(get("add")) if t],
            "remove": [t for t in _SPLIT.split(get("remove")) if t],
        }
    elif kind == "points":
        step["points"] = _number(get("points"))
    return step


def form_definition(values: dict[str, str]) -> dict[str, Any]:
    """The editor's fields as the contract's definition JSON (a step row without a kind is left out)."""
    trigger: dict[str, Any] = {"kind": values.get("trigger.kind", "").strip()}
    kind = trigger["kind"]
    if kind == "nth_order":
        trigger["n"] = _number(values.get("trigger.n", ""))
    elif kind == "no_order_for":
        trigger["days"] = _number(values.get("trigger.days", ""))
    elif kind == "entered_segment":
        trigger["segment"] = _number(values.get("trigger.segment", ""))
    elif kind == "tier_changed" and values.get("trigger.to", "").strip():
        trigger["to"] = values["trigger.to"].strip()
    steps = [_step(values, i) for i in range(step_count(values)) if values.get(f"steps[{i}].kind", "").strip()]
    return {
        "trigger": trigger,
        "stay_in_segment": _optional_id(values.get("stay_in_segment", "")),
        "attribution_days": _number(values.get("attribution_days", "") or "7"),
        "steps": steps,
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def definition_values(definition: dict[str, Any]) -> dict[str, str]:
    """A stored definition as the editor's fields hold it."""
    trigger = definition.get("trigger") or {}
    values = {f"trigger.{name}": _text(value) for name, value in trigger.items()}
    values["stay_in_segment"] = _text(definition.get("stay_in_segment"))
    values["attribution_days"] = _text(definition.get("attribution_days", 7))
    for i, step in enumerate(definition.get("steps") or []):
        prefix = f"steps[{i}]"
        for name, value in step.items():
            if name == "text":
                for locale, text in (value or {}).items():
                    values[f"{prefix}.text.{locale}"] = text
            elif name == "if":
                for condition, test in (value or {}).items():
                    values[f"{prefix}.if"] = condition
                    values[f"{prefix}.if_value"] = "" if condition == "ordered_since_start" else _text(test)
            else:
                values[f"{prefix}.{name}"] = _text(value)
    return values


def _steps_of(values: dict[str, str]) -> list[dict[str, str]]:
    return [
        {name: values[f"steps[{i}].{name}"] for name in _STEP_FIELDS if f"steps[{i}].{name}" in values}
        for i in range(step_count(values))
    ]


def _with_steps(values: dict[str, str], steps: list[dict[str, str]]) -> dict[str, str]:
    kept = {key: value for key, value in values.items() if not key.startswith("steps[")}
    for i, step in enumerate(steps):
        kept |= {f"steps[{i}].{name}": value for name, value in step.items()}
    return kept


def _free_id(steps: list[dict[str, str]], kind: str) -> str:
    taken = {step.get("id", "") for step in steps}
    n = 1
    while f"{kind}{n}" in taken:
        n += 1
    return f"{kind}{n}"


def apply_action(values: dict[str, str], action: str) -> dict[str, str] | None:
    """The fields after an editor action (`add:<kind>`, `remove:<i>`, `up:<i>`, `down:<i>`); None when
    `action` is none of them (preview, save)."""
    verb, _, arg = action.partition(":")
    steps = _steps_of(values)
    if verb == "add" and arg in STEP_KINDS and len(steps) < MAX_STEPS:
        steps.append({"id": _free_id(steps, arg), "kind": arg})
        return _with_steps(values, steps)
    if verb not in ("remove", "up", "down") or not arg.isdigit() or int(arg) >= len(steps):
        return None
    i = int(arg)
    if verb == "remove":
        steps.pop(i)
    elif verb == "up" and i > 0:
        steps[i - 1], steps[i] = steps[i], steps[i - 1]
    elif verb == "down" and i + 1 < len(steps):
        steps[i + 1], steps[i] = steps[i], steps[i + 1]
    return _with_steps(values, steps)


def step_index_of(values: dict[str, str], step_id: str | None) -> int | None:
    """The form row of the step a refusal names (by its id, or `step<n>` for a step without one)."""
    if step_id is None:
        return None
    for i in range(step_count(values)):
        if (values.get(f"steps[{i}].id", "").strip() or f"s{i + 1}") == step_id:
            return i
    found = re.fullmatch(r"(?:step|#)(\d+)", step_id)
    return int(found.group(1)) - 1 if found else None
