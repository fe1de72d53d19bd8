"""Every Redis key PlusOne uses, in one place, with its lifetime beside it (arq's constants.py is the model).

A Redis Cluster runs a command, a MULTI/EXEC transaction or a Lua script only when all its keys hash to
one slot, and only the part of a key in its first braces (the hash tag) decides the slot. So keys used
together share a tag:
- `{ingest}`: the stream, its dead letters and the counters (a batch is appended and counted in one
  script; an entry moves to the dead letters, and back, in one transaction);
- `{page:<id>}`: a Page's send-rate bucket and its threads' buckets (both checked in one script);
Keys always used alone (inbox sessions, sign-in limits, the outbox wake-up list, live readers' leases and cursors) need
no tag. The inbox's pub/sub channel is no key: a PUBLISH on any node reaches subscribers on every node.
tests/test_redis_cluster.py checks that each group above is one slot, and runs the flow on a cluster.
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

    def send_rate(self, page_id: str, thread: str) -> tuple[str, str]:
        """The GCRA buckets of a Page and of one of its threads (the send-rate limiter checks both in one
        script, so one `{page:<id>}` slot). Each expires a second after its bucket is full again."""
        tag = f"{{page:{page_id}}}"
        return f"{self.prefix}:{tag}:send-rate", f"{self.prefix}:{tag}:send-rate:{thread}"

    def send_usage(self, page_id: str) -> str:
        """The share of a Page's send rate to use while Meta reports it near its limits (every sender reads
        it); it expires when no answer has refreshed it for a while."""
        return f"{self.prefix}:{{page:{page_id}}}:send-usage"

    def instagram_private_replies(self, page_id: str) -> str:
        """The GCRA bucket of a Page's Instagram private replies (about 750 an hour, Meta's own limit)."""
        return f"{self.prefix}:{{page:{page_id}}}:ig-private-replies"

    def signin(self, name: str, address: str) -> str:
        """The GCRA bucket of sign-in tries of one name from one client address (never per name or per
        address alone: that would let anyone lock others out). A space parts them: neither holds one.
        Expires a second after the bucket is full again; a right password deletes it."""
        return f"{self.prefix}:inbox:signin:{address} {name}"

    def inbox_session(self, token_hash: str) -> str:
        """An inbox session under a hash of its token (the cookie holds the token): user id and CSRF token,
        expiring 12 hours after its last use."""
        return f"{self.prefix}:inbox:session:{token_hash}"

    @property
    def subscriptions_report(self) -> str:
        """Hash of the subscription keeper's last findings (`app` or a Page id -> JSON), for `/healthz`.
        Rewritten at each check (every few minutes); never expires."""
        return f"{self.prefix}:meta:subscriptions"

    @property
    def messenger_profile_report(self) -> str:
        """Hash of the Messenger profile keeper's last findings (Page id -> JSON), for `/healthz`. Rewritten
        at each check; never expires."""
        return f"{self.prefix}:meta:messenger-profile"

    @property
    def inbox_channel(self) -> str:
        """The pub/sub channel of the inbox's live notes (no data is stored under it)."""
        return f"{self.prefix}:inbox:live"
