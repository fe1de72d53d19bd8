"""What the merchant reads when Meta stopped one of their Pages sending: the inbox's banner. Pure.

One alert per paused Page (`bot.store.tables.PageState`), by the kind of refusal that paused it
(`GraphErrorClass` values): what Meta did in words, and what to do about it, in English and Traditional
Chinese through the catalog. `until` is already a time in the shop's zone.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.replies.i18n import gettext

TITLE = "Sending paused on Page {page}"
REASONS = {
    "throttled": "Meta is limiting how many messages this Page may send for now (rate limit).",
    "page_restricted": "Meta has temporarily restricted this Page from sending messages.",
    "permission": "Meta refused: the app lacks a permission it needs to send for this Page.",
    "bad_token": "Meta no longer accepts this Page's access token.",
}
ACTIONS = {
    "throttled": "Nothing is lost: messages wait and go out by themselves when Meta allows, about {until}.",
    "page_restricted": (
        "Messages wait. Check the Page's status in Meta Business Suite and settle it with Meta, then resume "
        "sending. One message is tried again at {until}."
    ),
    "permission": (
        "Messages wait. Connect the Page to the app again granting every permission asked, then resume "
        "sending. One message is tried again at {until}."
    ),
    "bad_token": "Messages wait. Renew the Page's access token; sending resumes by itself once it works.",
}
UNKNOWN_REASON = "Meta refused this Page's messages."
UNKNOWN_ACTION = "Messages wait until sending is resumed."


@dataclass(frozen=True)
class PageAlert:
    title: str
    reason: str
    action: str


def page_alert(locale: str, page_id: str, kind: str | None, until: str) -> PageAlert:
    """The banner's words for a Page paused for `kind`, in `locale`."""
    reason = REASONS.get(kind or "bad_token", UNKNOWN_REASON)
    action = ACTIONS.get(kind or "bad_token", UNKNOWN_ACTION)
    return PageAlert(
        title=gettext(locale, TITLE, page=page_id),
        reason=gettext(locale, reason),
        action=gettext(locale, action, until=until or "—") if "{until}" in action else gettext(locale, action),
    )
