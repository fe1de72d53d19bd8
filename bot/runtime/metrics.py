"""Prometheus metrics, aggregated across every web and worker process through one Redis hash.

Counters are `HINCRBY`s on `RedisKeys.counters` (field names below), so `GET /metrics` on any web
process shows the whole deployment. Gauges (backlog, pending, dead letters) are read live from Redis.
The only counter kept in process memory is "rejected because Redis was unreachable", for obvious reasons.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry


def accepted_field() -> str:
    return "deliveries:accepted"


def rejected_field(reason: str) -> str:
    return f"deliveries:rejected:{reason}"


def event_field(kind: str, outcome: str) -> str:
    return f"events:{kind}:{outcome}"


DEAD_LETTERED_FIELD = "dead_letters:added"
DEAD_LETTER_RETRIED_FIELD = "dead_letters:retried"


@dataclass
class StreamGauges:
    backlog: int = 0  # entries not yet acknowledged (incl. pending)
    pending: int = 0  # read by a worker, not yet acknowledged
    oldest_age_seconds: float = 0.0
    dead_letters: int = 0


@dataclass
class MetricsSnapshot:
    counters: dict[str, int]
    gauges: StreamGauges
    local_rejections: Counter[str] = field(default_factory=Counter)


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: MetricsSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        deliveries = CounterMetricFamily(
            "plusone_webhook_deliveries",
            "Webhook deliveries by result and reason",
            labels=["result", "reason"],
        )
        deliveries.add_metric(["accepted", ""], snap.counters.get(accepted_field(), 0))
        rejected: Counter[str] = Counter(snap.local_rejections)
        events = CounterMetricFamily("plusone_events", "Inbound events by kind and outcome", labels=["kind", "outcome"])
        for name, value in sorted(snap.counters.items()):
            parts = name.split(":")
            if parts[:2] == ["deliveries", "rejected"] and len(parts) == 3:
                rejected[parts[2]] += value
            elif parts[0] == "events" and len(parts) == 3:
                events.add_metric([parts[1], parts[2]], value)
        for reason, value in sorted(rejected.items()):
            deliveries.add_metric(["rejected", reason], value)
        yield deliveries
        yield events
        dead = CounterMetricFamily(
            "plusone_dead_letters",
            "Entries moved to / retried from the dead-letter stream",
            labels=["action"],
        )
        dead.add_metric(["added"], snap.counters.get(DEAD_LETTERED_FIELD, 0))
        dead.add_metric(["retried"], snap.counters.get(DEAD_LETTER_RETRIED_FIELD, 0))
        yield dead
        g = snap.gauges
        yield GaugeMetricFamily("plusone_stream_backlog", "Ingest stream entries not yet acknowledged", value=g.backlog)
        yield GaugeMetricFamily(
            "plusone_stream_pending", "Entries read by a worker, not yet acknowledged", value=g.pending
        )
        yield GaugeMetricFamily(
            "plusone_stream_lag_seconds", "Age of the oldest unacknowledged entry", value=g.oldest_age_seconds
        )
        yield GaugeMetricFamily(
            "plusone_dead_letters_current", "Entries in the dead-letter stream", value=g.dead_letters
        )


def render_metrics(snapshot: MetricsSnapshot) -> bytes:
    """Prometheus text exposition of a snapshot (pure)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return generate_latest(registry)


def decode_counters(raw: dict[bytes, bytes] | dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in raw.items():
        name = key.decode() if isinstance(key, bytes) else key
        out[name] = int(value)
    return out


def stream_id_age_seconds(stream_id: bytes | str | None, now: float | None = None) -> float:
    """How old an entry is, from the millisecond time in its stream id."""
    if not stream_id:
        return 0.0
    sid = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms = int(sid.split("-", 1)[0])
    return max(0.0, (now if now is not None else time.time()) - ms / 1000)


def count_events(outcomes: Iterable[tuple[str, str]]) -> Counter[str]:
    return Counter(event_field(kind, outcome) for kind, outcome in outcomes)
