"""The subscription keeper against the emulator: only OUR app's entry on a Page counts, the app's own level
is checked (and set, with the app token) too, and `/healthz` shows what was missing where.

Real app (web, worker, keeper) on the real Redis and SQLite, pointed at the emulator (tests/test_bot/stack.py).
"""

from __future__ import annotations

from typing import Any

from bot.background import subscription_keeper
from bot.outbound.graph import GraphClient
from bot.outbound.subscriptions import (
    APP_LEVEL,
    REQUIRED_FIELDS,
    AppLevel,
    SubscriptionKeeper,
    check_app_entries,
    ensure_subscribed,
)
from bot.runtime.redis_keys import RedisKeys
from bot.services import GRAPH, REDIS
from tests.conftest import APP_SECRET, PAGE_ID, wait_until
from tests.test_bot.stack import Stack

APP_ID = "555000555"  # the stack's app (tests/conftest.py make_settings, tests/test_bot/stack.py)
OTHER_APP = "777000777"


async def background_checked(stack: Stack) -> None:
    """The background keeper's first round is over (it sleeps 10 minutes then), so it cannot race the test."""
    report_key = RedisKeys(stack.settings.key_prefix).subscriptions_report

    async def kept() -> bool:
        return bool(await stack.client.app[REDIS].exists(report_key))

    await wait_until(kept, what="the background keeper's first check")


async def our_keeper(stack: Stack) -> SubscriptionKeeper:
    """A keeper like the background's, whose callback URL is where this test's server really listens."""
    redis = stack.client.app[REDIS]
    await background_checked(stack)
    settings = stack.settings.model_copy(update={"public_url": str(stack.client.make_url("/")).rstrip("/")})
    return subscription_keeper(settings, stack.client.app[GRAPH], redis)


async def app_entries(stack: Stack) -> list[dict[str, Any]]:
    client = GraphClient(
        base_url=stack.emulator.base_url,
        version="v26.0",
        app_secret=APP_SECRET,
        page_tokens={APP_ID: f"{APP_ID}|{APP_SECRET}"},
    )
    try:
        return await client.fetch_app_subscriptions(APP_ID)
    finally:
        client.close()


async def health(stack: Stack) -> dict[str, Any]:
    resp = await stack.client.get("/healthz")
    return (await resp.json())["checks"]["webhook_subscriptions"]


async def test_another_apps_fields_on_the_page_do_not_hide_that_ours_lack_them(stack: Stack) -> None:
    graph: GraphClient = stack.client.app[GRAPH]
    await background_checked(stack)
    # Our app has only `feed` on the Page; another inbox app there has every field PlusOne needs.
    await stack.emulator.unsubscribe(PAGE_ID)
    await graph.subscribe(PAGE_ID, ["feed"])
    await stack.emulator.subscribe_other_app(PAGE_ID, OTHER_APP, list(REQUIRED_FIELDS))
    assert await ensure_subscribed(graph, PAGE_ID, APP_ID) == list(REQUIRED_FIELDS[1:])
    apps = await graph.fetch_page_subscriptions(PAGE_ID)
    assert set(apps[APP_ID]) == set(REQUIRED_FIELDS), "ours subscribed again"
    assert apps[OTHER_APP] == list(REQUIRED_FIELDS), "the other app's entry untouched"
    assert await ensure_subscribed(graph, PAGE_ID, APP_ID) == []


async def test_the_apps_own_level_is_subscribed_with_our_callback_and_health_shows_each_level(stack: Stack) -> None:
    keeper = await our_keeper(stack)
    try:
        await stack.emulator.drop_app_subscription("page")  # as if removed in the app dashboard
        await stack.emulator.unsubscribe(PAGE_ID)
        reports = await keeper.check_once()
        assert reports[APP_LEVEL].missing == list(REQUIRED_FIELDS) and reports[APP_LEVEL].fixed
        assert reports[PAGE_ID].missing == list(REQUIRED_FIELDS) and reports[PAGE_ID].fixed
        # Meta verified our real /webhook (GET with the verify token) before it took the subscription.
        [entry] = await app_entries(stack)
        assert entry["object"] == "page" and entry["active"] is True
        assert entry["callback_url"] == str(stack.client.make_url("/webhook"))
        assert {f["name"] for f in entry["fields"]} == set(REQUIRED_FIELDS)
        shown = await health(stack)
        assert shown[APP_LEVEL]["ok"] and shown[APP_LEVEL]["fixed"] and shown[APP_LEVEL]["missing"]
        assert shown[PAGE_ID]["ok"] and shown[PAGE_ID]["missing"] == list(REQUIRED_FIELDS)
        # The next round finds both levels whole.
        reports = await keeper.check_once()
        assert all(r.ok and not r.missing and not r.fixed for r in reports.values())
    finally:
        if keeper.app.graph is not None:
            keeper.app.graph.close()


async def test_without_the_app_secret_the_app_level_is_reported_not_guessed(stack: Stack) -> None:
    keeper = await our_keeper(stack)
    assert keeper.app.graph is not None
    keeper.app.graph.close()
    keeper.app = AppLevel(None, APP_ID, keeper.app.callback_url, keeper.app.verify_token)
    reports = await keeper.check_once()
    assert not reports[APP_LEVEL].ok
    assert reports[APP_LEVEL].problems == ["cannot check the app's own subscription without app_secret"]
    shown = await health(stack)
    assert shown[APP_LEVEL]["ok"] is False and "app_secret" in shown[APP_LEVEL]["problems"][0]
    assert shown[PAGE_ID]["ok"] is True


def test_an_inactive_subscription_or_another_callback_is_a_problem() -> None:
    fields = [{"name": f, "version": "v26.0"} for f in REQUIRED_FIELDS]
    here = "https://shop.example/webhook"
    whole = check_app_entries([{"object": "page", "callback_url": here, "active": True, "fields": fields}], here)
    assert whole.ok and not whole.missing
    inactive = check_app_entries([{"object": "page", "callback_url": here, "active": False, "fields": fields}], here)
    assert inactive.problems == ["the app's page subscription is not active"]
    elsewhere = check_app_entries(
        [{"object": "page", "callback_url": "https://old.example/hook", "active": True, "fields": fields[:2]}], here
    )
    assert elsewhere.missing == list(REQUIRED_FIELDS[2:])
    assert "old.example" in elsewhere.problems[0]
    other_object = check_app_entries([{"object": "user", "callback_url": here, "active": True, "fields": fields}], here)
    assert other_object.missing == list(REQUIRED_FIELDS)


async def test_after_a_failed_check_the_keeper_tries_again_soon_not_in_ten_minutes(stack: Stack) -> None:
    keeper = await our_keeper(stack)
    keeper.retry_s = 0.05  # the interval stays 10 minutes: only the retry can bring the second check
    await stack.emulator.unsubscribe(PAGE_ID)
    await stack.emulator.set_fault("server_error", count=1, path_contains="/subscribed_apps")
    running = keeper.start()
    try:

        async def page_fixed() -> bool:  # read from the keeper's report: a Graph call here could take the fault
            return (await health(stack)).get(PAGE_ID, {}).get("fixed") is True

        await wait_until(page_fixed, what="the keeper's second try subscribed the Page again")
    finally:
        await running.stop()
