"""What a lucky draw's winner reads, in their language. Pure, no I/O."""

from __future__ import annotations

from bot.replies.carts import first_name
from bot.replies.i18n import gettext


def draw_win(locale: str, name: str | None, title: str) -> str:
    """The winner's news: where they won, and what to do (reply, so the shop can arrange the prize)."""
    who = first_name(name)
    if who:
        head = gettext(locale, "🎉 Congratulations {name}! You won our lucky draw at {sale}.", name=who, sale=title)
    else:
        head = gettext(locale, "🎉 Congratulations! You won our lucky draw at {sale}.", sale=title)
    return "\n".join([head, gettext(locale, "Reply to this message and we'll arrange your prize with you.")])
