"""Scaling reads out: 2 instances reading through a primary + 1 streaming replica, against 1
instance on the primary alone.

    nice .venv/bin/python bench/deploy.py --entries 100000 --seconds 15 --rounds 2

Everything runs on 127.0.0.1 in a temporary folder and is removed at the end: a throwaway
primary (tests/faults/harness.py, initdb) filled by `sitrep generate --entries N --seed 1`, a
streaming standby made from it with pg_basebackup -R, and `sitrep serve` instances (pool of 10,
rate limit out of the way). Two setups, measured in turn, interleaved over --rounds:

  primary only   1 instance, DATABASE_URL = the primary
  2 + replica    2 instances, DATABASE_REPLICA_URLS = the standby (reads go there)

The load is wrk (--connections in all, split between the instances, keep-alive), each request
one of a mixed read workload chosen at random: the latest 20 entries, the latest 20 of a blog,
of an actor, one entry by id, and a GraphQL GET of the latest 10 entries with their blog.

Per setup: requests/s, p50/p99 latency, non-2xx answers, and CPU time per request of the
instances, the primary and the standby (psutil, process trees), with the load average: on a
shared machine of few cores throughput follows whatever else runs; CPU per request, and where
it is spent, does not. Nothing asserts; bench/RESULTS.md records a run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.faults.harness import Instance, Postgres  # noqa: E402

SECRET = "bench-deploy-secret"
GRAPHQL = "{ entries(first: 10) { nodes { headline publishedAt blog { slug } } } }"


@dataclass
class Figures:
    setup: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    cpu_s: dict[str, float]  # instances, primary, standby
    load: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def ms_per_request(self, part: str) -> float:
        return 1000 * self.cpu_s[part] / max(1, self.requests)


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    assert m, text
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


async def _paths(dsn: str, rng: random.Random) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        blogs = [r["slug"] for r in await conn.fetch("SELECT slug FROM blogs ORDER BY random() LIMIT 50")]
        actors = [
            r["slug"]
            for r in await conn.fetch(
                "SELECT a.slug FROM actors a JOIN entry_actors ea ON ea.actor_id = a.id"
                " GROUP BY a.slug ORDER BY count(*) DESC LIMIT 50"
            )
        ]
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM entries ORDER BY random() LIMIT 300")]
    finally:
        await conn.close()
    paths = []
    for _ in range(400):
        kind = rng.randrange(5)
        if kind == 0:
            paths.append("/v1/entries?limit=20")
        elif kind == 1:
            paths.append(f"/v1/entries?blog={rng.choice(blogs)}&limit=20")
        elif kind == 2:
            paths.append(f"/v1/entries?actor={rng.choice(actors)}&limit=20")
        elif kind == 3:
            paths.append(f"/v1/entries/{rng.choice(ids)}")
        else:
            paths.append(f"/graphql?query={quote(GRAPHQL)}")
    return paths


def _script(folder: Path, paths: list[str]) -> Path:
    script = folder / "mixed.lua"
    listed = ",\n".join(f'  "{p}"' for p in paths)
    script.write_text(
        f"local paths = {{\n{listed}\n}}\n"
        "math.randomseed(os.time())\n"
        "request = function()\n"
        "  return wrk.format('GET', paths[math.random(#paths)])\n"
        "end\n"
    )
    return script


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        for process in _tree(pid):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _wrk(base: str, script: Path, seconds: int, connections: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), base],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def measure(
    setup: str,
    instances: list[Instance],
    primary: Postgres,
    standby: Postgres,
    script: Path,
    seconds: int,
    connections: int,
) -> Figures:
    per = max(1, connections // len(instances))
    for warm in [_wrk(i.base, script, 3, per) for i in instances]:  # plans, caches, pools
        warm.communicate()
    parts = {
        "instances": [i.process.pid for i in instances if i.process is not None],
        "primary": [primary.postmaster() or 0],
        "standby": [standby.postmaster() or 0],
    }
    before = {name: _cpu(pids) for name, pids in parts.items()}
    started = time.monotonic()
    runs = [_wrk(i.base, script, seconds, per) for i in instances]
    outputs = [run.communicate()[0] for run in runs]
    elapsed = time.monotonic() - started
    cpu = {name: _cpu(pids) - before[name] for name, pids in parts.items()}
    requests = sum(int(re.search(r"(\d+) requests in", out).group(1)) for out in outputs)  # type: ignore[union-attr]
    p50 = max(_ms(re.search(r"\s50%\s+(\S+)", out).group(1)) for out in outputs)  # type: ignore[union-attr]
    p99 = max(_ms(re.search(r"\s99%\s+(\S+)", out).group(1)) for out in outputs)  # type: ignore[union-attr]
    non_2xx = sum(int(m.group(1)) for out in outputs if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)))
    errors = sum(
        sum(int(g) for g in m.groups())
        for out in outputs
        if (m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out))
    )
    wrk_seconds = min(elapsed, float(seconds))
    return Figures(setup, requests, wrk_seconds, p50, p99, non_2xx, errors, cpu, os.getloadavg()[0])


def _instance(name: str, folder: Path, env: dict[str, str]) -> Instance:
    instance = Instance(name, folder, env)
    instance.start()
    return instance


def _stop(instances: list[Instance]) -> None:
    for instance in instances:
        if instance.process is not None:
            instance.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sitrep-deploy-"))
    folder.chmod(0o755)
    primary = Postgres(folder / "primary")
    standby: Postgres | None = None
    running: list[Instance] = []
    try:
        primary.init()
        primary.allow_replication()
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write("shared_buffers = '256MB'\nmax_connections = 100\n")
        primary.start()
        started = time.monotonic()
        env = {**os.environ, "DATABASE_URL": primary.dsn, "SITREP_DATA_DIR": str(folder / "data")}
        subprocess.run(
            [str(Path(sys.executable).parent / "sitrep"), "generate", "--entries", str(args.entries), "--seed", "1"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"generated {args.entries} entries in {time.monotonic() - started:.0f} s", flush=True)
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-qc", "VACUUM ANALYZE"],
            check=True,
        )
        standby = primary.standby(folder / "standby")
        standby.start()
        script = _script(folder, asyncio.run(_paths(primary.dsn, random.Random(1))))
        settings = {
            "DATABASE_URL": primary.dsn,
            "SITREP_SECRET": SECRET,
            "SITREP_LOAD_SAMPLE": "false",
            "SITREP_ANONYMOUS_RATE": "100000000",
            "SITREP_POOL_MAX": "10",
        }
        replicated = {**settings, "DATABASE_REPLICA_URLS": standby.dsn}
        results: list[Figures] = []
        for round_ in range(args.rounds):
            running = [_instance(f"solo{round_}", folder / "instances", settings)]
            results.append(measure("primary only", running, primary, standby, script, args.seconds, args.connections))
            _stop(running)
            running = [_instance(f"r{round_}{n}", folder / "instances", replicated) for n in range(2)]
            results.append(measure("2 + replica", running, primary, standby, script, args.seconds, args.connections))
            _stop(running)
            running = []
            for figures in results[-2:]:
                print(f"round {round_ + 1}: {figures.setup}: {figures.rps:.0f} req/s", flush=True)
        _table(results, args)
    finally:
        for instance in running:
            instance.close()
        if standby is not None:
            standby.close()
        primary.close()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _table(results: list[Figures], args: argparse.Namespace) -> None:
    print(
        f"\n{args.entries} entries, mixed reads (5 kinds), wrk {args.connections} connections in all,"
        f" {args.seconds} s a run, {args.rounds} round(s), {os.cpu_count()} cores"
    )
    header = (
        f"{'setup':<14}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>9}"
        f"{'CPU ms/req: app':>17}{'primary':>9}{'standby':>9}{'load':>7}"
    )
    print(header)
    print("-" * len(header))
    for f in results:
        print(
            f"{f.setup:<14}{f.rps:>8.0f}{f.p50_ms:>8.1f}{f.p99_ms:>8.1f}{f.non_2xx + f.errors:>9}"
            f"{f.ms_per_request('instances'):>17.2f}{f.ms_per_request('primary'):>9.2f}"
            f"{f.ms_per_request('standby'):>9.2f}{f.load:>7.2f}"
        )


if __name__ == "__main__":
    main()
