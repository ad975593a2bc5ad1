"""The GraphQL hostile-input corpus (tests/data/graphql_hostile.json): every input is an error
with a code from the contract, never INTERNAL_SERVER_ERROR and never a 5xx (issue #12, defect 3).

Each case is {"name", "query", "variables"?, "operationName"?, "fill"?: [character, count]}; a
fill replaces "@FILL@" in the query, so giant strings stay small in the file.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from db import keys as keydb
from tests.db import factories as f
from tests.schema.conftest import SECRET

CORPUS = json.loads((Path(__file__).parents[1] / "data" / "graphql_hostile.json").read_text())
# the contract's codes (docs/api.md)
CODES = {
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "RATE_LIMITED",
    "QUERY_TOO_COMPLEX",
    "SERVICE_UNAVAILABLE",
}


def _body(case: dict[str, Any]) -> dict[str, Any]:
    query = case["query"]
    if "fill" in case:
        char, count = case["fill"]
        query = query.replace("@FILL@", char * count)
    body: dict[str, Any] = {"query": query}
    for name in ("variables", "operationName"):
        if name in case:
            body[name] = case[name]
    return body


@pytest.fixture
async def writer(conn: asyncpg.Connection) -> dict[str, str]:
    await f.blog(conn, "day-one")  # what the write cases name
    await f.actor(conn, "peskov", "Dmitry Peskov")
    _, token = await keydb.create_key(
        conn, SECRET, name=f"g-{uuid.uuid4().hex[:6]}", scopes=("read", "write"), rate=10**6
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
async def test_hostile_input_is_a_coded_error(
    client: AsyncTestClient[Any], writer: dict[str, str], case: dict[str, Any]
) -> None:
    r = await client.post("/graphql", json=_body(case), headers=writer)
    assert r.status_code < 500, r.text[:500]
    assert r.headers["content-type"].startswith("application/json"), r.text[:500]
    errors = r.json().get("errors")
    assert errors, f"no error for {case['name']}: {r.text[:300]}"
    codes = [e.get("extensions", {}).get("code") for e in errors]
    assert set(codes) <= CODES, (codes, [e["message"][:200] for e in errors])
    assert "Traceback" not in r.text
