"""The live page (/) and GraphiQL (/graphql) in headless Chromium, with the network cut off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from tests.web.conftest import BLOG, Offline, Served

LIVE_MS = 2000  # a change made through the API shows on the open page within 2 s


def _entry(headline: str, actor: str, location: str) -> dict[str, Any]:
    return {
        "blog": BLOG,
        "published_at": "2023-09-13T20:15:00Z",
        "headline": headline,
        "body": ["Written by the browser test."],
        "actors": [{"actor": actor, "role": "speaker"}],
        "locations": [location],
        "sources": [],
    }


async def _headlines(api: httpx.AsyncClient, **filters: str) -> list[str]:
    found = await api.get("/v1/entries", params={"blog": BLOG, "limit": 200, **filters})
    return [e["headline"] for e in found.json()["data"]]


async def _places(api: httpx.AsyncClient, **filters: str) -> set[str]:
    found = await api.get("/v1/entries", params={"blog": BLOG, "limit": 200, "format": "geojson", **filters})
    return {f["properties"]["location"] for f in found.json()["features"]}


async def _hours(api: httpx.AsyncClient, **filters: str) -> list[dict[str, Any]]:
    """The hours with entries."""
    found = await api.get("/v1/timeline", params={"blog": BLOG, "interval": "hour", **filters})
    return [bucket for bucket in found.json()["data"] if bucket["count"] > 0]


async def test_the_live_page_follows_the_blog_as_it_changes(served: Served, offline: Offline, artifacts: Path) -> None:
    page = offline.page
    auth = {"Authorization": f"Bearer {served.write_key}"}
    async with httpx.AsyncClient(base_url=served.base, headers=auth) as api:
        expected = await _headlines(api)
        await page.goto(f"{served.base}/")
        await expect(page.locator("body[data-ready]")).to_be_attached()
        await expect(page.locator("#status")).to_have_text("live")

        # the blog's entries, newest first, as the API lists them; its map and timeline
        entries = page.locator("#entries > li")
        assert len(expected) == 48
        await expect(page.locator("#count")).to_have_text("48 entries")
        await expect(entries.locator("h3")).to_have_text(expected)
        await expect(page.locator("#blogs button[aria-current=true]")).to_contain_text("Russia-Ukraine war")
        markers = page.locator("#map path.entry-marker")
        await expect(markers).to_have_count(len(await _places(api)))
        bars = page.locator("#timeline rect.bar")
        hours = await _hours(api)
        await expect(bars).to_have_count(len(hours))
        first = hours[0]  # e.g. {"start": "2023-09-13T04:00:00Z", "count": 3}
        noun = "entry" if first["count"] == 1 else "entries"
        label = f"{first['start'][:10]} {first['start'][11:16]} UTC: {first['count']} {noun}"
        await expect(bars.first.locator("title")).to_have_text(label)
        await page.screenshot(path=artifacts / "live-page.png")

        # a new entry, posted through REST, shows at the top; then its update, then its deletion
        created = await api.post("/v1/entries", json=_entry("Browser test: a new entry", "kim-jong-un", "kyiv"))
        assert created.status_code == 201, created.text
        new_id = created.json()["id"]
        shown = page.locator(f'#entries > li[data-id="{new_id}"]')
        await expect(entries.first).to_have_attribute("data-id", str(new_id), timeout=LIVE_MS)
        await expect(shown.locator("h3")).to_have_text("Browser test: a new entry")
        await expect(page.locator("#count")).to_have_text("49 entries")
        await expect(bars).to_have_count(len(await _hours(api)))  # its hour (20:00) was empty before
        await page.screenshot(path=artifacts / "live-page-created.png")

        patched = await api.patch(f"/v1/entries/{new_id}", json={"headline": "Browser test: revised"})
        assert patched.status_code == 200, patched.text
        await expect(shown.locator("h3")).to_have_text("Browser test: revised", timeout=LIVE_MS)
        assert await entries.count() == 49

        deleted = await api.delete(f"/v1/entries/{new_id}")
        assert deleted.status_code == 204
        await expect(shown).to_have_count(0, timeout=LIVE_MS)
        await expect(page.locator("#count")).to_have_text("48 entries")
        await expect(entries.locator("h3")).to_have_text(expected)

        # an actor filter narrows the list, the map and the timeline to what the API answers for it
        narrowed = await _headlines(api, actor="kim-jong-un")
        assert 0 < len(narrowed) < len(expected)
        await page.select_option("#actor", "kim-jong-un")
        await expect(page.locator("#count")).to_have_text(f"{len(narrowed)} entries")
        await expect(entries).to_have_count(len(narrowed))
        await expect(entries.locator("h3")).to_have_text(narrowed)
        await expect(markers).to_have_count(len(await _places(api, actor="kim-jong-un")))
        await expect(bars).to_have_count(len(await _hours(api, actor="kim-jong-un")))
        assert "actor=kim-jong-un" in page.url
        await page.screenshot(path=artifacts / "live-page-filtered.png")

        # the filtered view stays filtered live: of two new entries, only Kim's shows
        other = await api.post("/v1/entries", json=_entry("Browser test: not Kim", "vladimir-putin", "kyiv"))
        kims = await api.post("/v1/entries", json=_entry("Browser test: Kim again", "kim-jong-un", "kyiv"))
        assert other.status_code == kims.status_code == 201
        await expect(entries.first.locator("h3")).to_have_text("Browser test: Kim again", timeout=LIVE_MS)
        await expect(page.locator(f'#entries > li[data-id="{other.json()["id"]}"]')).to_have_count(0)

        # a location filter includes the places inside it; a source filter can come in the address
        await page.select_option("#actor", "")
        await page.select_option("#location", "crimea")
        in_crimea = await _headlines(api, location="crimea")
        assert 0 < len(in_crimea) < len(expected)
        await expect(page.locator("#count")).to_have_text(f"{len(in_crimea)} entries")
        await expect(entries.locator("h3")).to_have_text(in_crimea)
        await page.goto(f"{served.base}/#blog={BLOG}&source=telegram")
        on_telegram = await _headlines(api, source="telegram")
        assert 0 < len(on_telegram) < len(expected)
        await expect(page.locator("#count")).to_have_text(f"{len(on_telegram)} entries")
        await expect(page.locator("#source")).to_have_value("telegram")
        await expect(entries.locator("h3")).to_have_text(on_telegram)

    assert offline.blocked == []  # nothing asked for the network
    assert offline.errors == []


async def test_graphiql_runs_a_query_with_the_explorer_and_no_network(
    served: Served, offline: Offline, artifacts: Path
) -> None:
    page = offline.page
    await page.goto(f"{served.base}/graphql")
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    await expect(editor).to_be_visible(timeout=10_000)
    # the explorer lists the root fields it read by introspection
    explorer = page.locator(".graphiql-explorer-root")
    await expect(explorer).to_contain_text("entries")
    await expect(explorer).to_contain_text("timeline")
    query = f'{{ blog(slug: "{BLOG}") {{ title entries(first: 2) {{ totalCount }} }} }}'
    await editor.evaluate("(node, query) => node.CodeMirror.setValue(query)", query)
    await page.locator(".graphiql-execute-button").click()
    result = page.locator(".graphiql-response .result-window")
    await expect(result).to_contain_text('"totalCount": 48')
    await expect(result).to_contain_text("Russia-Ukraine war: Ukraine strikes Sevastopol")
    await page.screenshot(path=artifacts / "graphiql.png")

    # a subscription runs over the socket: entries posted through REST arrive in the result pane
    await editor.evaluate(
        "(node, query) => node.CodeMirror.setValue(query)", "subscription { entryPublished { headline } }"
    )
    await page.wait_for_timeout(500)  # GraphiQL parses the text a moment after a change (as a person types)
    await page.locator(".graphiql-execute-button").click()
    auth = {"Authorization": f"Bearer {served.write_key}"}
    async with httpx.AsyncClient(base_url=served.base, headers=auth) as api:
        for attempt in range(5):  # the first may commit before the subscription is registered
            posted = await api.post("/v1/entries", json=_entry(f"Pushed to GraphiQL {attempt}", "kim-jong-un", "kyiv"))
            assert posted.status_code == 201, posted.text
            try:
                await expect(result).to_contain_text("Pushed to GraphiQL", timeout=1500)
                break
            except AssertionError:
                continue
    await expect(result).to_contain_text('"entryPublished"')
    assert offline.blocked == []
    assert offline.errors == []


async def test_where_the_server_requires_a_key_the_page_asks_for_one_and_then_works(
    served_with_key: Served, offline: Offline, artifacts: Path
) -> None:
    page = offline.page
    auth = {"Authorization": f"Bearer {served_with_key.write_key}"}
    async with httpx.AsyncClient(base_url=served_with_key.base, headers=auth) as api:
        other = await api.post(
            "/v1/blogs", json={"slug": "another-day", "title": "Another day", "published_at": "2023-09-14T00:00:00Z"}
        )
        assert other.status_code == 201, other.text
        only = await api.post(
            "/v1/entries",
            json={
                **_entry("The one entry of another day", "kim-jong-un", "kyiv"),
                "blog": "another-day",
                "published_at": "2023-09-14T08:00:00Z",
            },
        )
        assert only.status_code == 201, only.text

    await page.goto(f"{served_with_key.base}/")
    error = page.locator("#error")
    await expect(error).to_contain_text("an API key is required")
    await expect(error).to_contain_text("API key")
    await page.screenshot(path=artifacts / "live-page-needs-a-key.png")

    await page.locator(".key summary").click()
    await page.fill("#key", served_with_key.write_key)
    await page.locator("#key-form button").click()  # kept in localStorage; the page reloads
    await expect(page.locator("body[data-ready]")).to_be_attached()
    await expect(page.locator("#status")).to_have_text("live")
    await expect(error).to_be_hidden()
    # the newest blog is shown first; another is one click away
    await expect(page.locator("#blogs button")).to_have_count(2)
    await expect(page.locator("#entries > li")).to_have_count(1)
    await expect(page.locator("#entries h3")).to_have_text("The one entry of another day")
    await page.locator(f'#blogs button[data-slug="{BLOG}"]').click()
    await expect(page.locator("#count")).to_have_text("48 entries")
    assert f"blog={BLOG}" in page.url
    assert offline.blocked == []
    assert [e for e in offline.errors if "401" not in e] == []  # the refused calls before the key was given
