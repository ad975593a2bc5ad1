"""REST benchmark: throughput (wrk, 16 connections) and sequential latency for five queries.

    nice python bench/rest.py --dsn postgresql://postgres@127.0.0.1:5432/sitrep_bench \\
        --duration 10 --rounds 3 --out bench/rest-results.json

One server process (`sitrep serve`, uvicorn with uvloop and httptools; or granian) on
127.0.0.1 against an existing database (SITREP_LOAD_SAMPLE=false). The queries:

  Q1  the latest 50 entries of a blog                    /v1/entries?blog=B&limit=50
  Q2  the latest 50 entries (with actors, locations,     /v1/entries?limit=50
      sources: every REST entry carries its links)
  Q3  the latest 50 entries of a popular actor in a      /v1/entries?actor=A&since=S&until=U&limit=50
      30-day window
  Q4  a page 100,000 rows deep (cursor got by walking)   /v1/entries?limit=50&cursor=C
  Q5  full-text 'drone', latest 20                       /v1/entries?q=drone&limit=20

Rounds are interleaved (Q1..Q5, Q1..Q5, …) and the median of the rounds is reported. After
the throughput runs, each query is sent 200 times one after another (httpx, keep-alive) for
its latency percentiles. The server's RSS (with its children) is sampled every 0.25 s
throughout. `--compare-servers` also runs Q2 on uvicorn and granian, interleaved.
`--ndjson-seconds N` streams `format=ndjson` over the whole table for up to N seconds and
records rows/s and RSS meanwhile (bounded memory is the point).

Nothing here asserts: it measures and prints; bench/RESULTS.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SECRET = "bench-secret-not-for-production"


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RssSampler(threading.Thread):
    """Samples a process tree's resident memory until stopped."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.every = every
        self.samples: list[float] = []  # MiB
        self._halt = threading.Event()

    def rss_mib(self) -> float:
        try:
            procs = [self.process, *self.process.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
        except psutil.Error:
            return 0.0

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(self.rss_mib())
            self._halt.wait(self.every)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@contextmanager
def server(kind: str, dsn: str, entry_cache_mb: int | None = None) -> Iterator[tuple[str, RssSampler]]:
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="sitrep-bench-")
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "SITREP_LOAD_SAMPLE": "false",
        "SITREP_SECRET": SECRET,
        "SITREP_DATA_DIR": data_dir,
        # the benchmark measures the API, not the anonymous rate limit
        "SITREP_ANONYMOUS_RATE": "100000000",
    }
    if entry_cache_mb is not None:  # 0: every page reads its entries and links (api/entry_cache.py)
        env["SITREP_ENTRY_CACHE_MB"] = str(entry_cache_mb)
    if kind == "uvicorn":
        cmd = [str(VENV_BIN / "sitrep"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    elif kind == "granian":
        cmd = [
            str(VENV_BIN / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
            "api.asgi:app",
        ]
    else:
        raise ValueError(kind)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited with {proc.returncode}")
            try:
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not become ready in 60 s")
            time.sleep(0.2)
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            yield base, sampler
        finally:
            sampler.stop()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


# ---------------------------------------------------------------- the queries


async def pick_targets(dsn: str) -> dict[str, str]:
    """Query parameters from the data: a blog with many entries, a popular actor and its window."""
    conn = await asyncpg.connect(dsn)
    try:
        blog = await conn.fetchval(
            "SELECT b.slug FROM blogs b JOIN LATERAL (SELECT count(*) AS n FROM entries e WHERE e.blog_id = b.id) c"
            " ON true ORDER BY c.n DESC, b.published_at DESC LIMIT 1"
        )
        actor_id, actor = await conn.fetchrow(
            "SELECT a.id, a.slug FROM (SELECT actor_id, count(*) AS n FROM entry_actors GROUP BY actor_id"
            " ORDER BY n DESC LIMIT 1) t JOIN actors a ON a.id = t.actor_id"
        )
        latest = await conn.fetchval("SELECT max(published_at) FROM entry_actors WHERE actor_id = $1", actor_id)
        total = await conn.fetchval("SELECT count(*) FROM entries")
    finally:
        await conn.close()
    until = latest + timedelta(seconds=1)
    since = until - timedelta(days=30)
    return {
        "blog": blog,
        "actor": actor,
        "since": since.isoformat().replace("+00:00", "Z"),
        "until": until.isoformat().replace("+00:00", "Z"),
        "entries": str(total),
    }


def deep_cursor(base: str, depth: int, page: int = 200) -> str:
    """The cursor after `depth` rows of the unfiltered list, got by walking it."""
    cursor = None
    walked = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        while walked < depth:
            params: dict[str, str | int] = {"limit": min(page, depth - walked)}
            if cursor:
                params["cursor"] = cursor
            r = client.get("/v1/entries", params=params)
            r.raise_for_status()
            body = r.json()
            walked += len(body["data"])
            cursor = body["page"]["next_cursor"]
            if not cursor:
                raise RuntimeError(f"the list ended after {walked} rows")
    assert cursor is not None
    return cursor


def queries(targets: dict[str, str], cursor: str) -> dict[str, str]:
    q = {
        "Q1 blog latest 50": {"blog": targets["blog"], "limit": 50},
        "Q2 latest 50 with links": {"limit": 50},
        "Q3 actor, 30 days, 50": {
            "actor": targets["actor"],
            "since": targets["since"],
            "until": targets["until"],
            "limit": 50,
        },
        "Q4 page 100,000 deep": {"limit": 50, "cursor": cursor},
        "Q5 search 'drone', 20": {"q": "drone", "limit": 20},
    }
    return {name: "/v1/entries?" + urlencode(params) for name, params in q.items()}


# ---------------------------------------------------------------- measuring


@dataclass
class WrkRun:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(text)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, seconds: int, connections: int, threads: int) -> WrkRun:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkRun(
        requests_per_s=rps,
        p50_ms=p50,
        p99_ms=p99,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def sequential(base: str, path: str, n: int) -> dict[str, float]:
    timings = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(10):  # warm the connection and the plan cache
            client.get(path).raise_for_status()
        for _ in range(n):
            started = time.perf_counter()
            r = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[int(0.99 * (len(timings) - 1))], 2),
        "max_ms": round(timings[-1], 2),
    }


def ndjson_stream(base: str, seconds: float, sampler: RssSampler) -> dict[str, object]:
    """Read the whole-table NDJSON export for up to `seconds`; rows/s and RSS meanwhile."""
    first_sample = len(sampler.samples)
    before = sampler.rss_mib()
    rows, started = 0, time.perf_counter()
    trace: list[tuple[float, float]] = []  # (seconds, MiB) every 5 s
    with httpx.stream("GET", base + "/v1/entries?format=ndjson", timeout=60) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 16):
            rows += chunk.count(b"\n")
            elapsed = time.perf_counter() - started
            if not trace or elapsed - trace[-1][0] >= 5:
                trace.append((round(elapsed, 1), round(sampler.rss_mib(), 1)))
            if elapsed > seconds:
                break
    elapsed = time.perf_counter() - started
    during = sampler.samples[first_sample:] or [before]
    return {
        "rows": rows,
        "seconds": round(elapsed, 1),
        "rows_per_s": round(rows / elapsed),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(max(during), 1),
        "trace_s_mib": trace,
    }


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    throughput: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    throughput_median: dict[str, dict[str, float]] = field(default_factory=dict)
    sequential: dict[str, dict[str, float]] = field(default_factory=dict)
    rss_mib: dict[str, float] = field(default_factory=dict)
    servers_q2: dict[str, list[float]] = field(default_factory=dict)
    ndjson: dict[str, object] = field(default_factory=dict)
    entry_cache_mb: int | None = None  # the server's SITREP_ENTRY_CACHE_MB (None: the default)


def machine() -> dict[str, str]:
    cpu = "unknown"
    with suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory_gib": str(round(psutil.virtual_memory().total / 2**30)),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="REST benchmark (see the module docstring)")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/sitrep_bench")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (it shares the 2 cores)")
    parser.add_argument("--sequential", type=int, default=200, help="sequential requests per query")
    parser.add_argument("--depth", type=int, default=100_000, help="rows before the Q4 page")
    parser.add_argument("--compare-servers", action="store_true")
    parser.add_argument("--ndjson-seconds", type=float, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--entry-cache-mb", type=int, default=None, help="the server's SITREP_ENTRY_CACHE_MB (0: no entry cache)"
    )
    args = parser.parse_args()

    res = Results(machine=machine())
    res.targets = asyncio.run(pick_targets(args.dsn))
    print("targets:", res.targets, file=sys.stderr)
    res.entry_cache_mb = args.entry_cache_mb
    with server("uvicorn", args.dsn, args.entry_cache_mb) as (base, sampler):
        cursor = deep_cursor(base, args.depth)
        res.urls = queries(res.targets, cursor)
        for name, path in res.urls.items():  # warm up, and check every query answers
            r = httpx.get(base + path, timeout=30)
            r.raise_for_status()
            print(f"{name}: {len(r.json()['data'])} rows, {len(r.content)} bytes", file=sys.stderr)
            wrk(base + path, 2, args.connections, args.threads)
        for round_ in range(args.rounds):
            for name, path in res.urls.items():
                run = wrk(base + path, args.duration, args.connections, args.threads)
                res.throughput.setdefault(name, []).append(asdict(run))
                print(f"round {round_ + 1} {name}: {run}", file=sys.stderr)
        for name, runs in res.throughput.items():
            res.throughput_median[name] = {
                k: round(statistics.median(r[k] for r in runs), 2) for k in ("requests_per_s", "p50_ms", "p99_ms")
            }
        for name, path in res.urls.items():
            res.sequential[name] = sequential(base, path, args.sequential)
            print(f"sequential {name}: {res.sequential[name]}", file=sys.stderr)
        res.rss_mib = {
            "max": round(max(sampler.samples), 1),
            "median": round(statistics.median(sampler.samples), 1),
            "last": round(sampler.samples[-1], 1),
        }
        if args.ndjson_seconds:
            res.ndjson = ndjson_stream(base, args.ndjson_seconds, sampler)
            print(f"ndjson: {res.ndjson}", file=sys.stderr)

    if args.compare_servers:
        q2 = res.urls["Q2 latest 50 with links"]
        for _ in range(args.rounds):
            for kind in ("uvicorn", "granian"):
                with server(kind, args.dsn, args.entry_cache_mb) as (base, _sampler):
                    wrk(base + q2, 2, args.connections, args.threads)
                    run = wrk(base + q2, args.duration, args.connections, args.threads)
                    res.servers_q2.setdefault(kind, []).append(run.requests_per_s)
                    print(f"{kind} Q2: {run}", file=sys.stderr)

    text = json.dumps(asdict(res), indent=2, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
