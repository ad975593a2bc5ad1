"""What PgBouncer in transaction mode costs: the same read workload direct and through PgBouncer.

    nice .venv/bin/python bench/pgbouncer_cost.py --dsn postgresql://postgres@127.0.0.1:5432/sitrep_bench \\
        --duration 5 --rounds 3 --out bench/pgbouncer-cost.json

Two `sitrep serve` processes on the same database (read only): one connected directly
(SITREP_PGBOUNCER=off), one through a throwaway PgBouncer 1.18 in transaction mode
(tests/bouncer.py; default_pool_size = the app's pool, 10) with SITREP_PGBOUNCER=transaction
(asyncpg's statement cache off: every statement parsed and planned each time). wrk drives
each read path against each server in turn, rounds interleaved; for every run the CPU time
(user + system) of the app process, of the PostgreSQL backends serving it (found by the
client ports of its, or PgBouncer's, connections to the server) and of PgBouncer is divided
by the requests answered. CPU per request is the figure to read on a shared machine; the
requests per second are noisy there. The load average is recorded with each run.

Nothing here asserts; docs/deploy.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import asyncpg
import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.rest import machine, pick_targets  # noqa: E402
from tests.bouncer import PgBouncer  # noqa: E402

VENV_BIN = Path(sys.executable).parent
SECRET = "bench-secret-not-for-production"
GRAPHQL = "{ entries(first: 20) { nodes { headline publishedAt actors { role actor { name } } } } }"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(env_extra: dict[str, str]) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="sitrep-bench-")
    env = {
        **os.environ,
        "SITREP_LOAD_SAMPLE": "false",
        "SITREP_SECRET": SECRET,
        "SITREP_DATA_DIR": data_dir,
        "SITREP_ANONYMOUS_RATE": "100000000",
        **env_extra,
    }
    cmd = [str(VENV_BIN / "sitrep"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}")
            try:
                if httpx.get(base + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server was not ready within 60 s")
            time.sleep(0.2)
        yield base, psutil.Process(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tree_cpu(process: psutil.Process) -> float:
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def client_ports(process: psutil.Process, server_port: int) -> set[int]:
    """Local ports of `process`'s (and its children's) TCP connections to the server's port."""
    ports: set[int] = set()
    for p in [process, *process.children(recursive=True)]:
        try:
            for c in p.net_connections(kind="tcp"):
                if c.raddr and c.raddr.port == server_port:
                    ports.add(c.laddr.port)
        except psutil.Error:
            pass
    return ports


async def backend_pids(dsn: str, ports: set[int]) -> set[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", list(ports))
    finally:
        await conn.close()
    return {r["pid"] for r in rows}


def pids_cpu(pids: set[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            found[pid] = t.user + t.system
        except psutil.Error:
            pass
    return found


def wrk(url: str, seconds: int, connections: int) -> tuple[int, float, float, int]:
    """(requests, requests/s, p50 ms, non-2xx)."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"\s50%\s+([\d.]+)(us|ms|s)", out)
    assert p50 is not None
    p50_ms = float(p50.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return requests, rps, p50_ms, int(non2xx.group(1)) if non2xx else 0


def paths(targets: dict[str, str]) -> dict[str, str]:
    q = {
        "Q1 blog latest 50": {"blog": targets["blog"], "limit": 50},
        "Q2 latest 50 with links": {"limit": 50},
        "Q3 actor, 30 days, 50": {
            "actor": targets["actor"],
            "since": targets["since"],
            "until": targets["until"],
            "limit": 50,
        },
        "Q5 search 'drone', 20": {"q": "drone", "limit": 20},
    }
    found = {name: "/v1/entries?" + urlencode(params) for name, params in q.items()}
    found["G1 GraphQL latest 20 with actors"] = "/graphql?" + urlencode({"query": GRAPHQL})
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dsn", required=True, help="the database, read only")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pool", type=int, default=10, help="the app's pool and PgBouncer's default_pool_size")
    parser.add_argument("--entry-cache-mb", type=int, default=None, help="SITREP_ENTRY_CACHE_MB (default: the app's)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    server_port = urlsplit(args.dsn).port or 5432
    targets = asyncio.run(pick_targets(args.dsn))
    urls = paths(targets)
    common = {"SITREP_POOL_MAX": str(args.pool)}
    if args.entry_cache_mb is not None:
        common["SITREP_ENTRY_CACHE_MB"] = str(args.entry_cache_mb)
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    with (
        PgBouncer(args.dsn, pool_mode="transaction", pool_size=args.pool, statement_timeout_ms=5000) as pgb,
        server({**common, "DATABASE_URL": args.dsn}) as (direct, direct_proc),
        server(
            {
                **common,
                "DATABASE_URL": pgb.dsn,
                "DATABASE_DIRECT_URL": args.dsn,
                "SITREP_PGBOUNCER": "transaction",
            }
        ) as (bounced, bounced_proc),
    ):
        assert pgb.process is not None
        bouncer_proc = psutil.Process(pgb.process.pid)
        modes = {"direct": (direct, direct_proc, direct_proc), "pgbouncer": (bounced, bounced_proc, bouncer_proc)}
        for path in urls.values():
            for base in (direct, bounced):
                httpx.get(base + path, timeout=30).raise_for_status()
        for r in range(args.rounds):
            for name, path in urls.items():
                for mode, (base, app, upstream) in modes.items():
                    wrk(base + path, 1, args.connections)  # warm: the pool and the server connections open
                    pids = asyncio.run(backend_pids(args.dsn, client_ports(upstream, server_port)))
                    app_before, pg_before = tree_cpu(app), pids_cpu(pids)
                    pgb_before = tree_cpu(bouncer_proc)
                    requests, rps, p50, non2xx = wrk(base + path, args.duration, args.connections)
                    app_cpu = tree_cpu(app) - app_before
                    pg_after = pids_cpu(pids)
                    pg_cpu = sum(pg_after[p] - pg_before.get(p, pg_after[p]) for p in pg_after)
                    pgb_cpu = tree_cpu(bouncer_proc) - pgb_before
                    row = {
                        "requests_per_s": round(rps, 1),
                        "p50_ms": round(p50, 2),
                        "non_2xx": non2xx,
                        "app_cpu_ms_per_request": round(app_cpu * 1000 / requests, 3),
                        "pg_cpu_ms_per_request": round(pg_cpu * 1000 / requests, 3),
                        "pgbouncer_cpu_ms_per_request": round(pgb_cpu * 1000 / requests, 3)
                        if mode == "pgbouncer"
                        else 0,
                        "pg_backends": len(pids),
                        "load_1m": round(os.getloadavg()[0], 2),
                    }
                    runs.setdefault(name, {}).setdefault(mode, []).append(row)
                    print(f"round {r + 1} {name:34} {mode:9} {json.dumps(row)}", flush=True)
        pools = pgb.pool()
    median = {
        name: {
            mode: {k: round(statistics.median(run[k] for run in rows), 3) for k in rows[0]}
            for mode, rows in by_mode.items()
        }
        for name, by_mode in runs.items()
    }
    result = {
        "machine": machine(),
        "command": " ".join(sys.argv),
        "targets": targets,
        "urls": urls,
        "settings": {"connections": args.connections, "duration_s": args.duration, "pool": args.pool},
        "pgbouncer_pools_at_end": pools,
        "runs": runs,
        "median": median,
    }
    print(json.dumps(median, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
