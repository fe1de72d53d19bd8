"""Page message templates (utility messages), as Meta plays them.

- `POST /{page_id}/message_templates` (name, language, category UTILITY, components with one BODY whose
  `{{n}}` are its parameters) makes a template, PENDING until reviewed; `GET` lists them with their status.
- Sending one: `POST /{page_id}/messages` with `messaging_type=UTILITY` and `message: {template: {name,
  language: {code}, components: [{type: body, parameters: [{type: text, text}]}]}}`. It may go outside the
  24-hour window, but only once APPROVED, and with as many parameters as its body has; else refused.
- Control: `POST /_emulator/templates/review` approves or rejects one (by id, or page, name and language)
  and sends the `message_template_status_update` webhook, as Meta does; `GET /_emulator/templates` lists all.

Emulator choices: Meta's own review is automatic and takes seconds; here it waits for the control route, so
a test decides. A send of a template that is not approved answers code 132001 ("template does not exist"
in the language, the code Meta's template APIs use for a template that cannot be sent); 100 for shapes.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.emulator.control import ControlError, control_body, known_page, text
from bot.emulator.errors import GraphError, invalid
from bot.emulator.messaging_rules import MAX_METADATA, is_text
from bot.emulator.params import maybe_json
from bot.emulator.state import EmulatorState, message_id
from bot.emulator.webhooks import WebhookPlayer
from bot.inbound import webhook_factory as wf

__all__ = ["Template", "Templates", "template_not_approved"]

_NAME = re.compile(r"[a-z0-9_]{1,512}")
_PARAM = re.compile(r"\{\{(\d+)\}\}")
STATUSES = ("PENDING", "APPROVED", "REJECTED", "PAUSED", "DISABLED")
BODY_MAX = 1024


def template_not_approved(name: str, language: str) -> GraphError:
    return GraphError(
        132001, f"(#132001) Template name does not exist in the translation: {name} ({language}) is not approved"
    )


@dataclass
class Template:
    id: str
    page_id: str
    name: str
    language: str
    category: str
    body: str
    status: str = "PENDING"
    reason: str | None = None

    @property
    def param_count(self) -> int:
        return len({int(n) for n in _PARAM.findall(self.body)})

    def render(self, params: list[str]) -> str:
        return _PARAM.sub(lambda m: params[int(m.group(1)) - 1], self.body)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "page_id": self.page_id,
            "name": self.name,
            "language": self.language,
            "category": self.category,
            "body": self.body,
            "status": self.status,
            "rejected_reason": self.reason or "NONE",
        }


class Templates:
    """The Pages' message templates over the shared state; reviews play their webhook through `webhooks`."""

    def __init__(self, state: EmulatorState, webhooks: WebhookPlayer) -> None:
        self.state = state
        self.webhooks = webhooks

    @property
    def all(self) -> dict[str, Template]:
        return self.state.templates

    # --- Graph side -----------------------------------------------------------------------------------

    def message_templates(self, method: str, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        page_id = self.state.page_of(ref, args, call, method)
        if method == "GET":
            name = args.get("name")
            items = [t for t in self.all.values() if t.page_id == page_id and (not name or t.name == name)]
            return {"data": [_listed(t) for t in items]}
        if method != "POST":
            raise invalid(f"message_templates does not support {method}")
        return self._create(page_id, args)

    def _create(self, page_id: str, args: dict[str, Any]) -> dict[str, Any]:
        name, language = args.get("name"), args.get("language")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise invalid("param name must be lower-case letters, digits and underscores")
        if not is_text(language, 16):
            raise invalid("param language is required")
        category = str(args.get("category") or "").upper()
        if category != "UTILITY":
            raise invalid("param category must be UTILITY for Page message templates")
        components = args.get("components")
        if isinstance(components, str):
            components = maybe_json(components)
        bodies = (
            [c for c in components or [] if isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY"]
            if isinstance(components, list)
            else []
        )
        if len(bodies) != 1 or not is_text(bodies[0].get("text"), BODY_MAX):
            raise invalid(f"param components must hold one BODY with text of at most {BODY_MAX} characters")
        body = bodies[0]["text"]
        numbers = sorted({int(n) for n in _PARAM.findall(body)})
        if numbers != list(range(1, len(numbers) + 1)):
            raise invalid("BODY parameters must be numbered {{1}}, {{2}}... without gaps")
        if any(t.page_id == page_id and t.name == name and t.language == language for t in self.all.values()):
            # Emulator choice of subcode; Meta refuses a second template of one name and language.
            raise invalid(f"Message template {name} already exists in {language}", 2388023)
        template = Template(str(next(self.state.object_ids)), page_id, name, language, category, body)
        self.all[template.id] = template
        return {"id": template.id, "status": template.status, "category": template.category}

    def send(self, page_id: str, psid: str, message: dict[str, Any]) -> dict[str, Any]:
        """A utility message to `psid` (the window, block and token were checked by the Send API)."""
        spec = message.get("template")
        if not isinstance(spec, dict):
            raise invalid("param message[template] is required when messaging_type is UTILITY")
        name = spec.get("name")
        language = spec.get("language")
        code = language.get("code") if isinstance(language, dict) else language
        if not is_text(name) or not is_text(code):
            raise invalid("param message[template] needs a name and language[code]")
        metadata = message.get("metadata")
        if metadata is not None and not (isinstance(metadata, str) and len(metadata) <= MAX_METADATA):
            raise invalid(f"param message[metadata] must be a string of at most {MAX_METADATA} characters")
        template = next(
            (t for t in self.all.values() if t.page_id == page_id and t.name == name and t.language == code), None
        )
        if template is None or template.status != "APPROVED":
            raise template_not_approved(str(name), str(code))
        params: list[str] = []
        for component in spec.get("components") or []:
            if isinstance(component, dict) and str(component.get("type", "")).lower() == "body":
                for p in component.get("parameters") or []:
                    if not isinstance(p, dict) or not isinstance(p.get("text"), str):
                        raise invalid("param message[template][components][parameters] must be text parameters")
                    params.append(p["text"])
        if len(params) != template.param_count:
            raise GraphError(
                132000,
                f"(#132000) Number of parameters does not match the expected number of params: "
                f"{len(params)} given, {template.param_count} expected",
            )
        mid = message_id()
        shown: dict[str, Any] = {"text": template.render(params)}
        if metadata is not None:
            shown["metadata"] = metadata
        self.webhooks.schedule_echo(page_id, psid, shown, mid)
        return {"recipient_id": psid, "message_id": mid}

    # --- control routes -------------------------------------------------------------------------------

    async def get_templates(self, _request: web.Request) -> web.Response:
        return web.json_response([t.to_dict() for t in self.all.values()])

    async def post_review(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        status = str(text(data, "status")).upper()
        if status not in STATUSES:
            raise ControlError(f"status must be one of {', '.join(STATUSES)}")
        template_id = text(data, "id", required=False)
        if template_id is not None:
            template = self.all.get(template_id)
        else:
            page_id, name, language = known_page(data, self.state), text(data, "name"), text(data, "language")
            template = next(
                (t for t in self.all.values() if (t.page_id, t.name, t.language) == (page_id, name, language)), None
            )
        if template is None:
            raise ControlError("no such template (give its id, or page_id, name and language)")
        template.status = status
        template.reason = text(data, "reason", required=False) if status == "REJECTED" else None
        body: dict[str, Any] = {"template": template.to_dict(), "webhook": None}
        if self.state.config.webhook_url and self.webhooks.session is not None:
            payload = wf.template_status_delivery(
                page_id=template.page_id,
                template_id=template.id,
                name=template.name,
                language=template.language,
                event=status,
                reason=template.reason,
            )
            if data.get("wait", True):
                record = await self.webhooks.deliver(payload, "template_status")
                body["webhook"] = {"status": record["status"], "error": record["error"]}
            else:
                task = asyncio.create_task(self.webhooks.deliver(payload, "template_status"))
                self.webhooks.tasks.add(task)
                task.add_done_callback(self.webhooks.tasks.discard)
        return web.json_response(body)


def _listed(template: Template) -> dict[str, Any]:
    """A template as `GET /{page}/message_templates` lists it."""
    return {
        "id": template.id,
        "name": template.name,
        "language": template.language,
        "status": template.status,
        "category": template.category,
        "components": [{"type": "BODY", "text": template.body}],
        "rejected_reason": template.reason or "NONE",
    }


def restore_template(d: dict[str, Any]) -> Template:
    """A template as `Template.to_dict()` wrote it (the emulator's saved state)."""
    reason = d.get("rejected_reason")
    return Template(
        d["id"],
        d["page_id"],
        d["name"],
        d["language"],
        d.get("category", "UTILITY"),
        d["body"],
        d.get("status", "PENDING"),
        None if reason in (None, "NONE") else reason,
    )
