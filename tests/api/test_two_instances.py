"""Two sitrep processes on one database and one Redis: one rate per key, revocation everywhere."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from db import keys as keydb

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PEPPER = "two-instances-pepper"

UVICORN = [sys.executable, "-m", "uvicorn", "api.asgi:app", "--host", "127.0.0.1", "--log-level", "warning"]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(db_dsn: str, prefix: str, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_dsn,
        REDIS_URL=REDIS_URL,
        SITREP_REDIS_PREFIX=prefix,
        SITREP_SECRET=PEPPER,
        SITREP_DATA_DIR=str(data_dir),
        SITREP_ANONYMOUS_RATE="1000",
    )
    env.pop("SITREP_KEY_PEPPER", None)
    return env


class Instance:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [*UVICORN, "--port", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"instance exited with {self.process.returncode}: see {self.log.name}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"instance on {self.port} not ready within {seconds} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"sitrep-2i-{uuid.uuid4().hex[:10]}:"
    yield value

    async def clean() -> None:
        client = aioredis.Redis.from_url(REDIS_URL)
        found = [k async for k in client.scan_iter(match=value + "*")]
        if found:
            await client.delete(*found)
        await client.aclose()

    asyncio.run(clean())


@pytest.fixture
async def instances(db_dsn: str, prefix: str, tmp_path: Path) -> AsyncIterator[tuple[Instance, Instance]]:
    env = environment(db_dsn, prefix, tmp_path)
    pair = (Instance(env, tmp_path / "a.log"), Instance(env, tmp_path / "b.log"))
    try:
        for instance in pair:
            await asyncio.to_thread(instance.wait_ready)
        yield pair
    finally:
        for instance in pair:
            instance.stop()


async def test_a_keys_rate_is_shared_by_both_instances(
    instances: tuple[Instance, Instance], conn: asyncpg.Connection
) -> None:
    _, token = await keydb.create_key(conn, PEPPER, name="partner", scopes=["read"], rate=10)
    headers = {"X-API-Key": token}
    async with httpx.AsyncClient(timeout=5) as client:
        responses = [await client.get(instances[i % 2].url + "/v1/usage", headers=headers) for i in range(14)]
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 10 + [429] * 4, statuses
    assert [r.headers["ratelimit-remaining"] for r in responses[:10]] == [str(n) for n in range(9, -1, -1)]
    for refused in responses[10:]:
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(refused.headers["retry-after"]) <= 6
        assert refused.headers["ratelimit-limit"] == "10"
        assert refused.headers["ratelimit-remaining"] == "0"


async def wait_until_refused(client: httpx.AsyncClient, url: str, token: str, seconds: float) -> float:
    """Seconds until `token` is answered 401 at `url`; fails past `seconds`."""
    started = time.monotonic()
    for _ in range(int(seconds / 0.02) + 1):
        response = await client.get(url + "/v1/usage", headers={"X-API-Key": token})
        if response.status_code == 401:
            return time.monotonic() - started
        assert response.status_code == 200, response.text
        await asyncio.sleep(0.02)
    pytest.fail(f"the key was still accepted at {url} after {seconds} s")


async def test_revocation_on_one_instance_is_honoured_by_the_other_within_a_second(
    instances: tuple[Instance, Instance], conn: asyncpg.Connection, db_dsn: str, prefix: str, tmp_path: Path
) -> None:
    a, b = instances
    _, admin = await keydb.create_key(conn, PEPPER, name="admin", scopes=["admin"], rate=1000)
    victim_row, victim = await keydb.create_key(conn, PEPPER, name="victim", scopes=["read"], rate=1000)
    cli_row, by_cli = await keydb.create_key(conn, PEPPER, name="cli-victim", scopes=["read"], rate=1000)
    async with httpx.AsyncClient(timeout=5) as client:
        for token in (victim, by_cli):  # both instances have the keys cached now
            for instance in instances:
                assert (await client.get(instance.url + "/v1/usage", headers={"X-API-Key": token})).status_code == 200

        revoked = await client.delete(f"{a.url}/v1/keys/{victim_row.id}", headers={"X-API-Key": admin})
        assert revoked.status_code == 204
        assert await wait_until_refused(client, b.url, victim, 1.0) < 1.0
        assert (await client.get(a.url + "/v1/usage", headers={"X-API-Key": victim})).status_code == 401

        # the command line, a third process, reaches both as well
        cli = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "api.cli",
            "keys",
            "revoke",
            cli_row.id,
            env=environment(db_dsn, prefix, tmp_path),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(cli.communicate(), 30)
        assert cli.returncode == 0, err.decode()
        assert cli_row.id in out.decode()
        for instance in instances:
            assert await wait_until_refused(client, instance.url, by_cli, 1.0) < 1.0

    # WebSockets: the revoked key is refused at connection_init, a bad header key at the handshake
    ws_url = b.url.replace("http://", "ws://") + "/graphql"
    protocol = [websockets.Subprotocol("graphql-transport-ws")]
    async with websockets.connect(ws_url, subprotocols=protocol, open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {admin}"}}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
    async with websockets.connect(ws_url, subprotocols=protocol, open_timeout=5) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {victim}"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            ws_url, subprotocols=protocol, open_timeout=5, additional_headers={"X-API-Key": victim}
        ):
            pass
    assert refused.value.response.status_code == 403


async def test_keys_made_by_the_cli_work_on_both_instances_and_rotation_refuses_the_old_secret(
    instances: tuple[Instance, Instance], db_dsn: str, prefix: str, tmp_path: Path
) -> None:
    async def sitrep(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "api.cli",
            *args,
            env=environment(db_dsn, prefix, tmp_path),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        return out.decode()

    created = await sitrep("keys", "create", "--name", "Partner A", "--scopes", "read,write", "--rate", "600")
    token = created.strip().splitlines()[-1]
    key_id = keydb.parse_token(token)
    assert key_id is not None
    listing = await sitrep("keys", "list")
    assert key_id[0] in listing
    assert key_id[1] not in listing
    async with httpx.AsyncClient(timeout=5) as client:
        for instance in instances:
            response = await client.get(instance.url + "/v1/usage", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "600"
        rotated = (await sitrep("keys", "rotate", key_id[0])).strip().splitlines()[-1]
        assert rotated != token
        for instance in instances:
            assert await wait_until_refused(client, instance.url, token, 1.0) < 1.0
            response = await client.get(instance.url + "/v1/usage", headers={"X-API-Key": rotated})
            assert response.status_code == 200
