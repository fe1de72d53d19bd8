"""Meta's Send API rules as the emulator enforces them (pure): messaging types, tags and their windows,
sender actions, and what a `message` may hold within Meta's documented limits (`check_message`).
"""

from __future__ import annotations

from typing import Any

from bot.emulator.errors import invalid

__all__ = [
    "MESSAGING_TYPES",
    "NOTIFICATION_TYPES",
    "PRIVATE_REPLY_WINDOW_S",
    "RETIRED_TAGS",
    "SENDER_ACTIONS",
    "STANDARD_WINDOW_S",
    "TAG_WINDOWS",
    "check_message",
    "is_text",
]

DAY_S = 24 * 3600.0
STANDARD_WINDOW_S = DAY_S
HUMAN_AGENT_WINDOW_S = 7 * DAY_S
# Meta: CUSTOMER_FEEDBACK is "only with the Customer Feedback template, within 7 days" (template not checked).
CUSTOMER_FEEDBACK_WINDOW_S = 7 * DAY_S
PRIVATE_REPLY_WINDOW_S = 7 * DAY_S

# UTILITY: a Page's approved utility message template, which may go outside the 24-hour window.
MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY")
TAG_WINDOWS = {"HUMAN_AGENT": HUMAN_AGENT_WINDOW_S, "CUSTOMER_FEEDBACK": CUSTOMER_FEEDBACK_WINDOW_S}
# Retired on 27 April 2026: "all API requests containing [them] will receive error code 100".
RETIRED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})
NOTIFICATION_TYPES = frozenset({"REGULAR", "SILENT_PUSH", "NO_PUSH"})
ATTACHMENT_TYPES = frozenset({"audio", "file", "image", "video", "template"})
BUTTON_TYPES = frozenset({"web_url", "postback", "phone_number", "account_link", "account_unlink", "game_play"})
QUICK_REPLY_TYPES = frozenset({"text", "user_phone_number", "user_email"})

# Meta's documented limits (Send API reference and template pages).
MAX_TEXT = 2000
MAX_METADATA = 1000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_PAYLOAD = 1000
MAX_BUTTON_TITLE = 20
MAX_BUTTON_TEXT = 640
MAX_GENERIC_ELEMENTS = 10
MAX_ELEMENT_TEXT = 80
MAX_RECEIPT_ELEMENTS = 100


def is_text(value: Any, limit: int | None = None) -> bool:
    return isinstance(value, str) and bool(value) and (limit is None or len(value) <= limit)


def _check_buttons(buttons: Any, where: str, minimum: int) -> None:
    if not isinstance(buttons, list) or not minimum <= len(buttons) <= 3:
        raise invalid(f"param {where}[buttons] must have between {minimum} and 3 buttons")
    for i, button in enumerate(buttons):
        at = f"{where}[buttons][{i}]"
        if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
            raise invalid(f"param {at}[type] must be one of {sorted(BUTTON_TYPES)}")
        kind = button["type"]
        if kind in ("web_url", "postback", "phone_number", "game_play") and not is_text(
            button.get("title"), MAX_BUTTON_TITLE
        ):
            raise invalid(f"param {at}[title] is required and must be at most {MAX_BUTTON_TITLE} characters")
        if kind in ("web_url", "account_link") and not is_text(button.get("url")):
            raise invalid(f"param {at}[url] is required")
        if kind in ("postback", "phone_number") and not is_text(button.get("payload"), MAX_PAYLOAD):
            raise invalid(f"param {at}[payload] is required and must be at most {MAX_PAYLOAD} characters")


def _check_template(payload: dict[str, Any]) -> None:
    kind = payload.get("template_type")
    if not is_text(kind):
        raise invalid("param message[attachment][payload][template_type] is required")
    where = "message[attachment][payload]"
    if kind == "button":
        if not is_text(payload.get("text"), MAX_BUTTON_TEXT):
            raise invalid(f"param {where}[text] is required and must be at most {MAX_BUTTON_TEXT} characters")
        _check_buttons(payload.get("buttons"), where, minimum=1)
    elif kind == "generic":
        elements = payload.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_GENERIC_ELEMENTS:
            raise invalid(f"param {where}[elements] must have between 1 and {MAX_GENERIC_ELEMENTS} elements")
        for i, element in enumerate(elements):
            at = f"{where}[elements][{i}]"
            if not isinstance(element, dict) or not is_text(element.get("title"), MAX_ELEMENT_TEXT):
                raise invalid(f"param {at}[title] is required and must be at most {MAX_ELEMENT_TEXT} characters")
            subtitle = element.get("subtitle")
            if subtitle is not None and not (isinstance(subtitle, str) and len(subtitle) <= MAX_ELEMENT_TEXT):
                raise invalid(f"param {at}[subtitle] must be at most {MAX_ELEMENT_TEXT} characters")
            if element.get("buttons") is not None:
                _check_buttons(element["buttons"], at, minimum=0)
    elif kind == "receipt":
        for name in ("recipient_name", "order_number", "currency", "payment_method"):
            if not is_text(payload.get(name)):
                raise invalid(f"param {where}[{name}] is required")
        summary = payload.get("summary")
        if not isinstance(summary, dict) or "total_cost" not in summary:
            raise invalid(f"param {where}[summary][total_cost] is required")
        elements = payload.get("elements", [])
        if not isinstance(elements, list) or len(elements) > MAX_RECEIPT_ELEMENTS:
            raise invalid(f"param {where}[elements] must have at most {MAX_RECEIPT_ELEMENTS} elements")
    # Other template types (media, customer_feedback, utility templates...) are accepted as they are.


def _check_quick_replies(quick_replies: Any) -> None:
    if not isinstance(quick_replies, list) or not 1 <= len(quick_replies) <= MAX_QUICK_REPLIES:
        raise invalid(f"param message[quick_replies] must have between 1 and {MAX_QUICK_REPLIES} elements")
    for i, reply in enumerate(quick_replies):
        at = f"message[quick_replies][{i}]"
        if not isinstance(reply, dict) or reply.get("content_type") not in QUICK_REPLY_TYPES:
            raise invalid(f"param {at}[content_type] must be one of {sorted(QUICK_REPLY_TYPES)}")
        if reply["content_type"] != "text":
            continue
        if not is_text(reply.get("title"), MAX_QUICK_REPLY_TITLE):
            raise invalid(f"param {at}[title] is required and must be at most {MAX_QUICK_REPLY_TITLE} characters")
        if not is_text(reply.get("payload"), MAX_PAYLOAD):
            raise invalid(f"param {at}[payload] is required and must be at most {MAX_PAYLOAD} characters")


def check_message(message: Any) -> None:
    """Refuse a Send API `message` the way Meta does (code 100); the limits are Meta's documented ones."""
    if not isinstance(message, dict):
        raise invalid("param message must be a JSON object")
    text, attachment = message.get("text"), message.get("attachment")
    if text is None and attachment is None:
        raise invalid("param message must have text or an attachment")
    if text is not None and attachment is not None:
        # Emulator choice: Meta's reference lists them as alternatives; the exact refusal is unverified.
        raise invalid("param message must have text or an attachment, not both")
    if text is not None:
        if not is_text(text):
            raise invalid("param message[text] must be a non-empty string")
        # Counted in Unicode code points (a Chinese character is one); Meta says "less than 2000 characters".
        if len(text) > MAX_TEXT:
            raise invalid(f"Length of param message[text] must be less than or equal to {MAX_TEXT}")
    if attachment is not None:
        if not isinstance(attachment, dict) or attachment.get("type") not in ATTACHMENT_TYPES:
            raise invalid(f"param message[attachment][type] must be one of {sorted(ATTACHMENT_TYPES)}")
        payload = attachment.get("payload")
        if not isinstance(payload, dict):
            raise invalid("param message[attachment][payload] must be a JSON object")
        if attachment["type"] == "template":
            _check_template(payload)
        elif not (is_text(payload.get("url")) or payload.get("attachment_id")):
            raise invalid("param message[attachment][payload] needs a url or an attachment_id")
    if message.get("quick_replies") is not None:
        _check_quick_replies(message["quick_replies"])
    metadata = message.get("metadata")
    if metadata is not None and not (isinstance(metadata, str) and len(metadata) <= MAX_METADATA):
        raise invalid(f"param message[metadata] must be a string of at most {MAX_METADATA} characters")
