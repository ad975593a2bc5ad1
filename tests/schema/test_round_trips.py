"""No N+1: statements per request follow the query's depth, not its number of rows."""

from __future__ import annotations

import asyncio

import pytest

from tests.schema.conftest import Runner, World

ENTRIES_WITH_LINKS = """query($n: Int) { entries(first: $n) { nodes { headline blog { slug }
  actors { role actor { slug name } } locations { slug parent { slug } } sources { slug } media { kind } } } }"""
ACTORS_ENTRIES_ACTORS = """query($n: Int) { entries(first: $n) { nodes { actors { actor { slug
  entries(first: 10) { totalCount nodes { headline actors { actor { slug } } } } } } } } }"""


async def _statements(gql: Runner, query: str, n: int, *, fast: bool) -> int:
    await gql(query, {"n": 1}, fast=fast)  # the connection's first statements also introspect types
    await asyncio.sleep(0.05)  # asyncpg reports a statement to its loggers just after it completes
    gql.statements.clear()
    body = await gql(query, {"n": n}, fast=fast)
    assert "errors" not in body, body
    await asyncio.sleep(0.05)
    return len(gql.statements)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
async def test_entries_with_links_cost_the_same_statements_for_5_or_100_rows(
    gql: Runner, world: World, fast: bool
) -> None:
    few = await _statements(gql, ENTRIES_WITH_LINKS, 5, fast=fast)
    many = await _statements(gql, ENTRIES_WITH_LINKS, 100, fast=fast)
    assert many == few
    # the page (with its filter resolution and snapshot), then blog, actors, locations, parents, sources, media
    assert many <= 12, gql.statements


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
async def test_nested_entries_of_actors_are_batched(gql: Runner, world: World, fast: bool) -> None:
    few = await _statements(gql, ACTORS_ENTRIES_ACTORS, 2, fast=fast)
    many = await _statements(gql, ACTORS_ENTRIES_ACTORS, 20, fast=fast)
    assert many == few
    assert many <= 12, gql.statements
