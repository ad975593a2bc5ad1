"""Property-based requests from the committed OpenAPI document against a live server.

Schemathesis generates requests for every read operation (valid and invalid inputs alike)
and checks that none answers 5xx and that every answer matches the document: status code
documented, content type documented, body valid against the documented schema. Bounded:
MAX_EXAMPLES per operation, a few hundred requests in all. Writes are left to their own
tests (they need keys and would change the data under the readers' feet). The live stream
(SSE) never ends by design and is left out too, as is GET /graphql (a GraphQL query is
not described by OpenAPI; tests/schema covers it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

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
from db.generate import generate
from db.pool import connect
from tests.api.live import live_server
from tests.conftest import _admin, with_database

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = (
    schemathesis.openapi.from_path(str(COMMITTED)).include(method="GET").exclude(path_regex=r"^/v1/stream/|^/graphql")
)


@pytest.fixture(scope="module")
def base_url(server_dsn: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server over a database of a few hundred synthetic entries, for the whole module."""
    name = f"sitrep_t_st_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        await _admin(server_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        conn = await connect(with_database(server_dsn, name))
        try:
            await generate(conn, entries=300, seed=7)
        finally:
            await conn.close()

    asyncio.run(create())
    try:
        with live_server(
            with_database(server_dsn, name),
            tmp_path_factory.mktemp("schemathesis"),
            SITREP_ANONYMOUS_RATE="1000000",
        ) as url:
            yield url
    finally:
        asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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


def test_the_document_has_read_operations_to_test() -> None:
    assert Path(COMMITTED).exists()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 3
