"""PlusOne on a real Redis Cluster: three primaries of Debian's redis-server on 127.0.0.1 (no replicas).

The flow runs end to end through the cluster client (settings.redis_cluster): a signed comment webhook
goes onto the ingest stream, a worker claims stock and the outbox sends the private reply to the Graph
emulator, while the inbox's live note crosses the cluster's pub/sub. The parts that need keys in one slot
(scripts and transactions: dead letters, send-rate and sign-in limits) are driven directly as well; a
cluster answers CROSSSLOT to any of them whose keys are not.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from sqlalchemy import select

from bot.inbound.ingest import IngestStream
from bot.inbox.auth import SignInLimiter, SignInLimits
from bot.outbound.rate_limit import RateLimits, SendRateLimiter
from bot.runtime.metrics import DEAD_LETTER_RETRIED_FIELD, DEAD_LETTERED_FIELD
from bot.runtime.redis import redis_client
from bot.runtime.redis_keys import RedisKeys
from bot.services import INBOX_HUB, REDIS
from carts.tables import Product, StockClaim
from config.settings import SettingsError, load_settings
from tests.conftest import PAGE_ID, wait_until
from tests.redis_servers import LocalRedisCluster
from tests.test_bot.stack import Stack, start_stack
from tests.test_bot.test_handlers.test_comments import private_replies, seed_shop


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    nodes = LocalRedisCluster()
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture
async def cluster_redis(cluster: LocalRedisCluster) -> AsyncIterator[Redis]:
    client = redis_client(cluster.url, cluster=True)
    yield client
    await client.aclose()


@pytest.fixture
async def cluster_stack(aiohttp_client: Any, tmp_path: Path, cluster: LocalRedisCluster) -> AsyncIterator[Stack]:
    async for running in start_stack(aiohttp_client, tmp_path, cluster, redis_cluster=True, fallback_cooldown_s=3600):
        yield running


def test_a_cluster_needs_a_tcp_url() -> None:
    with pytest.raises(SettingsError, match="PLUSONE_REDIS_CLUSTER"):
        load_settings({"PLUSONE_REDIS_CLUSTER": "true"}, data_dir=Path("/nonexistent"))  # embedded: one node
    with pytest.raises(SettingsError, match="PLUSONE_REDIS_CLUSTER"):
        load_settings(
            {"PLUSONE_REDIS_CLUSTER": "true", "PLUSONE_REDIS_URL": "unix:///tmp/r.sock"}, data_dir=Path("/nonexistent")
        )
    settings = load_settings(
        {"PLUSONE_REDIS_CLUSTER": "true", "PLUSONE_REDIS_URL": "redis://127.0.0.1:7000"}, data_dir=Path("/nonexistent")
    )
    assert settings.redis_cluster


async def test_a_signed_comment_becomes_a_claim_and_a_private_reply_on_a_cluster(cluster_stack: Stack) -> None:
    app = cluster_stack.client.app
    assert isinstance(app[REDIS], RedisCluster)
    await seed_shop(cluster_stack.sessions, stock=5)
    hub = app[INBOX_HUB]
    await asyncio.wait_for(hub.ready.wait(), timeout=10)
    _, notes = hub.listen(frozenset({PAGE_ID}))

    reply = await cluster_stack.emulator.deliver_comment(
        PAGE_ID, "2000000000001", "3000000000201", "A+2", user_name="Chan", comment_id="2000000000001_901"
    )
    assert reply["status"] == 200  # the emulator signed it with the app secret, and we accepted it

    async def replied() -> bool:
        return len(await private_replies(cluster_stack)) == 1

    await wait_until(replied, limit=20, what="the private reply through the cluster")
    [call] = await private_replies(cluster_stack)
    assert call["body"]["recipient"] == {"comment_id": "2000000000001_901"}
    assert "✅ A Rose bouquet ×2 added" in call["body"]["message"]["attachment"]["payload"]["text"]
    claims = await cluster_stack.rows(select(StockClaim).where(StockClaim.psid == "3000000000201"))
    assert [(c.status, c.qty) for c in claims] == [("held", 2)]
    [product] = await cluster_stack.rows(select(Product).where(Product.code == "A"))
    assert product.stock == 5  # held, not yet sold: what is left to claim is stock minus holds

    # The worker's note for the open inbox came through the cluster's pub/sub.
    note = await asyncio.wait_for(notes.get(), timeout=10)
    assert note is not None and note["page"] in (PAGE_ID, None)

    # The delivery was acknowledged and deleted on the cluster, and counted.
    stream = IngestStream(app[REDIS], RedisKeys(cluster_stack.settings.key_prefix))
    await wait_until(lambda: _backlog_empty(stream), what="the stream drained")


async def _backlog_empty(stream: IngestStream) -> bool:
    gauges = await stream.gauges()
    return gauges.backlog == 0 and gauges.pending == 0


async def test_dead_letters_move_and_come_back_in_one_transaction_on_a_cluster(cluster_redis: Redis) -> None:
    stream = IngestStream(cluster_redis, RedisKeys("cluster-dead"))
    await stream.ensure_group()
    await stream.append(b'{"object": "page"}')
    [entry] = await stream.read("w1", count=10, block_ms=100)

    dead_id = await stream.dead_letter(entry, "boom", attempts=3)
    assert [(d.original_id, d.error) for d in await stream.list_dead_letters()] == [(entry.id, "boom")]
    assert (await stream.gauges()).backlog == 0

    # Two admins press Retry at once: the entry goes back once.
    retried = await asyncio.gather(stream.retry_dead_letter(dead_id), stream.retry_dead_letter(dead_id))
    assert sorted(r is None for r in retried) == [False, True]
    assert await stream.list_dead_letters() == []
    [again] = await stream.read("w1", count=10, block_ms=100)
    assert again.body == entry.body
    counters = await stream.counters()
    assert counters[DEAD_LETTERED_FIELD.encode()] == b"1"
    assert counters[DEAD_LETTER_RETRIED_FIELD.encode()] == b"1"


async def test_send_rate_and_sign_in_limits_run_their_scripts_on_a_cluster(cluster_redis: Redis) -> None:
    sends = SendRateLimiter(cluster_redis, "cluster-rate", RateLimits(per_page=300, per_thread=1, thread_burst=2))
    waits = [await sends.try_acquire("1000000000001", "3000000000201") for _ in range(3)]
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0  # the thread's burst of two is spent
    assert await sends.try_acquire("1000000000001", "3000000000202") == 0.0  # another thread is not

    limiter = SignInLimiter(cluster_redis, "cluster-signin", SignInLimits(per_minute=1, burst=2))
    assert [await limiter.attempt("owner", "127.0.0.1") for _ in range(2)] == [0, 0]
    assert await limiter.attempt("owner", "127.0.0.1") > 0
    assert await limiter.attempt("owner", "127.0.0.2") == 0
    await limiter.succeeded("owner", "127.0.0.1")
    assert await limiter.attempt("owner", "127.0.0.1") == 0
