"""The webhook edge: Meta's handshake, signatures on raw bytes, size limit, and 503 when Redis is gone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import TCPConnector
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from bot.app import create_app
from bot.inbound import webhook_factory as wf
from bot.inbound.signature import sign_body
from bot.runtime.embedded_redis import EmbeddedRedis
from config.settings import Settings
from tests.conftest import APP_SECRET, PAGE_ID, VERIFY_TOKEN, make_settings


async def edge_client(aiohttp_client, settings: Settings) -> TestClient:  # type: ignore[no-untyped-def]
    return await aiohttp_client(create_app(settings, run_worker=False))


async def stream_bodies(redis: Redis, settings: Settings) -> list[bytes]:
    from bot.runtime.redis_keys import RedisKeys

    entries = await redis.xrange(RedisKeys(settings.key_prefix).ingest_stream)
    return [fields[b"body"] for _, fields in entries]


async def test_handshake_echoes_the_challenge(aiohttp_client, settings) -> None:
    client = await edge_client(aiohttp_client, settings)
    query = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    resp = await client.get("/webhook", params=query)
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    assert await resp.text() == "1158201444"


async def test_handshake_refuses_wrong_token_mode_or_missing_challenge(aiohttp_client, settings) -> None:
    client = await edge_client(aiohttp_client, settings)
    bad = [
        {"hub.mode": "subscribe", "hub.verify_token": "meatyhamhock", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {},
    ]
    for query in bad:
        resp = await client.get("/webhook", params=query)
        assert resp.status == 403, query
        assert "1" not in (await resp.text())


async def test_good_signature_is_appended_with_its_raw_bytes(aiohttp_client, settings, redis) -> None:
    client = await edge_client(aiohttp_client, settings)
    body, headers = wf.signed(wf.message_delivery(page_id=PAGE_ID, psid="77", text="hello"), APP_SECRET)
    resp = await client.post("/webhook", data=body, headers=headers)
    assert resp.status == 200
    assert await stream_bodies(redis, settings) == [body]


async def test_missing_wrong_and_tampered_signatures_are_401_and_not_stored(aiohttp_client, settings, redis) -> None:
    client = await edge_client(aiohttp_client, settings)
    body, headers = wf.signed(wf.message_delivery(page_id=PAGE_ID, psid="77", text="hello"), APP_SECRET)
    cases = [
        (body, {"Content-Type": "application/json"}),
        (body, {"X-Hub-Signature-256": sign_body(body, "another-secret")}),
        (body, {"X-Hub-Signature-256": "sha256=" + "0" * 64}),
        (body, {"X-Hub-Signature-256": headers["X-Hub-Signature-256"].replace("sha256=", "sha1=")}),
        (body.replace(b"hello", b"hellO"), headers),  # tampered body, original signature
    ]
    for data, hdrs in cases:
        resp = await client.post("/webhook", data=data, headers=hdrs)
        assert resp.status == 401, hdrs
    assert await stream_bodies(redis, settings) == []


async def test_non_ascii_body_is_verified_on_the_raw_bytes(aiohttp_client, settings, redis) -> None:
    client = await edge_client(aiohttp_client, settings)
    payload = wf.comment_delivery(page_id=PAGE_ID, post_id="9", message="我要A+1 ❤️", user_id="42")
    meta_body = json.dumps(payload, ensure_ascii=True).encode()  # Meta escapes non-ASCII as \uXXXX
    assert b"\\u6211" in meta_body
    resp = await client.post(
        "/webhook", data=meta_body, headers={"X-Hub-Signature-256": sign_body(meta_body, APP_SECRET)}
    )
    assert resp.status == 200
    # The same JSON re-serialised with raw UTF-8 is different bytes: Meta's signature no longer fits.
    reencoded = json.dumps(json.loads(meta_body), ensure_ascii=False).encode()
    resp = await client.post(
        "/webhook", data=reencoded, headers={"X-Hub-Signature-256": sign_body(meta_body, APP_SECRET)}
    )
    assert resp.status == 401
    # A body that really is raw UTF-8 verifies against its own bytes.
    resp = await client.post(
        "/webhook", data=reencoded, headers={"X-Hub-Signature-256": sign_body(reencoded, APP_SECRET)}
    )
    assert resp.status == 200
    assert await stream_bodies(redis, settings) == [meta_body, reencoded]


async def test_body_over_the_limit_is_413(aiohttp_client, tmp_path: Path, redis_server, redis) -> None:
    settings = make_settings(tmp_path, redis_server.url, max_body_bytes=4096)
    client = await edge_client(aiohttp_client, settings)
    big = wf.encode(wf.message_delivery(page_id=PAGE_ID, psid="77", text="x" * 5000))
    resp = await client.post("/webhook", data=big, headers={"X-Hub-Signature-256": sign_body(big, APP_SECRET)})
    assert resp.status == 413

    async def chunks():  # no Content-Length: the limit must hold while reading too
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    resp = await client.post("/webhook", data=chunks(), headers={"X-Hub-Signature-256": sign_body(big, APP_SECRET)})
    assert resp.status == 413
    small = wf.encode(wf.message_delivery(page_id=PAGE_ID, psid="77", text="x" * 100))
    resp = await client.post("/webhook", data=small, headers={"X-Hub-Signature-256": sign_body(small, APP_SECRET)})
    assert resp.status == 200
    assert await stream_bodies(redis, settings) == [small]


async def test_redis_down_is_503_and_acknowledged_deliveries_survive(aiohttp_client, tmp_path: Path) -> None:
    server = await asyncio.to_thread(EmbeddedRedis, tmp_path / "own-redis", "always")
    await server.start_async()
    try:
        settings = make_settings(tmp_path, server.url)
        client = await edge_client(aiohttp_client, settings)
        acknowledged = []
        for i in range(5):
            body, headers = wf.signed(wf.message_delivery(page_id=PAGE_ID, psid="77", text=f"m{i}"), APP_SECRET)
            assert (await client.post("/webhook", data=body, headers=headers)).status == 200
            acknowledged.append(body)
        await asyncio.to_thread(server.kill)  # no graceful flush: only what appendfsync made durable survives
        body, headers = wf.signed(wf.message_delivery(page_id=PAGE_ID, psid="77", text="lost?"), APP_SECRET)
        resp = await client.post("/webhook", data=body, headers=headers)
        assert resp.status == 503  # Meta will retry this one
        metrics = await (await client.get("/metrics")).text()
        assert 'plusone_webhook_deliveries_total{reason="redis_unavailable",result="rejected"} 1.0' in metrics
        await server.start_async()
        redis = Redis.from_url(server.url)
        try:
            assert await stream_bodies(redis, settings) == acknowledged
        finally:
            await redis.aclose()
        resp = await client.post("/webhook", data=body, headers=headers)
        assert resp.status == 200  # Meta's retry is taken once Redis is back
    finally:
        await server.stop_async()


async def test_rejections_are_counted_by_reason(aiohttp_client, settings) -> None:
    client = await edge_client(aiohttp_client, settings)
    body, headers = wf.signed(wf.message_delivery(page_id=PAGE_ID, psid="77", text="hi"), APP_SECRET)
    await client.post("/webhook", data=body, headers=headers)
    await client.post("/webhook", data=body, headers={"X-Hub-Signature-256": "sha256=00"})
    await client.post("/webhook", data=body)
    text = await (await client.get("/metrics")).text()
    assert 'plusone_webhook_deliveries_total{reason="",result="accepted"} 1.0' in text
    assert 'plusone_webhook_deliveries_total{reason="bad_signature",result="rejected"} 1.0' in text
    assert 'plusone_webhook_deliveries_total{reason="missing_signature",result="rejected"} 1.0' in text
    assert "plusone_stream_backlog 1.0" in text


async def test_concurrent_deliveries_are_each_stored_once(aiohttp_client, settings, redis) -> None:
    # Many requests in flight share Redis round trips (group commit); each must still get its own entry.
    client = await edge_client(aiohttp_client, settings)
    signed = [
        wf.signed(wf.message_delivery(page_id=PAGE_ID, psid=str(i), text=f"m{i}"), APP_SECRET) for i in range(600)
    ]
    responses = await asyncio.gather(*(client.post("/webhook", data=b, headers=h) for b, h in signed))
    assert [r.status for r in responses] == [200] * 600
    stored = await stream_bodies(redis, settings)
    assert sorted(stored) == sorted(body for body, _ in signed)
    text = await (await client.get("/metrics")).text()
    assert 'plusone_webhook_deliveries_total{reason="",result="accepted"} 600.0' in text


async def test_a_flood_of_bad_signatures_is_401_not_500(aiohttp_client, settings) -> None:
    # Each rejection is counted in Redis; every one is answered 401 and counted, none fails.
    client = await aiohttp_client(create_app(settings, run_worker=False), connector=TCPConnector(limit=0))
    body = wf.encode(wf.message_delivery(page_id=PAGE_ID, psid="77", text="hi"))
    responses = await asyncio.gather(
        *(client.post("/webhook", data=body, headers={"X-Hub-Signature-256": "sha256=00"}) for _ in range(300))
    )
    assert {r.status for r in responses} == {401}
    text = await (await client.get("/metrics")).text()
    assert 'plusone_webhook_deliveries_total{reason="bad_signature",result="rejected"} 300.0' in text


async def test_more_concurrent_redis_commands_than_pooled_connections_wait(redis_server) -> None:
    from bot.runtime.redis import redis_client

    client = redis_client(redis_server.url, max_connections=8)
    try:
        results = await asyncio.gather(*(client.incr("plusone-test:pool") for _ in range(300)))
        assert sorted(results)[-1] - sorted(results)[0] == 299  # all 300 ran; none raised "Too many connections"
    finally:
        await client.aclose()
