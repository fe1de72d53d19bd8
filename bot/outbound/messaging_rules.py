"""Meta's messaging rules, decided before anything is sent. Pure.

- Free-form messages only inside the shopper's 24-hour window, opened by their own message, postback,
  referral or reaction (a comment does not open it).
- After it, only a human agent's reply, tagged `HUMAN_AGENT`, within 7 days of the shopper's last message,
  and only from an app that Meta granted the Human Agent permission through App Review (the setting
  `human_agent_permission`; without it Meta refuses the tag). Automated messages never carry that tag
  (Chatwoot's bug: bot replies wrongly tagged HUMAN_AGENT).
- One private reply per comment, within 7 days of the comment. On Instagram, a comment on a live only while
  that live is live, and about 750 private replies an hour per account (Instagram Private Replies, 2 July 2026).
- Never the tags Meta retired on 27 April 2026 (CONFIRMED_EVENT_UPDATE, ACCOUNT_UPDATE, POST_PURCHASE_UPDATE).
  An order update after the window goes as a utility template Meta approved (messaging type `UTILITY`),
  or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
PRIVATE_REPLY_WINDOW = timedelta(days=7)
RETIRED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
HUMAN_AGENT = "HUMAN_AGENT"


class Author(StrEnum):
    BOT = "bot"
    AGENT = "agent"


class RefusalCode(StrEnum):
    NO_WINDOW = "no_window"  # the shopper never wrote to the Page
    OUTSIDE_WINDOW = "outside_window"  # 24 h passed; only a person may answer, within 7 days
    OUTSIDE_HUMAN_WINDOW = "outside_human_window"  # 7 days passed: nobody may write first
    RETIRED_TAG = "retired_tag"
    BOT_CANNOT_USE_TAG = "bot_cannot_use_tag"
    PRIVATE_REPLY_EXPIRED = "private_reply_expired"
    PRIVATE_REPLY_USED = "private_reply_used"
    PRIVATE_REPLY_LIVE_ENDED = "private_reply_live_ended"  # Instagram: a live comment's reply only during the live
    NO_CHANNEL = "no_channel"  # an order update after the window, with no approved template to carry it
    NO_HUMAN_AGENT = "no_human_agent"  # 24 h passed and the app lacks Meta's Human Agent permission


@dataclass(frozen=True)
class SendDecision:
    allowed: bool
    messaging_type: str | None = None  # RESPONSE | MESSAGE_TAG
    tag: str | None = None
    refusal: RefusalCode | None = None
    reason: str = ""
    use_template: bool = False  # send the row's utility template instead of its free-form message

    @classmethod
    def refuse(cls, code: RefusalCode, reason: str) -> SendDecision:
        return cls(allowed=False, refusal=code, reason=reason)


def _ago(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def decide_message(
    now: datetime,
    last_user_at: datetime | None,
    author: Author,
    tag: str | None = None,
    *,
    human_agent: bool = False,
) -> SendDecision:
    """May this message go to the shopper now, and how (messaging type and tag)? `human_agent`: the app has
    Meta's Human Agent permission, so a person may answer with the HUMAN_AGENT tag for 7 days."""
    if tag in RETIRED_TAGS:
        return SendDecision.refuse(RefusalCode.RETIRED_TAG, f"Meta retired the {tag} tag on 27 April 2026")
    if tag is not None and tag != HUMAN_AGENT:
        return SendDecision.refuse(RefusalCode.RETIRED_TAG, f"the {tag} tag is not one PlusOne sends")
    if tag == HUMAN_AGENT and author is not Author.AGENT:
        return SendDecision.refuse(RefusalCode.BOT_CANNOT_USE_TAG, "only a person may send with the HUMAN_AGENT tag")
    if last_user_at is None:
        return SendDecision.refuse(RefusalCode.NO_WINDOW, "the shopper has not written to the Page yet")
    age = now - last_user_at
    if age <= STANDARD_WINDOW:
        return SendDecision(allowed=True, messaging_type="RESPONSE")
    if author is Author.AGENT and age <= HUMAN_AGENT_WINDOW:
        if not human_agent:
            return SendDecision.refuse(
                RefusalCode.NO_HUMAN_AGENT,
                f"the shopper last wrote {_ago(age)} ago; after 24 hours Meta lets a person reply (for 7 days) only "
                "from an app with its Human Agent permission, which this shop has not said it has "
                "(human_agent_permission); order updates still go as an approved utility template",
            )
        return SendDecision(allowed=True, messaging_type="MESSAGE_TAG", tag=HUMAN_AGENT)
    if author is Author.AGENT:
        return SendDecision.refuse(
            RefusalCode.OUTSIDE_HUMAN_WINDOW,
            f"the shopper last wrote {_ago(age)} ago; after 7 days the shopper has to write first",
        )
    return SendDecision.refuse(
        RefusalCode.OUTSIDE_WINDOW,
        f"the shopper last wrote {_ago(age)} ago; after 24 hours only a person may reply (within 7 days)",
    )


UTILITY = "UTILITY"


def decide_order_update(
    now: datetime, last_user_at: datetime | None, template: str | None, approved: bool, *, instagram: bool = False
) -> SendDecision:
    """How may news of an order reach the shopper now: free-form in the window, else the approved template.

    Utility templates are a Messenger feature: in Instagram Direct, news after the window has no channel
    (Instagram's only way past it is HUMAN_AGENT, a person's reply: docs/meta-platform.md, "Instagram").
    """
    free_form = decide_message(now, last_user_at, Author.BOT)
    if free_form.allowed:
        return free_form
    if instagram:
        return SendDecision.refuse(
            RefusalCode.NO_CHANNEL, f"{free_form.reason}, and Instagram has no utility templates: nothing was sent"
        )
    if template and approved:
        return SendDecision(allowed=True, messaging_type=UTILITY, use_template=True)
    why = f"no approved utility template {template!r} for the shopper's language" if template else "no utility template"
    return SendDecision.refuse(RefusalCode.NO_CHANNEL, f"{free_form.reason}, and {why}: nothing was sent")


def decide_private_reply(now: datetime, comment_created_at: datetime | None, already_sent: bool) -> SendDecision:
    """May the one private reply to this comment go now?"""
    if already_sent:
        return SendDecision.refuse(RefusalCode.PRIVATE_REPLY_USED, "this comment already had its one private reply")
    if comment_created_at is not None and now - comment_created_at > PRIVATE_REPLY_WINDOW:
        return SendDecision.refuse(
            RefusalCode.PRIVATE_REPLY_EXPIRED,
            f"the comment is {_ago(now - comment_created_at)} old; private replies are allowed for 7 days",
        )
    return SendDecision(allowed=True, messaging_type="RESPONSE")


# Instagram's Private Replies API: "750 calls per hour per Facebook Page for private replies to comments on
# Instagram posts and reels" (Messenger Platform rate limits; docs/meta-platform.md, "Instagram").
INSTAGRAM_PRIVATE_REPLIES_PER_HOUR = 750


def decide_instagram_private_reply(
    now: datetime,
    comment_created_at: datetime | None,
    already_sent: bool,
    *,
    on_live: bool = False,
    live_ended_at: datetime | None = None,
) -> SendDecision:
    """May the one private reply to this Instagram comment go now? As on Facebook (one, within 7 days), and a
    comment on an Instagram live only while that live is live (`live_ended_at` None: still live, as far as
    we know; Meta refuses it otherwise and the refusal is final)."""
    decision = decide_private_reply(now, comment_created_at, already_sent)
    if decision.allowed and on_live and live_ended_at is not None and now >= live_ended_at:
        return SendDecision.refuse(
            RefusalCode.PRIVATE_REPLY_LIVE_ENDED,
            f"the Instagram live ended {_ago(now - live_ended_at)} ago; a live comment's private reply can only "
            "be sent during the live",
        )
    return decision
