"""Instagram events resolve to the Page their account is linked to (bot/inbound/accounts.py)."""

from __future__ import annotations

import json

from bot.inbound.accounts import UNKNOWN_ACCOUNT, resolve_accounts
from bot.inbound.events import Channel, CommentEvent, IgnoredEvent, MessageEvent
from bot.inbound.payloads import IG_LIVE_SOURCE, parse_delivery
from tests.conftest import DATA, PAGE_ID

ACCOUNT = "17841405309211844"  # the account of Meta's samples


def sample(name: str) -> bytes:
    return (DATA / "meta" / name).read_bytes()


def test_an_instagram_comment_becomes_its_pages_with_the_account_kept() -> None:
    [event] = resolve_accounts(parse_delivery(sample("instagram_comments_webhook.json")), {ACCOUNT: PAGE_ID})
    assert isinstance(event, CommentEvent)
    assert (event.page_id, event.account_id, event.channel) == (PAGE_ID, ACCOUNT, Channel.INSTAGRAM)
    assert (event.post_id, event.author_id, event.message) == ("17918195224117851", "1253947108412238", "A+1")
    assert not event.from_page and event.source == "webhook"


def test_a_live_comment_is_marked_and_the_accounts_own_comment_is_its_own() -> None:
    [live] = resolve_accounts(parse_delivery(sample("instagram_live_comments_webhook.json")), {ACCOUNT: PAGE_ID})
    assert isinstance(live, CommentEvent) and live.source == IG_LIVE_SOURCE
    own = json.loads(sample("instagram_comments_webhook.json"))
    own["entry"][0]["changes"][0]["value"]["from"] = {"id": ACCOUNT, "username": "shop"}
    [event] = resolve_accounts(parse_delivery(json.dumps(own)), {ACCOUNT: PAGE_ID})
    assert event.from_page  # the loop guard holds on Instagram: the shop comments as its account


def test_a_direct_message_and_an_unknown_account() -> None:
    body = sample("instagram_message_webhook.json")
    [message] = resolve_accounts(parse_delivery(body), {ACCOUNT: PAGE_ID})
    assert isinstance(message, MessageEvent) and (message.page_id, message.psid) == (PAGE_ID, "1253947108412238")
    [ignored] = resolve_accounts(parse_delivery(body), {})
    assert isinstance(ignored, IgnoredEvent) and ignored.reason == UNKNOWN_ACCOUNT and ignored.key is None
    # Facebook's events pass unchanged.
    facebook = parse_delivery(sample("messenger_text.json"))
    assert resolve_accounts(facebook, {}) == facebook
