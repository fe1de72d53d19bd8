"""The Redis client every process uses: one Redis (a blocking pool) or a Redis Cluster (settings.redis_cluster)."""

from __future__ import annotations

from typing import cast

import redis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.driver_info import DriverInfo


def redis_client(url: str, max_connections: int = 64, cluster: bool = False) -> Redis:
    """The Redis client every process uses.

    - A blocking pool: under a burst, requests wait for a free connection instead of failing with
      "Too many connections" (redis-py's default pool raises at 100).
    - Short timeouts: the webhook must answer 503 quickly when Redis is gone, not hang until Meta gives up.
    - An explicit driver version: otherwise redis-py reads package metadata from disk on every new
      connection, on the event loop.
    - `cluster`: `url` is any node of a Redis Cluster (settings.redis_cluster); see `_cluster_client`.
    """
    driver = DriverInfo(lib_version=redis.__version__).add_upstream_driver("plusone", "0.1")
    if cluster:
        return _cluster_client(url, driver)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        decode_responses=False,
        driver_info=driver,
    )
    return Redis.from_pool(pool)  # owns the pool: aclose() closes its connections


# redis-py's cluster client has no waiting pool: a node's connections past this raise at once. Far above
# what a burst needs (each command is short; Redis allows 10,000 clients), so it only bounds a runaway.
CLUSTER_MAX_CONNECTIONS_PER_NODE = 1000


def _cluster_client(url: str, driver: DriverInfo) -> Redis:
    """A Redis Cluster client: it learns the slots from the node in `url` and sends each command to the
    node owning its keys. Everything PlusOne runs works there: each script touches keys of one slot
    (`bot.runtime.redis_keys` hash tags); nothing uses MULTI/EXEC (redis-py's cluster transactions block the event
    loop) or PUBLISH in a pipeline (refused); PUBLISH and SUBSCRIBE reach every node; other pipelines are
    split per node. Typed as `Redis`: it offers the same commands, and tests/test_redis_cluster.py runs
    the flow through it on a real cluster."""
    client = RedisCluster.from_url(
        url,
        max_connections=CLUSTER_MAX_CONNECTIONS_PER_NODE,
        socket_timeout=5,
        socket_connect_timeout=2,
        decode_responses=False,
        driver_info=driver,
    )
    return cast(Redis, client)
