"""Rate limits shared by every instance: GCRA in one atomic Redis script, per key or per address.

Each key has a rate R (requests a minute): a request of cost c is allowed when the bucket,
refilled continuously at R a minute and holding at most R, has c left. Redis keeps one
number per bucket (the "theoretical arrival time", GCRA) and the script reads Redis's own
clock, so every instance charges the same bucket atomically whatever their clocks say.

Costs: every HTTP request costs 1, charged by the auth middleware before the app sees it.
A GraphQL request costs its estimated query cost (the middleware's 1 counts toward it); one
refused before it runs (parse, validation, depth or cost errors) costs only that 1. The
GraphQL layer either calls `charge_connection(connection, cost)` before running the query
(which charges `cost - 1` more, and on `allowed=False` it answers RATE_LIMITED), or only sets
`request.state.graphql_cost`: then the middleware charges the rest when the response starts,
taking what is left of the bucket if the cost does not fit, so the caller's next requests
pay for it. Either way the response headers show the bucket after the charge. A cost above
the key's whole rate is charged as the whole rate (it then runs at most once a minute,
rather than never).

Without REDIS_URL (one instance) the same algorithm runs in process. When Redis goes away
mid-run the limiter neither lets everything through nor fails requests: it switches to the
in-process limiter at this instance's share of each rate, logs a warning, counts
`sitrep_ratelimit_redis_errors_total` and sets `sitrep_ratelimit_degraded` to 1 (see /metrics),
and probes Redis every 0.25 s until it answers. So that the instances together never allow
more than the rate (give or take one request each):
- the share is the rate divided by the most instances seen in the last 30 seconds, rounded up;
  every charge registers this instance and counts the live ones (not only the heartbeat, or an
  instance started first would count itself alone until its next one);
- each instance remembers how far ahead every bucket it charged was (GCRA's theoretical arrival
  time, a point in time, so the same fraction of any rate): its in-process buckets start from
  there, and every charge in Redis carries it as a floor, so a Redis that restarted empty gets
  each bucket's state back on its first use, even by an instance that never saw Redis go;
- when Redis answers again, what this instance allowed meanwhile is charged there, and for the
  next 2 seconds (while the other instances' probes also find Redis back) a request must fit
  both the shared bucket and this instance's share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from api.auth import Caller

log = logging.getLogger("sitrep.ratelimit")

PERIOD_SECONDS = 60
# request.state keys: the GraphQL layer's cost estimate, and whether it has been charged
GRAPHQL_COST = "graphql_cost"
COST_CHARGED = "cost_charged"
_PERIOD_US = PERIOD_SECONDS * 1_000_000
_PEER_WINDOW = 30.0
_HEARTBEAT = 10.0
_PROBE_EVERY = 0.25
_GRACE = 2.0  # > the probe interval plus the socket timeout: every instance has found Redis back
_MAX_SEEN = 100_000

# KEYS[1] bucket, KEYS[2] the instances (a sorted set scored by when each was last seen);
# ARGV[1] rate a minute; ARGV[2] cost (1..rate); ARGV[3] 1 to drain: charge what is left when the
# cost does not fit (a cost known only after the work was done); ARGV[4] this instance's id;
# ARGV[5] the floor: how far ahead of now this instance last saw the bucket (a Redis that
# restarted empty gets it back). Times in microseconds. Returns {allowed, remaining,
# microseconds until full, microseconds until allowed, instances seen in the last 30 s}.
_GCRA = """
local rate = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local period = 60000000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[2], t[1], ARGV[4])
local peers = redis.call('ZCOUNT', KEYS[2], tonumber(t[1]) - 30, '+inf')
local interval = period / rate
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local floor = now + tonumber(ARGV[5])
if tat < floor then tat = floor end
local new_tat = tat + interval * cost
if new_tat - period > now then
  if ARGV[3] ~= '1' then
    return {0, math.floor((now + period - tat) / interval), math.ceil(tat - now), math.ceil(new_tat - period - now), peers}
  end
  new_tat = now + period
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((now + period - new_tat) / interval), math.ceil(new_tat - now), 0, peers}
"""

# KEYS[1] the instances; ARGV[1] this instance's id. Registers it, forgets those not seen for 30 s,
# returns how many are left.
_ANNOUNCE = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], t[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(t[1]) - 30)
redis.call('EXPIRE', KEYS[1], 60)
return redis.call('ZCARD', KEYS[1])
"""


class RateDecision(msgspec.Struct, frozen=True):
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the bucket is full again
    retry_after: int  # seconds to wait before this request would be allowed (0 when allowed)

    def headers(self) -> dict[str, str]:
        values = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after)
        return values


def _decision(allowed: bool, limit: int, remaining: float, full_us: float, wait_us: float) -> RateDecision:
    return RateDecision(
        allowed=allowed,
        limit=limit,
        remaining=max(0, min(limit, int(remaining))),
        reset_seconds=max(0, math.ceil(full_us / 1_000_000)),
        retry_after=max(1, math.ceil(wait_us / 1_000_000)) if not allowed else 0,
    )


class LocalLimiter:
    """The same GCRA in process (one instance, or this instance's share while Redis is away)."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self._tat: dict[str, float] = {}
        self._max = max_buckets

    def charge(
        self, bucket: str, rate: int, cost: int, *, limit: int | None = None, drain: bool = False
    ) -> RateDecision:
        now = time.monotonic() * 1_000_000
        interval = _PERIOD_US / rate
        tat = max(self._tat.get(bucket, now), now)
        new_tat = tat + interval * cost
        shown = rate if limit is None else limit
        if new_tat - _PERIOD_US > now:
            if not drain:
                return _decision(
                    False, shown, (now + _PERIOD_US - tat) / interval, tat - now, new_tat - _PERIOD_US - now
                )
            new_tat = now + _PERIOD_US
        if len(self._tat) >= self._max:
            self._tat = {b: t for b, t in self._tat.items() if t > now}
        self._tat[bucket] = new_tat
        return _decision(True, shown, (now + _PERIOD_US - new_tat) / interval, new_tat - now, 0)

    def restore(self, tats: dict[str, float]) -> None:
        """Start these buckets at these theoretical arrival times (monotonic microseconds)."""
        self._tat.update(tats)


Mode = Literal["local", "redis", "degraded"]


class Limiter:
    """Buckets in Redis when it is configured and reachable, else in process (see the module doc)."""

    def __init__(self, redis_url: str | None, prefix: str = "sitrep:", *, timeout: float = 0.25) -> None:
        self.prefix = prefix
        self.local = LocalLimiter()
        self.peers = 1
        self._instance = uuid.uuid4().hex
        self._redis: aioredis.Redis | None = None
        self._script: Any = None
        self._announce: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._probe: asyncio.Task[None] | None = None
        self._counts: dict[int, float] = {}  # instances counted -> when last counted (monotonic)
        self._seen: dict[str, float] = {}  # bucket -> its theoretical arrival time last seen (monotonic µs)
        self._away: dict[str, tuple[int, int]] = {}  # bucket -> (rate, cost) allowed while Redis was away
        self._grace_until = 0.0
        self.mode: Mode = "local"
        self.redis_errors = 0
        if redis_url:
            self._redis = aioredis.Redis.from_url(
                redis_url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry_on_timeout=False,
                retry=Retry(NoBackoff(), 0),  # no waiting on a Redis that is away: fall back at once
                health_check_interval=0,
            )
            self._script = self._redis.register_script(_GCRA)
            self._announce = self._redis.register_script(_ANNOUNCE)
            self.mode = "redis"

    async def start(self) -> None:
        if self._redis is None:
            return
        try:
            await self.announce()
        except (RedisError, OSError) as exc:
            self._degrade(exc)
        self._spawn(self._heartbeat())

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.zrem(self.prefix + "instances", self._instance)
            await self._redis.aclose()

    async def charge(self, bucket: str, rate: int, cost: int, *, drain: bool = False) -> RateDecision:
        """Charge `cost` (at least 1, at most the rate); with `drain`, take what is left if it does not fit."""
        cost = max(1, min(cost, rate))
        if self.mode == "redis" and self._script is not None:
            if time.monotonic() < self._grace_until:  # other instances may still be on their share
                share = self._share(rate)
                own = self.local.charge(bucket, share, min(cost, share), limit=share, drain=drain)
                if not own.allowed:
                    return own
            try:
                return await self._charge_redis(bucket, rate, cost, drain)
            except (RedisError, OSError) as exc:
                self._degrade(exc)
        if self.mode == "degraded":
            share = self._share(rate)
            decision = self.local.charge(bucket, share, min(cost, share), limit=share, drain=drain)
            if decision.allowed:
                _, taken = self._away.get(bucket, (rate, 0))
                self._away[bucket] = (rate, taken + min(cost, share))
            return decision
        return self.local.charge(bucket, rate, cost, drain=drain)

    async def _charge_redis(self, bucket: str, rate: int, cost: int, drain: bool) -> RateDecision:
        now = time.monotonic() * 1_000_000
        floor = max(0, int(self._seen.get(bucket, now) - now))
        allowed, remaining, full_us, wait_us, peers = await self._script(
            keys=[self.prefix + "rl:" + bucket, self.prefix + "instances"],
            args=[rate, cost, 1 if drain else 0, self._instance, floor],
        )
        self._count_peers(int(peers))
        if len(self._seen) >= _MAX_SEEN:
            self._seen = {b: t for b, t in self._seen.items() if t > now}
        self._seen[bucket] = now + full_us
        return _decision(bool(allowed), rate, remaining, full_us, wait_us)

    def _share(self, rate: int) -> int:
        return max(1, math.ceil(rate / self.peers))

    def _count_peers(self, count: int) -> None:
        """Take the most instances counted in the last 30 s: a Redis that restarted has forgotten
        the ones that have not charged or announced themselves since."""
        now = time.monotonic()
        self._counts[max(1, count)] = now
        self._counts = {n: at for n, at in self._counts.items() if now - at < _PEER_WINDOW}
        self.peers = max(self._counts)

    # --- Redis health ----------------------------------------------------------------------

    def _degrade(self, exc: BaseException) -> None:
        self.redis_errors += 1
        if self.mode != "redis":
            return
        self.mode = "degraded"
        # in-process buckets start where this instance last saw the shared ones
        now = time.monotonic() * 1_000_000
        self.local = LocalLimiter()
        self.local.restore({b: t for b, t in self._seen.items() if t > now})
        self._away = {}
        log.warning(
            "rate limiter: Redis unreachable (%s); limiting in process at 1/%d of each rate until it returns",
            type(exc).__name__,
            self.peers,
        )
        self._probe = self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        assert self._redis is not None
        while True:
            await asyncio.sleep(_PROBE_EVERY)
            try:
                await self.announce()
                await self._settle()
            except (RedisError, OSError):
                self.redis_errors += 1
                continue
            self._grace_until = time.monotonic() + _GRACE
            self.mode = "redis"
            log.warning("rate limiter: Redis is back; shared limits restored")
            return

    async def _settle(self) -> None:
        """Charge the shared buckets with what this instance allowed while Redis was away."""
        while self._away:
            bucket, (rate, taken) = next(iter(self._away.items()))
            while taken > 0:
                step = min(taken, rate)
                await self._charge_redis(bucket, rate, step, True)
                taken -= step
            del self._away[bucket]

    async def announce(self) -> None:
        """Announce this instance and count the live ones: the share each takes if Redis goes away."""
        assert self._announce is not None
        count = await self._announce(keys=[self.prefix + "instances"], args=[self._instance])
        self._count_peers(int(count))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(_HEARTBEAT)
            if self.mode != "redis":
                continue
            try:
                await self.announce()
            except (RedisError, OSError) as exc:
                self._degrade(exc)

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def bucket_of(caller: Caller) -> str:
    return f"k:{caller.key_id}" if caller.key_id else f"a:{caller.client}"


async def charge(limiter: Limiter, caller: Caller, cost: int, *, drain: bool = False) -> RateDecision:
    """Charge `cost` to the caller's bucket (the key's, or the client address's when anonymous)."""
    return await limiter.charge(bucket_of(caller), caller.rate, cost, drain=drain)


async def charge_connection(connection: ASGIConnection[Any, Any, Any, Any], cost: int) -> RateDecision:
    """GraphQL's call: charge a request's estimated cost, of which the middleware charged 1 already.

    Records the decision so the response's RateLimit headers (and Retry-After) show it; the
    caller refuses the request with RATE_LIMITED when `allowed` is false.
    """
    from api.auth import caller_of, services_of

    state = connection.scope["state"]
    previous: RateDecision | None = state.get("rate")
    state[COST_CHARGED] = True
    if cost <= 1 and previous is not None:
        return previous
    caller = caller_of(connection)
    decision = await charge(services_of(connection).limiter, caller, cost - 1 if previous is not None else cost)
    state["rate"] = decision
    return decision


async def charge_after(limiter: Limiter, caller: Caller, state: dict[str, Any]) -> None:
    """The middleware's call when a response starts: charge a GraphQL cost nobody charged beforehand.

    The work is done, so this cannot refuse it: it takes the cost, or what is left of the bucket,
    so that the caller's next requests pay for it.
    """
    cost = state.get(GRAPHQL_COST)
    if not isinstance(cost, int) or cost <= 1 or state.get(COST_CHARGED):
        return
    state[COST_CHARGED] = True
    state["rate"] = await charge(limiter, caller, cost - 1, drain=True)
