"""If-Match on PATCH and DELETE: a stale tag is a 412 problem and nothing is written; `*` and the
current tag (as GET gave it) go through."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.api.test_writes import ENTRY, catalog, client, writer

__all__ = ["catalog", "client", "writer"]  # fixtures shared with the write tests


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_patch_and_delete_of_an_entry_honour_if_match(
    client: AsyncTestClient[Any], writer: dict[str, str], catalog: None
) -> None:
    created = (await client.post("/v1/entries", json=ENTRY, headers=writer)).json()
    path = f"/v1/entries/{created['id']}"
    seen = (await client.get(path)).headers["etag"]

    first = await client.patch(path, json={"headline": "First edit"}, headers={**writer, "If-Match": seen})
    assert first.status_code == 200, first.text
    assert first.json()["headline"] == "First edit"

    # a second editor still holding the old tag loses, and changes nothing
    stale = await client.patch(path, json={"headline": "Second edit"}, headers={**writer, "If-Match": seen})
    assert "changed" in _problem(stale, 412)["detail"]
    assert (await client.get(path)).json()["headline"] == "First edit"
    assert _problem(await client.delete(path, headers={**writer, "If-Match": seen}), 412)
    # a weak tag never matches (strong comparison), a list with the current tag does
    now = (await client.get(path)).headers["etag"]
    assert now != seen
    weak = await client.patch(path, json={"headline": "x"}, headers={**writer, "If-Match": f"W/{now}"})
    _problem(weak, 412)
    listed = await client.patch(path, json={"headline": "Third"}, headers={**writer, "If-Match": f'"nope", {now}'})
    assert listed.status_code == 200
    third = (await client.get(path)).headers["etag"]

    assert (await client.patch(path, json={"headline": "Any"}, headers={**writer, "If-Match": "*"})).status_code == 200
    assert (await client.delete(path, headers={**writer, "If-Match": third})).status_code == 412
    assert (await client.delete(path, headers={**writer, "If-Match": "*"})).status_code == 204
    # `*` on what is gone is the 404 it always was
    _problem(await client.delete(path, headers={**writer, "If-Match": "*"}), 404)
    # without If-Match writes are unconditional, as before
    again = (await client.post("/v1/entries", json=ENTRY, headers=writer)).json()
    assert (await client.delete(f"/v1/entries/{again['id']}", headers=writer)).status_code == 204


async def test_patch_of_actors_locations_and_sources_honour_if_match(
    client: AsyncTestClient[Any], writer: dict[str, str], catalog: None
) -> None:
    for path, change in (
        ("/v1/actors/peskov", {"description": "Kremlin spokesman"}),
        ("/v1/locations/moscow", {"description": "Capital of Russia"}),
        ("/v1/sources/tass", {"description": "Russian state news agency"}),
    ):
        seen = (await client.get(path)).headers["etag"]
        ok = await client.patch(path, json=change, headers={**writer, "If-Match": seen})
        assert ok.status_code == 200, (path, ok.text)
        stale = await client.patch(path, json={"description": "late"}, headers={**writer, "If-Match": seen})
        _problem(stale, 412)
        assert (await client.get(path)).json()["description"] == change["description"]
