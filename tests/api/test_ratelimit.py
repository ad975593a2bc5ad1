"""Rate limits: exact counts in shared Redis buckets, the in-process limiter, and Redis going away."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from litestar.testing import AsyncTestClient

from api.app import create_app
from api.auth import Caller
from api.ratelimit import Limiter, charge
from api.settings import Settings
from db import keys as keydb

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PEPPER = "ratelimit-test-pepper"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A throwaway redis-server on a free port, which a test can stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def pause(self) -> None:
        """Freeze the server: connections stay open but nothing answers (a hung Redis)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=5)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def prefix() -> str:
    return f"sitrep-test-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def limiter(prefix: str) -> AsyncIterator[Limiter]:
    limiter = Limiter(REDIS_URL, prefix)
    await limiter.start()
    try:
        yield limiter
    finally:
        await limiter.aclose()
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def mode_becomes(limiter: Limiter, mode: str, within: float) -> bool:
    for _ in range(int(within / 0.05)):
        if limiter.mode == mode:
            return True
        await asyncio.sleep(0.05)
    return limiter.mode == mode


def key_caller(rate: int, key_id: str = "testkey00001") -> Caller:
    return Caller(key_id=key_id, name="t", scopes=frozenset({"read"}), rate=rate, client="127.0.0.1")


async def test_a_key_gets_exactly_its_rate_then_a_retry_after(limiter: Limiter) -> None:
    assert limiter.mode == "redis"
    caller = key_caller(10)
    decisions = [await charge(limiter, caller, 1) for _ in range(12)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 2
    assert [d.remaining for d in decisions[:10]] == list(range(9, -1, -1))
    refused = decisions[10]
    assert refused.limit == 10
    assert 1 <= refused.retry_after <= 6  # one request comes back every 6 s
    assert 50 <= refused.reset_seconds <= 60
    assert refused.headers()["Retry-After"] == str(refused.retry_after)


async def test_instances_share_one_bucket_per_key_and_one_per_anonymous_address(prefix: str) -> None:
    first, second = Limiter(REDIS_URL, prefix), Limiter(REDIS_URL, prefix)
    await first.start()
    await second.start()
    try:
        caller = key_caller(7)
        results = [await charge(first if i % 2 else second, caller, 1) for i in range(10)]
        assert sum(d.allowed for d in results) == 7
        other_key = await charge(first, key_caller(7, "otherkey0001"), 1)
        assert other_key.allowed
        anon = [
            Caller(key_id=None, name="anonymous", scopes=frozenset({"read"}), rate=2, client=f"10.0.0.{i}")
            for i in (1, 2)
        ]
        assert [(await charge(second, anon[0], 1)).allowed for _ in range(3)] == [True, True, False]
        assert (await charge(first, anon[1], 1)).allowed
        # the first announced itself before the second started; its charges counted the second
        assert (first.peers, second.peers) == (2, 2)
    finally:
        await first.aclose()
        await second.aclose()


async def test_costs_are_charged_and_a_cost_above_the_rate_takes_the_whole_minute(limiter: Limiter) -> None:
    caller = key_caller(10, "costkey00001")
    assert (await charge(limiter, caller, 4)).remaining == 6
    assert not (await charge(limiter, caller, 7)).allowed
    assert (await charge(limiter, caller, 6)).remaining == 0
    big = key_caller(10, "bigkey000001")
    assert (await charge(limiter, big, 500)).allowed
    assert not (await charge(limiter, big, 1)).allowed


async def test_buckets_refill_at_the_rate(limiter: Limiter) -> None:
    caller = key_caller(60, "refill000001")  # one a second
    assert (await charge(limiter, caller, 60)).allowed  # the whole minute at once
    refused = await charge(limiter, caller, 1)
    assert not refused.allowed
    assert refused.retry_after == 1
    await asyncio.sleep(1.05)
    assert (await charge(limiter, caller, 1)).allowed
    assert not (await charge(limiter, caller, 1)).allowed


async def test_without_redis_the_in_process_limiter_counts_the_same() -> None:
    limiter = Limiter(None)
    await limiter.start()
    assert limiter.mode == "local"
    decisions = [await charge(limiter, key_caller(5), 1) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert decisions[-1].retry_after >= 1
    await limiter.aclose()


async def test_when_redis_goes_away_each_instance_limits_at_its_share_then_returns(
    redis_server: RedisServer, prefix: str
) -> None:
    first, second = Limiter(redis_server.url, prefix), Limiter(redis_server.url, prefix)
    await first.start()
    await second.start()
    await first.announce()
    try:
        assert (first.peers, second.peers) == (2, 2)
        caller = key_caller(10, "downkey00001")
        assert (await charge(first, caller, 1)).remaining == 9

        errors_before = first.redis_errors
        redis_server.stop()
        started = time.monotonic()
        decisions = [await charge(first, caller, 1) for _ in range(8)]
        elapsed = time.monotonic() - started
        # not everything let through, nothing failed: this instance's share of 10 with 2 instances,
        # of which a tenth is used already (one request of ten before Redis went)
        assert first.mode == "degraded"
        assert [d.allowed for d in decisions] == [True] * 4 + [False] * 4
        assert decisions[0].limit == 5
        assert decisions[-1].retry_after >= 1
        assert elapsed < 1.0  # one failed call to Redis at most; no waiting on it per request
        assert first.redis_errors > errors_before

        redis_server.start()
        assert await mode_becomes(first, "redis", within=10)
        await asyncio.sleep(2.1)  # while the other instances may be on their shares, this one keeps to its own
        back = await charge(first, caller, 1)
        assert back.limit == 10
        assert back.remaining <= 4  # the shared bucket counts what this instance allowed while Redis was away
        check = aioredis.Redis.from_url(redis_server.url)
        assert await check.exists(prefix + "rl:k:downkey00001") == 1
        await check.aclose()
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_hung_redis_costs_one_short_timeout_then_the_fallback_answers(
    redis_server: RedisServer, prefix: str
) -> None:
    limiter = Limiter(redis_server.url, prefix)
    await limiter.start()
    try:
        caller = key_caller(4, "hungkey00001")
        assert (await charge(limiter, caller, 1)).remaining == 3
        redis_server.pause()
        started = time.monotonic()
        first = await charge(limiter, caller, 1)
        assert time.monotonic() - started < 1.0  # the 0.25 s socket timeout, not a hang
        assert limiter.mode == "degraded"
        assert first.allowed
        started = time.monotonic()
        rest = [await charge(limiter, caller, 1) for _ in range(4)]
        assert time.monotonic() - started < 0.1
        assert [d.allowed for d in rest] == [True] * 2 + [False] * 2  # four in all, the rate
        redis_server.resume()
        assert await mode_becomes(limiter, "redis", within=10)
    finally:
        await limiter.aclose()


async def test_a_redis_that_is_down_from_the_start_is_not_fatal() -> None:
    limiter = Limiter(f"redis://127.0.0.1:{free_port()}/0", "nowhere:")
    await limiter.start()
    try:
        assert limiter.mode == "degraded"
        assert [(await charge(limiter, key_caller(3), 1)).allowed for _ in range(4)] == [True, True, True, False]
    finally:
        await limiter.aclose()


async def test_the_api_keeps_answering_and_limiting_while_redis_is_down(
    redis_server: RedisServer, prefix: str, db_dsn: str, conn: asyncpg.Connection
) -> None:
    _, token = await keydb.create_key(conn, PEPPER, name="k", scopes=["read"], rate=6)
    settings = Settings(secret=PEPPER, redis_url=redis_server.url, redis_prefix=prefix)
    headers = {"X-API-Key": token}
    async with AsyncTestClient(create_app(settings, db_dsn)) as client:
        first = await client.get("/v1/usage", headers=headers)
        assert first.status_code == 200
        assert first.headers["ratelimit-remaining"] == "5"
        redis_server.stop()
        statuses: list[int] = []
        for _ in range(8):
            response = await client.get("/v1/usage", headers=headers)
            statuses.append(response.status_code)
            assert response.headers["ratelimit-limit"] == "6"  # one instance: its share is the whole rate
        # the in-process bucket starts where the shared one was: the first request is counted
        assert statuses == [200] * 5 + [429] * 3
        refused = await client.get("/v1/usage", headers=headers)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["status"] == 429


async def test_a_cost_known_only_afterwards_drains_what_is_left(limiter: Limiter) -> None:
    caller = key_caller(10, "drainkey0001")
    assert (await charge(limiter, caller, 8)).remaining == 2
    drained = await charge(limiter, caller, 5, drain=True)
    assert (drained.allowed, drained.remaining) == (True, 0)
    assert not (await charge(limiter, caller, 1)).allowed
    local = Limiter(None)
    assert (await charge(local, caller, 9)).remaining == 1
    assert (await charge(local, caller, 4, drain=True)).remaining == 0
    assert not (await charge(local, caller, 1)).allowed


async def test_graphql_requests_are_charged_their_estimated_cost(
    db_dsn: str, conn: asyncpg.Connection, prefix: str
) -> None:
    rate = 100  # a unit comes back every 0.6 s
    _, token = await keydb.create_key(conn, PEPPER, name="gql", scopes=["read"], rate=rate)
    settings = Settings(secret=PEPPER, redis_url=REDIS_URL, redis_prefix=prefix)
    headers = {"X-API-Key": token}
    async with AsyncTestClient(create_app(settings, db_dsn)) as client:
        cheap = await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        assert cheap.status_code == 200, cheap.text
        after_cheap = int(cheap.headers["ratelimit-remaining"])
        assert after_cheap == rate - 1
        costly = await client.post(
            "/graphql",
            json={"query": "{ entries(first: 20) { nodes { headline } } }"},
            headers=headers,
        )
        assert costly.status_code == 200, costly.text
        after_costly = int(costly.headers["ratelimit-remaining"])
        assert 0 < after_costly < after_cheap - 1  # more than one unit for a list of twenty
        started = time.monotonic()
        rest = await client.get("/v1/usage", headers=headers)
        # a REST request costs one unit; on a slow machine time between the two requests may
        # have given units back (GCRA refills continuously), which are counted, not guessed
        refilled = int((time.monotonic() - started) / (60 / rate)) + 1
        remaining = int(rest.headers["ratelimit-remaining"])
        assert after_costly - 1 <= remaining <= after_costly - 1 + refilled


@pytest.mark.parametrize(
    ("query", "code"),
    [
        # cost 100 x 100 x 100: refused by the cost estimate before it runs
        (
            "{ entries(first: 100) { nodes { actors { actor { entries(first: 100) { nodes {"
            " actors { actor { entries(first: 100) { nodes { headline } } } } } } } } } } }",
            "QUERY_TOO_COMPLEX",
        ),
        ("{ entries(first: 100) { nodes { headline } ", "BAD_USER_INPUT"),  # a parse error
        ("{ entries(first: 100) { nodes { nosuchfield } } }", "BAD_USER_INPUT"),  # a validation error
        ("{ entries(first: 1000) { nodes { headline } } }", "BAD_USER_INPUT"),  # a page size out of range
    ],
)
async def test_a_graphql_query_refused_before_it_runs_costs_one_unit(
    db_dsn: str, conn: asyncpg.Connection, prefix: str, query: str, code: str
) -> None:
    rate = 100
    _, token = await keydb.create_key(conn, PEPPER, name="refused", scopes=["read"], rate=rate)
    settings = Settings(secret=PEPPER, redis_url=REDIS_URL, redis_prefix=prefix)
    headers = {"X-API-Key": token}
    async with AsyncTestClient(create_app(settings, db_dsn)) as client:
        refused = await client.post("/graphql", json={"query": query}, headers=headers)
        assert refused.json()["errors"][0]["extensions"]["code"] == code, refused.text
        assert int(refused.headers["ratelimit-remaining"]) >= rate - 1
        after = await client.get("/v1/usage", headers=headers)
        assert after.status_code == 200, after.text
        assert int(after.headers["ratelimit-remaining"]) >= rate - 2


async def test_an_instance_that_started_first_counts_the_later_ones_before_redis_goes_away(
    redis_server: RedisServer, prefix: str
) -> None:
    """Each takes its share of the rate while Redis is away: the share of the instances there are
    now, not of those there were at its last heartbeat (the first one saw only itself)."""
    rate = 10
    first, second = Limiter(redis_server.url, prefix), Limiter(redis_server.url, prefix)
    await first.start()
    await second.start()
    try:
        caller = key_caller(rate, "startkey0001")
        started = time.monotonic()
        allowed = sum([(await charge(limiter, caller, 1)).allowed for limiter in (second, first)])
        redis_server.stop()
        for _ in range(rate):
            allowed += sum([(await charge(limiter, caller, 1)).allowed for limiter in (first, second)])
        assert (first.mode, second.mode) == ("degraded", "degraded")
        refilled = int((time.monotonic() - started) / (60 / rate))
        assert allowed <= rate + 2 + refilled  # at most one over per instance
    finally:
        await first.aclose()
        await second.aclose()


@pytest.mark.parametrize("fault", ["restart", "restart-unnoticed", "freeze"])
async def test_limits_hold_across_a_redis_restart_or_freeze(redis_server: RedisServer, prefix: str, fault: str) -> None:
    """What a key used before Redis went away, while it was away and after it came back (empty,
    after a restart) adds up to its rate, give or take one request per instance."""
    rate = 10
    first, second = Limiter(redis_server.url, prefix), Limiter(redis_server.url, prefix)
    await first.start()
    await second.start()
    await first.announce()
    pair = (first, second)
    try:
        caller = key_caller(rate, "restartkey01")
        started = time.monotonic()
        allowed = 0
        for i in range(6):
            decision = await charge(pair[i % 2], caller, 1)
            assert decision.allowed
            allowed += 1
        if fault == "freeze":
            redis_server.pause()
        else:
            redis_server.stop()
        if fault != "restart-unnoticed":  # requests while Redis is away: the in-process share
            for i in range(rate):
                allowed += (await charge(pair[i % 2], caller, 1)).allowed
            assert (first.mode, second.mode) == ("degraded", "degraded")
        if fault == "freeze":
            redis_server.resume()
        else:
            redis_server.start()
        if fault != "restart-unnoticed":
            assert await mode_becomes(first, "redis", within=5)
            assert await mode_becomes(second, "redis", within=5)
        for i in range(2 * rate):  # back on the shared buckets (an unnoticed restart is noticed here)
            allowed += (await charge(pair[i % 2], caller, 1)).allowed
        assert await mode_becomes(first, "redis", within=5)
        assert await mode_becomes(second, "redis", within=5)
        await asyncio.sleep(1)
        for i in range(2 * rate):
            allowed += (await charge(pair[i % 2], caller, 1)).allowed
        assert (first.mode, second.mode) == ("redis", "redis")
        refilled = int((time.monotonic() - started) / (60 / rate))
        assert allowed <= rate + 2 + refilled  # at most one over per instance
        assert allowed >= rate - 2  # and the key was not starved either
    finally:
        await first.aclose()
        await second.aclose()
