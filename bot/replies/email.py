"""What a reader of our e-mails reads around the shop's own text: the footer with the unsubscribe link (pure)."""

from __future__ import annotations

from html import escape

from bot.replies.i18n import gettext


def footer_text(locale: str, unsubscribe_url: str) -> str:
    """The plain-text footer: why they get it and how to stop it."""
    return "\n\n-- \n" + gettext(locale, "No more e-mails like this? Unsubscribe: {url}", url=unsubscribe_url)


def footer_html(locale: str, unsubscribe_url: str, pixel_url: str) -> str:
    """The HTML footer: the unsubscribe link and the 1x1 open pixel."""
    link = f'<a href="{escape(unsubscribe_url)}">{escape(gettext(locale, "Unsubscribe"))}</a>'
    note = escape(gettext(locale, "No more e-mails like this?"))
    return (
        f'<hr><p style="font-size:12px;color:#666">{note} {link}</p>'
        f'<img src="{escape(pixel_url)}" width="1" height="1" alt="">'
    )


def text_as_html(text: str) -> str:
    """A text-only e-mail's HTML alternative: the same words, paragraphs kept."""
    paragraphs = [escape(p).replace("\n", "<br>") for p in text.split("\n\n") if p.strip()]
    return "".join(f"<p>{p}</p>" for p in paragraphs)
