"""Property-based requests from the committed OpenAPI document against a live server.

Schemathesis generates requests for every operation (valid and invalid inputs alike) and
checks that none answers 5xx and that every answer matches the document: status code
documented, content type documented, body valid against the documented schema. Reads go
anonymous to one server; writes and key administration (and the keyed reads, /v1/usage and
/v1/keys) go with an admin key to another server on a database of their own, so they do not
change the data under the readers' feet. Bounded: a fixed number of examples per operation,
several hundred requests in all, the same every run. The live stream (SSE) never ends by
design and is left out, as is /graphql (a GraphQL query is not described by OpenAPI;
tests/schema covers it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.openapi_dump import COMMITTED
from db import keys as keydb
from db.generate import generate
from db.pool import connect
from tests.api.live import live_server
from tests.conftest import _admin, with_database

# per read operation, and per write or key operation; SITREP_FUZZ_EXAMPLES sets both for a deeper
# run than CI's (e.g. 200: `SITREP_FUZZ_EXAMPLES=200 pytest tests/api/test_schemathesis.py`)
MAX_EXAMPLES = int(os.environ.get("SITREP_FUZZ_EXAMPLES", "20"))
MAX_KEYED_EXAMPLES = int(os.environ.get("SITREP_FUZZ_EXAMPLES", "15"))
SECRET = "live-server-test-secret"  # tests/api/live.py gives the server this one; keys are hashed with it
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

UNTESTED = r"^/v1/stream/|^/graphql"
schema = schemathesis.openapi.from_path(str(COMMITTED)).include(method="GET").exclude(path_regex=UNTESTED)


def _keyed(ctx: Any) -> bool:
    operation = ctx.operation
    return bool(operation.method.upper() != "GET" or operation.path.startswith(("/v1/keys", "/v1/usage")))


keyed_schema = schemathesis.openapi.from_path(str(COMMITTED)).include(func=_keyed).exclude(path_regex=UNTESTED)


@contextmanager
def _server(server_dsn: str, template_db: str, folder: Path) -> Iterator[tuple[str, str]]:
    """A server over a database of a few hundred synthetic entries; its URL and an admin key."""
    name = f"sitrep_t_st_{uuid.uuid4().hex[:12]}"

    async def create() -> str:
        await _admin(server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        conn = await connect(with_database(server_dsn, name))
        try:
            await generate(conn, entries=300, seed=7)
            _, token = await keydb.create_key(
                conn, SECRET, name="schemathesis", scopes=["read", "write", "admin"], rate=1_000_000
            )
            return token
        finally:
            await conn.close()

    token = asyncio.run(create())
    try:
        with live_server(with_database(server_dsn, name), folder, SITREP_ANONYMOUS_RATE="1000000") as url:
            yield url, token
    finally:
        asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def base_url(server_dsn: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with _server(server_dsn, template_db, tmp_path_factory.mktemp("schemathesis")) as (url, _):
        yield url


@pytest.fixture(scope="module")
def keyed_server(
    server_dsn: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    with _server(server_dsn, template_db, tmp_path_factory.mktemp("schemathesis-keyed")) as found:
        yield found


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: CI does not go red by luck
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_reads_conform_to_the_document(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=30)


@keyed_schema.parametrize()
@settings(
    max_examples=MAX_KEYED_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_writes_and_key_operations_conform_to_the_document(
    case: schemathesis.Case, keyed_server: tuple[str, str]
) -> None:
    url, token = keyed_server
    case.call_and_validate(base_url=url, headers={"X-API-Key": token}, checks=CHECKS, timeout=30)


def test_every_operation_but_the_stream_is_fuzzed() -> None:
    assert Path(COMMITTED).exists()
    document = json.loads(Path(COMMITTED).read_text())
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"} and not re.match(UNTESTED, path)
    }
    fuzzed = {
        (op.method.upper(), op.path)
        for source in (schema, keyed_schema)
        for op in (result.ok() for result in source.get_all_operations())
    }
    assert fuzzed == documented
    assert len(documented) >= 30
