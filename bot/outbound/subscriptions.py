"""Keep each Page subscribed to the webhook fields PlusOne needs.

Meta unsubscribes an app from a Page whose webhook kept failing (about an hour, docs/meta-platform.md §1), and
a Page admin can remove fields by hand. This checks `GET /{page-id}/subscribed_apps` now and then and
re-subscribes, with an alert in the log, instead of letting a shop go silently deaf.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from bot.outbound.graph import GraphClient, GraphError
from bot.runtime.loops import Loop

log = logging.getLogger(__name__)

REQUIRED_FIELDS = (
    "feed",
    "live_videos",
    "messages",
    "messaging_postbacks",
    "messaging_referrals",
    "message_echoes",
    "message_deliveries",
    "message_reads",
    "message_reactions",
    "message_template_status_update",  # Meta's review of our utility templates (bot.outbound.templates)
)


def missing_fields(subscribed: Iterable[str], required: Iterable[str] = REQUIRED_FIELDS) -> list[str]:
    """The required fields not in `subscribed`, in the required order. Pure."""
    have = set(subscribed)
    return [f for f in required if f not in have]


async def ensure_subscribed(graph: GraphClient, page_id: str) -> list[str]:
    """Re-subscribe the Page if any field is missing; the fields that were missing."""
    missing = missing_fields(await graph.fetch_subscribed_fields(page_id))
    if missing:
        log.warning("ALERT: Page %s was not subscribed to %s; subscribing again", page_id, ", ".join(missing))
        await graph.subscribe(page_id, list(REQUIRED_FIELDS))
    return missing


class SubscriptionKeeper(Loop):
    """The loop that checks every Page's subscription each `interval_s`, starting at once."""

    def __init__(self, graph: GraphClient, interval_s: float = 600.0) -> None:
        super().__init__("plusone-subscriptions")
        self.graph = graph
        self.interval_s = interval_s

    async def loop(self) -> None:
        while not self.stopping:
            for page_id in sorted(self.graph.page_tokens):
                try:
                    await ensure_subscribed(self.graph, page_id)
                except GraphError as error:
                    log.error("could not check the webhook subscription of Page %s: %s", page_id, error)
            await self.sleep(self.interval_s)
