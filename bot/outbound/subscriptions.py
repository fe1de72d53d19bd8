"""Keep PlusOne's app subscribed to the webhook fields it needs, at both of Meta's levels.

Meta delivers a Page field only when it is subscribed twice (docs/meta-platform.md, "Subscriptions"):
- at the app's level, `GET|POST /{app-id}/subscriptions` with the app access token `{app-id}|{app-secret}`:
  object `page`, its fields, the callback URL, active;
- on each Page, `GET|POST /{page-id}/subscribed_apps` with the Page token: the Page lists every app it
  has subscribed, each with its own fields, so only OUR app's entry (matched by app id) counts.

Meta unsubscribes an app from a Page whose webhook kept failing (about an hour, §1), and a Page admin can
remove fields by hand: the Page level is re-subscribed at once. The app level is set when the app secret
is known (it is, to check webhook signatures) and reported otherwise. `SubscriptionKeeper` checks both
now and then and keeps what it found in Redis, where `/healthz` shows what is missing where.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

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
APP_LEVEL = "app"  # the report's key for the app's own level (the others are Page ids)


def missing_fields(subscribed: Iterable[str], required: Iterable[str] = REQUIRED_FIELDS) -> list[str]:
    """The required fields not in `subscribed`, in the required order. Pure."""
    have = set(subscribed)
    return [f for f in required if f not in have]


@dataclass
class LevelReport:
    """What one level (the app's, or one Page's) lacked when checked, and what was done about it."""

    missing: list[str] = field(default_factory=list)  # required fields that were not subscribed
    problems: list[str] = field(default_factory=list)  # other faults in words (inactive, callback, no app id)
    fixed: bool = False  # subscribed again just now
    error: str | None = None  # Meta's refusal of the check or of the fix

    @property
    def ok(self) -> bool:
        return self.error is None and (self.fixed or (not self.missing and not self.problems))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def our_page_fields(apps: Mapping[str, Sequence[str]], app_id: str | None) -> list[str] | None:
    """Our app's fields on a Page (empty when it is not listed); None when we cannot tell whose is ours. Pure."""
    if app_id is None:
        return None
    return list(apps.get(app_id, []))


def check_app_entries(
    entries: Sequence[Mapping[str, Any]], callback_url: str | None, required: Iterable[str] = REQUIRED_FIELDS
) -> LevelReport:
    """The app-level `page` subscription against what PlusOne needs. Pure."""
    entry = next((e for e in entries if e.get("object") == "page"), None)
    report = LevelReport()
    if entry is None:
        report.missing = list(required)
        report.problems.append("the app has no webhook subscription for object page")
        return report
    names = [f.get("name") if isinstance(f, Mapping) else f for f in entry.get("fields", [])]
    report.missing = missing_fields([str(n) for n in names if n], required)
    if entry.get("active") is False:
        report.problems.append("the app's page subscription is not active")
    if callback_url and entry.get("callback_url") != callback_url:
        report.problems.append(f"the callback URL is {entry.get('callback_url')!r}, not {callback_url!r}")
    return report


async def ensure_subscribed(graph: GraphClient, page_id: str, app_id: str | None = None) -> list[str]:
    """Re-subscribe the Page if OUR app lacks a field there; the fields that were missing."""
    return (await check_page(graph, page_id, app_id)).missing


async def check_page(graph: GraphClient, page_id: str, app_id: str | None) -> LevelReport:
    """The Page level: our app's entry in the Page's list, subscribed again when it lacks a field."""
    report = LevelReport()
    apps = await graph.fetch_page_subscriptions(page_id)
    ours = our_page_fields(apps, app_id)
    if ours is None:
        # Without our app id every app's fields look like ours: check the union, and say it is a guess.
        report.problems.append("app_id is not set: cannot tell our app's entry from other apps'")
        ours = [f for fields in apps.values() for f in fields]
    report.missing = missing_fields(ours)
    if report.missing:
        log.warning("ALERT: Page %s was not subscribed to %s; subscribing again", page_id, ", ".join(report.missing))
        await graph.subscribe(page_id, list(REQUIRED_FIELDS))
        report.fixed = True
    return report


async def check_app(
    app_graph: GraphClient | None, app_id: str | None, callback_url: str | None, verify_token: str | None
) -> LevelReport:
    """The app level: read with the app token and, when something lacks, subscribed again (callback, fields)."""
    if app_graph is None or app_id is None:
        missing = [n for n, v in (("app_id", app_id), ("app_secret", app_graph)) if v is None]
        return LevelReport(problems=[f"cannot check the app's own subscription without {' and '.join(missing)}"])
    report = check_app_entries(await app_graph.fetch_app_subscriptions(app_id), callback_url)
    if report.missing or report.problems:
        if callback_url is None or verify_token is None:
            report.problems.append("cannot subscribe the app: no callback URL or verify token")
            return report
        lacked = report.missing or report.problems
        log.warning("ALERT: the app's page subscription lacked %s; subscribing again", lacked)
        await app_graph.subscribe_app(app_id, "page", callback_url, list(REQUIRED_FIELDS), verify_token)
        report.fixed = True
    return report


@dataclass
class AppLevel:
    """What the keeper needs for the app's own level: a client holding the app token under the app id."""

    graph: GraphClient | None
    app_id: str | None
    callback_url: str | None
    verify_token: str | None


def app_token_client(graph: GraphClient, app_id: str | None, app_secret: str | None) -> GraphClient | None:
    """A client for the app-level edges: the app access token `{app-id}|{app-secret}`, kept under the app id
    (the adapter's calls name whose token to use by that key). None without the id or the secret."""
    if not app_id or not app_secret:
        return None
    return GraphClient(
        base_url=graph.base_url,
        version=graph.version,
        app_secret=app_secret,
        page_tokens={app_id: f"{app_id}|{app_secret}"},
        timeout=graph.timeout,
        connections=2,
    )


class SubscriptionKeeper(Loop):
    """The loop that checks the app's and every Page's subscription each `interval_s`, starting at once,
    and keeps the findings in `report_key` (a Redis hash: `app` or a Page id -> JSON) for `/healthz`.

    After a failed check it tries again in `retry_s`: at start our own /webhook may not listen yet when
    Meta verifies the callback, and a passing fault should not leave a Page deaf for `interval_s`."""

    def __init__(
        self,
        graph: GraphClient,
        interval_s: float = 600.0,
        *,
        app: AppLevel | None = None,
        redis: Redis | RedisCluster | None = None,
        report_key: str | None = None,
        retry_s: float = 30.0,
    ) -> None:
        super().__init__("plusone-subscriptions")
        self.graph = graph
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.app = app or AppLevel(None, None, None, None)
        self.redis = redis
        self.report_key = report_key

    async def check_once(self) -> dict[str, LevelReport]:
        reports: dict[str, LevelReport] = {}
        app = self.app
        try:
            reports[APP_LEVEL] = await check_app(app.graph, app.app_id, app.callback_url, app.verify_token)
        except GraphError as error:
            log.error("could not check or set the app's webhook subscription: %s", error)
            reports[APP_LEVEL] = LevelReport(error=str(error))
        for page_id in sorted(self.graph.page_tokens):
            try:
                reports[page_id] = await check_page(self.graph, page_id, app.app_id)
            except GraphError as error:
                log.error("could not check the webhook subscription of Page %s: %s", page_id, error)
                reports[page_id] = LevelReport(error=str(error))
        await self._keep(reports)
        return reports

    async def _keep(self, reports: dict[str, LevelReport]) -> None:
        if self.redis is None or self.report_key is None:
            return
        mapping = {key: json.dumps(report.to_dict(), ensure_ascii=False) for key, report in reports.items()}
        try:
            await self.redis.delete(self.report_key)
            await self.redis.hset(self.report_key, mapping=mapping)  # type: ignore[misc]
        except RedisError as error:
            log.error("could not keep the subscription report: %s", error)

    async def loop(self) -> None:
        try:
            while not self.stopping:
                reports = await self.check_once()
                failed = any(report.error is not None for report in reports.values())
                await self.sleep(self.retry_s if failed else self.interval_s)
        finally:
            if self.app.graph is not None:
                self.app.graph.close()


async def subscription_report(redis: Redis | RedisCluster, report_key: str) -> dict[str, Any]:
    """The keeper's last findings, for `/healthz`: `app` and each Page id -> what lacked and what was done."""
    raw = await redis.hgetall(report_key)  # type: ignore[misc]
    report: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else str(key)
        try:
            report[name] = json.loads(value)
        except ValueError:
            continue
    return dict(sorted(report.items()))
