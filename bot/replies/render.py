"""Outgoing Messenger messages, built and checked against Meta's limits before anything is sent. Pure.

Each `render_*` returns Send API `message` objects (dicts). Limits (docs/meta-platform.md §4): text under
2,000 characters, quick replies at most 13 with titles of 20 characters, button template text 640 with
1–3 buttons, generic template at most 10 elements with title and subtitle of 80 and 3 buttons each.
Lengths are counted in characters, not bytes, so Chinese text gets its full allowance; long text is split
on line, sentence or word boundaries and never inside a character cluster (an emoji with its modifiers).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import regex

MAX_TEXT = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_PAYLOAD = 1000
MAX_BUTTON_TEXT = 640
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_ELEMENTS = 10
MAX_ELEMENT_TEXT = 80
MAX_METADATA = 1000

Message = dict[str, Any]


class RenderErrorCode(StrEnum):
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    TOO_MANY_QUICK_REPLIES = "too_many_quick_replies"
    TITLE_TOO_LONG = "title_too_long"
    PAYLOAD_TOO_LONG = "payload_too_long"
    BAD_BUTTONS = "bad_buttons"
    TOO_MANY_ELEMENTS = "too_many_elements"
    BAD_URL = "bad_url"


class RenderError(ValueError):
    def __init__(self, code: RenderErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class QuickReply:
    title: str
    payload: str

    def to_meta(self) -> dict[str, str]:
        _check_length(self.title, MAX_QUICK_REPLY_TITLE, RenderErrorCode.TITLE_TOO_LONG, "quick reply title")
        _check_length(self.payload, MAX_PAYLOAD, RenderErrorCode.PAYLOAD_TOO_LONG, "quick reply payload")
        return {"content_type": "text", "title": self.title, "payload": self.payload}


@dataclass(frozen=True)
class Button:
    """A `postback` button (payload) or a `web_url` button (url)."""

    title: str
    payload: str | None = None
    url: str | None = None

    def to_meta(self) -> dict[str, str]:
        _check_length(self.title, MAX_BUTTON_TITLE, RenderErrorCode.TITLE_TOO_LONG, "button title")
        if (self.payload is None) == (self.url is None):
            raise RenderError(RenderErrorCode.BAD_BUTTONS, f"button {self.title!r} needs a payload or a url")
        if self.url is not None:
            if not self.url.startswith(("https://", "http://")):
                raise RenderError(RenderErrorCode.BAD_URL, f"button {self.title!r} url must be http(s)")
            return {"type": "web_url", "title": self.title, "url": self.url}
        assert self.payload is not None
        _check_length(self.payload, MAX_PAYLOAD, RenderErrorCode.PAYLOAD_TOO_LONG, "button payload")
        return {"type": "postback", "title": self.title, "payload": self.payload}


@dataclass(frozen=True)
class Element:
    title: str
    subtitle: str | None = None
    image_url: str | None = None
    buttons: tuple[Button, ...] = ()


def text_length(text: str) -> int:
    """Characters as a person counts them (code points): `營業時間` is 4, not 12 bytes."""
    return len(text)


def _check_length(text: str, limit: int, code: RenderErrorCode, what: str) -> None:
    if text_length(text) > limit:
        raise RenderError(code, f"{what} is {text_length(text)} characters; Meta allows {limit}")


_CLUSTER = regex.compile(r"\X")


def split_text(text: str, limit: int = MAX_TEXT - 1) -> list[str]:
    """Split text into parts of at most `limit` characters, preferring line, sentence, then word breaks."""
    text = text.strip()
    if not text:
        raise RenderError(RenderErrorCode.EMPTY_TEXT, "message text is empty")
    parts: list[str] = []
    while text_length(text) > limit:
        window = text[:limit]
        cut = -1
        for pattern in ("\n", "。", "！", "？", ". ", "! ", "? ", "，", ", ", " "):
            at = window.rfind(pattern)
            if at > limit // 2:
                cut = at + len(pattern)
                break
        if cut == -1:
            # No natural break: cut after the last whole character cluster that fits.
            cut = 0
            for match in _CLUSTER.finditer(text):
                if match.end() > limit:
                    break
                cut = match.end()
            cut = cut or limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def render_text(text: str, quick_replies: list[QuickReply] | None = None, *, split: bool = True) -> list[Message]:
    """One message, or several when the text is over Meta's limit (quick replies go on the last one).

    With `split=False` an over-long text is refused instead.
    """
    if not split:
        if not text.strip():
            raise RenderError(RenderErrorCode.EMPTY_TEXT, "message text is empty")
        _check_length(text, MAX_TEXT - 1, RenderErrorCode.TEXT_TOO_LONG, "message text")
        parts = [text]
    else:
        parts = split_text(text)
    messages: list[Message] = [{"text": part} for part in parts]
    if quick_replies:
        if len(quick_replies) > MAX_QUICK_REPLIES:
            raise RenderError(
                RenderErrorCode.TOO_MANY_QUICK_REPLIES,
                f"{len(quick_replies)} quick replies; Meta allows {MAX_QUICK_REPLIES}",
            )
        messages[-1]["quick_replies"] = [qr.to_meta() for qr in quick_replies]
    return messages


def render_buttons(text: str, buttons: list[Button]) -> Message:
    """A button template: text with one to three buttons."""
    if not text.strip():
        raise RenderError(RenderErrorCode.EMPTY_TEXT, "button template text is empty")
    _check_length(text, MAX_BUTTON_TEXT, RenderErrorCode.TEXT_TOO_LONG, "button template text")
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise RenderError(RenderErrorCode.BAD_BUTTONS, f"{len(buttons)} buttons; Meta allows 1 to {MAX_BUTTONS}")
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "button", "text": text, "buttons": [b.to_meta() for b in buttons]},
        }
    }


def render_generic(elements: list[Element]) -> Message:
    """A generic template (a carousel of cards)."""
    if not 1 <= len(elements) <= MAX_ELEMENTS:
        raise RenderError(RenderErrorCode.TOO_MANY_ELEMENTS, f"{len(elements)} cards; Meta allows 1 to {MAX_ELEMENTS}")
    out = []
    for element in elements:
        _check_length(element.title, MAX_ELEMENT_TEXT, RenderErrorCode.TITLE_TOO_LONG, "card title")
        item: dict[str, Any] = {"title": element.title}
        if element.subtitle:
            _check_length(element.subtitle, MAX_ELEMENT_TEXT, RenderErrorCode.TITLE_TOO_LONG, "card subtitle")
            item["subtitle"] = element.subtitle
        if element.image_url:
            item["image_url"] = element.image_url
        if len(element.buttons) > MAX_BUTTONS:
            raise RenderError(
                RenderErrorCode.BAD_BUTTONS, f"card {element.title!r} has more than {MAX_BUTTONS} buttons"
            )
        if element.buttons:
            item["buttons"] = [b.to_meta() for b in element.buttons]
        out.append(item)
    return {"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": out}}}


def with_metadata(message: Message, metadata: str) -> Message:
    """Attach our metadata (echoed back by Meta), which lets an echo confirm an outbox row."""
    _check_length(metadata, MAX_METADATA, RenderErrorCode.PAYLOAD_TOO_LONG, "metadata")
    return {**message, "metadata": metadata}
