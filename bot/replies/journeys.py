"""Words of journey messages that the engine does not render: the subject of a journey's e-mail (pure)."""

from __future__ import annotations

from bot.replies.i18n import gettext

SUBJECT = "A message from {shop}"
SUBJECT_NO_SHOP = "A message from the shop"


def journey_email_subject(locale: str, shop: str) -> str:
    return gettext(locale, SUBJECT, shop=shop) if shop.strip() else gettext(locale, SUBJECT_NO_SHOP)
