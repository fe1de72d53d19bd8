"""The Page's Messenger profile, `GET|POST|DELETE /{page_id|me}/messenger_profile`, and what it changes for a
person who opens an m.me link (`/_emulator/mme`).

Stored per Page and checked as Meta documents (Messenger Profile API references): `get_started.payload`;
`greeting` texts of at most 160 characters; `ice_breakers` (new format: per `locale`, at most 4
`call_to_actions` of `question` and `payload`); `persistent_menu` (per `locale`, at most 20 items, titles
30 characters, postback payloads 1,000) which needs a Get Started button; each per-locale list needs a
`default` locale. POST answers `{"result": "success"}`, GET `{"data": [{...the fields asked for that are
set}]}` (tests/data/meta/messenger_profile_*.json).

An m.me link with `ref` (Messenger "m.me links" and webhook references): a person with a thread already
sends a `messaging_referrals` event; a new person sees the welcome screen, and the ref reaches the app only
on the Get Started postback (`postback.referral`). Without Get Started no ref arrives: the person's first
message comes without it. Ice breakers, when set, take the Get Started button's place on the welcome screen
(Meta's "Page Profile Priority"); their postback carries no referral (Emulator choice: Meta documents the
referral with Get Started only).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.emulator.control import ControlError, control_body, known_page, text
from bot.emulator.errors import invalid, rate_limited, unsupported
from bot.emulator.state import EmulatorState
from bot.emulator.webhooks import WebhookPlayer
from bot.inbound import webhook_factory as wf

__all__ = ["PROFILE_FIELDS", "MessengerProfile"]

PROFILE_FIELDS = ("get_started", "greeting", "ice_breakers", "persistent_menu")
GREETING_MAX = 160
ICE_BREAKERS_MAX = 4
MENU_ITEMS_MAX = 20
TITLE_MAX = 30
PAYLOAD_MAX = 1000
GET_STARTED_TITLE = "Get Started"
# "Calls to the Messenger Profile API are limited to 10 API calls per 10 minute interval. This rate limit is
# enforced per Page." (Get Started Button reference). Emulator choice: the refusal is Meta's rate-limit error 613.
PROFILE_CALLS_LIMIT = 10
PROFILE_CALLS_WINDOW_S = 600.0
# What the User Profile API gives without extra permissions (Messenger Platform "User Profile API").
USER_FIELDS = ("first_name", "last_name", "name", "profile_pic")


def _value(args: dict[str, Any], name: str) -> Any:
    value = args.get(name)
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            raise invalid(f"param {name} must be JSON") from None
    return value


def _needs_default(entries: list[Any], name: str) -> None:
    if not any(isinstance(e, dict) and e.get("locale") == "default" for e in entries):
        raise invalid(f"param {name} must have an entry with locale default")


def _check_greeting(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise invalid("param greeting must be a non-empty array")
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("locale"), str):
            raise invalid("param greeting[locale] is required")
        greeting = entry.get("text")
        if not isinstance(greeting, str) or not greeting:
            raise invalid("param greeting[text] is required")
        if len(greeting) > GREETING_MAX:
            raise invalid(f"param greeting[text] must be at most {GREETING_MAX} characters")
    _needs_default(value, "greeting")


def _check_questions(items: Any) -> None:
    if not isinstance(items, list) or not items:
        raise invalid("param ice_breakers[call_to_actions] must be a non-empty array")
    if len(items) > ICE_BREAKERS_MAX:
        raise invalid(f"param ice_breakers must have at most {ICE_BREAKERS_MAX} questions")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) or not item["question"]:
            raise invalid("param ice_breakers[question] is required")
        payload = item.get("payload")
        if not isinstance(payload, str) or not payload or len(payload) > PAYLOAD_MAX:
            raise invalid(f"param ice_breakers[payload] is required, at most {PAYLOAD_MAX} characters")


def _check_ice_breakers(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise invalid("param ice_breakers must be a non-empty array")
    if all(isinstance(e, dict) and "call_to_actions" in e for e in value):  # the new, localized format
        for entry in value:
            _check_questions(entry.get("call_to_actions"))
        _needs_default(value, "ice_breakers")
    elif any(isinstance(e, dict) and "call_to_actions" in e for e in value):
        raise invalid("param ice_breakers must use either the existing format or the new one, not both")
    else:
        _check_questions(value)


def _check_menu(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise invalid("param persistent_menu must be a non-empty array")
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("locale"), str):
            raise invalid("param persistent_menu[locale] is required")
        items = entry.get("call_to_actions")
        if entry.get("composer_input_disabled") and not items:
            raise invalid("param persistent_menu[call_to_actions] is required when composer_input_disabled is true")
        if items is None:
            continue
        if not isinstance(items, list) or len(items) > MENU_ITEMS_MAX:
            raise invalid(f"param persistent_menu[call_to_actions] must have at most {MENU_ITEMS_MAX} items")
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in ("postback", "web_url"):
                raise invalid("param persistent_menu[call_to_actions][type] must be postback or web_url")
            title = item.get("title")
            if not isinstance(title, str) or not title or len(title) > TITLE_MAX:
                raise invalid(f"param persistent_menu[call_to_actions][title] must be 1 to {TITLE_MAX} characters")
            if item["type"] == "postback":
                payload = item.get("payload")
                if not isinstance(payload, str) or not payload or len(payload) > PAYLOAD_MAX:
                    raise invalid("param persistent_menu[call_to_actions][payload] is required for a postback")
            elif not isinstance(item.get("url"), str) or not item["url"]:
                raise invalid("param persistent_menu[call_to_actions][url] is required for web_url")
    _needs_default(value, "persistent_menu")


class MessengerProfile:
    """Each Page's Messenger profile (`state.profiles`: page id -> field -> value)."""

    def __init__(self, state: EmulatorState, webhooks: WebhookPlayer) -> None:
        self.state = state
        self.webhooks = webhooks

    def messenger_profile(self, method: str, ref: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        page_id = self.state.page_of(ref, args, call, method)
        now = self.state.now()
        recent = [at for at in self.state.profile_calls.get(page_id, []) if at > now - PROFILE_CALLS_WINDOW_S]
        if len(recent) >= PROFILE_CALLS_LIMIT:
            raise rate_limited()
        self.state.profile_calls[page_id] = [*recent, now]
        profile = self.state.profiles.setdefault(page_id, {})
        if method == "GET":
            raw = args.get("fields")
            wanted = [f.strip() for f in raw.split(",") if f.strip()] if isinstance(raw, str) else []
            if not wanted:
                raise invalid("param fields must be non-empty")
            bad = [f for f in wanted if f not in PROFILE_FIELDS]
            if bad:
                raise invalid(f"param fields[0] must be one of {{{', '.join(PROFILE_FIELDS)}}}")
            found = {f: profile[f] for f in wanted if f in profile}
            return {"data": [found] if found else []}
        if method == "DELETE":
            fields = _value(args, "fields")
            if not isinstance(fields, list) or not fields or any(f not in PROFILE_FIELDS for f in fields):
                raise invalid("param fields must be a non-empty array of profile fields")
            if "get_started" in fields and "persistent_menu" in profile and "persistent_menu" not in fields:
                raise invalid("You must set a Get Started button if you also wish to use persistent menu.")
            for field_name in fields:
                profile.pop(field_name, None)
            return {"result": "success"}
        if method != "POST":
            raise unsupported(method, ref)
        update = {f: _value(args, f) for f in PROFILE_FIELDS if args.get(f) is not None}
        if not update:
            raise invalid(f"param must have at least one of {{{', '.join(PROFILE_FIELDS)}}}")
        if "get_started" in update:
            get_started = update["get_started"]
            payload = get_started.get("payload") if isinstance(get_started, dict) else None
            if not isinstance(payload, str) or not payload or len(payload) > PAYLOAD_MAX:
                raise invalid("param get_started[payload] is required, at most 1000 characters")
        if "greeting" in update:
            _check_greeting(update["greeting"])
        if "ice_breakers" in update:
            _check_ice_breakers(update["ice_breakers"])
        if "persistent_menu" in update:
            _check_menu(update["persistent_menu"])
            if "get_started" not in update and "get_started" not in profile:
                # Wording as Meta's, as integrations quote it; the persistent menu reference requires Get Started.
                raise invalid("You must set a Get Started button if you also wish to use persistent menu.")
        profile.update(update)
        return {"result": "success"}

    # --- the m.me link --------------------------------------------------------------------------------

    async def post_mme(self, request: web.Request) -> web.Response:
        """A person opens `m.me/<page>?ref=<ref>`; a new one then taps what the welcome screen offers (or,
        with nothing to tap, writes `text`)."""
        data = await control_body(request)
        page_id, psid, ref = known_page(data, self.state), text(data, "psid"), text(data, "ref")
        if len(ref) > 2083:
            raise ControlError("ref may have at most 2,083 characters (Meta's limit)")
        now_ms = int(self.state.now() * 1000)
        if (page_id, psid) in self.state.activity:  # an existing thread: a referral event
            item = wf.referral_item(page_id=page_id, psid=psid, ref=ref, timestamp=now_ms)
            return await self.webhooks.play(wf.messaging_delivery(page_id, [item]), "referral", opened="referral")
        profile = self.state.profiles.get(page_id, {})
        ice_breakers = profile.get("ice_breakers")
        if ice_breakers:
            first = ice_breakers[0]
            question = (first.get("call_to_actions") or [first])[0] if isinstance(first, dict) else {}
            item = wf.postback_item(
                page_id=page_id, psid=psid, payload=question["payload"], title=question["question"], timestamp=now_ms
            )
            return await self.webhooks.play(wf.messaging_delivery(page_id, [item]), "postback", opened="ice_breaker")
        get_started = profile.get("get_started")
        if get_started:
            item = wf.postback_item(
                page_id=page_id,
                psid=psid,
                payload=get_started["payload"],
                title=GET_STARTED_TITLE,
                ref=ref,
                timestamp=now_ms,
            )
            return await self.webhooks.play(wf.messaging_delivery(page_id, [item]), "postback", opened="get_started")
        # No Get Started: Meta passes no ref for a new conversation; the person just writes.
        first_words = text(data, "text", required=False) or "Hi"
        item = wf.message_item(page_id=page_id, psid=psid, text=first_words, timestamp=now_ms)
        return await self.webhooks.play(wf.messaging_delivery(page_id, [item]), "message", opened="message")

    async def get_profiles(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state.profiles)

    # --- the User Profile API -------------------------------------------------------------------------

    def is_person(self, ref: str) -> bool:
        """Whether `GET /{ref}` is about a person (not a Page or an object the emulator made)."""
        state = self.state
        return not (
            ref == "me"
            or ref in state.config.pages
            or ref in state.comments
            or ref in state.posts
            or ref in state.live_videos
            or ref in state.templates
        )

    def user_profile(self, psid: str, args: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
        """`GET /{psid}?fields=...` with the Page's token: the person's name and picture, once they have written
        to the Page (Messenger User Profile API); else Meta's `(#100) No profile available for this user.`"""
        page_id = self.state.authenticate(args)
        call["page_id"] = page_id
        if (page_id, psid) not in self.state.activity:
            raise invalid("No profile available for this user.", 2018218)
        raw = args.get("fields")
        wanted = [f.strip() for f in raw.split(",") if f.strip()] if isinstance(raw, str) and raw else []
        wanted = wanted or ["first_name", "last_name", "profile_pic"]
        bad = [f for f in wanted if f not in USER_FIELDS]
        if bad:
            raise invalid(f"Tried accessing nonexisting field ({bad[0]}) on node type (User)")
        # Emulator choice: a person nobody described gets a plain name of their own and no picture (a browser
        # showing the inbox in a test must not fetch from Meta's CDN).
        person = self.state.people.get((page_id, psid)) or {"first_name": "Shopper", "last_name": psid[-4:]}
        values = {**person, "name": f"{person['first_name']} {person['last_name']}".strip()}
        return {**{f: values[f] for f in wanted if values.get(f)}, "id": psid}

    async def post_person(self, request: web.Request) -> web.Response:
        data = await control_body(request)
        page_id, psid = known_page(data, self.state), text(data, "psid")
        person = {name: text(data, name, required=name == "first_name") or "" for name in USER_FIELDS if name != "name"}
        self.state.people[(page_id, psid)] = person
        return web.json_response({"page_id": page_id, "psid": psid, **person})
