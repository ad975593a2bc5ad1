"""Queries against the schema: connections, lookups, filters, pagination, errors."""

from __future__ import annotations

from tests.schema.conftest import Runner, World


async def test_latest_entries_with_links(gql: Runner, world: World) -> None:
    data = await gql.data(
        """{ entries(first: 3) { totalCount pageInfo { hasNextPage hasPreviousPage }
             nodes { databaseId headline kind blog { slug } actors { role actor { slug } }
                     locations { slug } sources { slug } } } }"""
    )
    conn = data["entries"]
    assert conn["totalCount"] == 120
    assert conn["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": False}
    newest = conn["nodes"][0]
    assert newest["databaseId"] == world.entries[-1]
    assert newest["headline"].startswith("Update 119")
    assert newest["blog"] == {"slug": "day-two"}
    assert {"role": "SPEAKER", "actor": {"slug": "nato"}} in newest["actors"]
    assert newest["locations"] == [{"slug": "moscow"}]
