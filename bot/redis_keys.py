"""Every Redis key PlusOne uses, in one place, with its lifetime beside it (arq's constants.py is the model).

Keys that are used together share the `{ingest}` hash tag so they land on one slot of a Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

CONSUMER_GROUP = "workers"


@dataclass(frozen=True)
class RedisKeys:
    prefix: str = "plusone"

    @property
    def ingest_stream(self) -> str:
        """Raw webhook bodies appended by `POST /webhook`. Entries live until a worker has committed their
        effects and acknowledged them (then they are deleted), so the stream length is the backlog."""
        return f"{self.prefix}:{{ingest}}:stream"

    @property
    def dead_letters(self) -> str:
        """Entries that failed `worker_max_attempts` times, with the error. Kept until retried or deleted."""
        return f"{self.prefix}:{{ingest}}:dead"

    @property
    def counters(self) -> str:
        """Hash of monotonically increasing counters for /metrics, shared by every process. Never expires."""
        return f"{self.prefix}:{{ingest}}:counters"

    @property
    def outbox_wake(self) -> str:
        """A one-element list pushed when outbox rows are queued; senders BLPOP it instead of polling."""
        return f"{self.prefix}:{{outbox}}:wake"

    def live_reader(self, video_id: str) -> str:
        """Which process reads a live video's comments (stream and poll): a lease renewed while it reads,
        so with several workers one reads each video. Expires `live_lease_s` after its holder stops."""
        return f"{self.prefix}:live:{video_id}:reader"

    def live_cursor(self, video_id: str) -> str:
        """The newest `created_time` (epoch s) read from a live video's comments edge, so a restarted
        reader goes on from there. Expires 7 days after the last poll (a live video is long over by then)."""
        return f"{self.prefix}:live:{video_id}:cursor"
