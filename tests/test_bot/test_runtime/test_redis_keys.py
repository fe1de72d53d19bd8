"""Keys used together in one script or transaction hash to one Redis Cluster slot (no server needed)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from redis.cluster import key_slot

from bot.runtime.redis_keys import RedisKeys

PREFIXES = ["plusone", "shop-a", "t0123456789"]


def slots(keys: list[str]) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


def test_the_ingest_stream_its_dead_letters_and_counters_share_a_slot() -> None:
    for prefix in PREFIXES:
        keys = RedisKeys(prefix)
        # Appended and counted in one script; dead-lettered and retried in one transaction.
        assert len(slots([keys.ingest_stream, keys.dead_letters, keys.counters])) == 1


def test_a_pages_send_rate_buckets_share_a_slot_and_pages_spread() -> None:
    keys = RedisKeys()
    pages = [str(1000000000001 + n) for n in range(50)]
    for page in pages:
        assert len(slots([*keys.send_rate(page, "3000000000201"), *keys.send_rate(page, "3000000000999")])) == 1
    # Each Page has a bucket of its own slot, so a cluster spreads Pages over its nodes.
    assert len(slots([keys.send_rate(page, "1")[0] for page in pages])) > 1


@given(
    first=st.tuples(st.text(max_size=80), st.ip_addresses().map(str)),
    second=st.tuples(st.text(max_size=80), st.ip_addresses().map(str)),
)
def test_each_name_and_address_pair_has_its_own_sign_in_key(first: tuple[str, str], second: tuple[str, str]) -> None:
    # Tries are counted per pair, never per name or per address alone: a colon in an IPv6 address or in
    # a name must not make two pairs share a bucket.
    keys = RedisKeys("plusone")
    assert (keys.signin(*first) == keys.signin(*second)) is (first == second)


def test_the_groups_are_distinct_keys_with_their_own_tags() -> None:
    keys = RedisKeys("plusone")
    groups = [
        [keys.ingest_stream, keys.dead_letters, keys.counters],
        list(keys.send_rate("1000000000001", "3000000000201")),
    ]
    flat = [key for group in groups for key in group]
    assert len(set(flat)) == len(flat)
    # Unrelated groups are not all piled onto one slot (each tag is its own).
    assert len({slots(group).pop() for group in groups}) == len(groups)
