"""GET /metrics: Prometheus text with request counts and latencies per route template, pool usage."""

from __future__ import annotations

import asyncpg
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from api.settings import Settings
from db import keys


async def scrape(client: AsyncTestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[type-arg]
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_requests_are_counted_per_route_template(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    for _ in range(3):
        assert (await client.get("/health")).status_code == 200
    await client.get("/docs/assets/favicon-32x32.png")
    await client.get("/docs/assets/swagger-ui.css")
    await client.get("/docs/no-such-page")
    samples = await scrape(client)

    def count(route: str, status: str) -> float:
        key = ("sitrep_http_requests_total", (("method", "GET"), ("route", route), ("status", status)))
        return samples.get(key, 0.0)

    assert count("/health", "200") == 3
    # both files under one template, not one series per path
    assert count("/docs/assets/{file_path}", "200") == 2
    assert count("/docs/{path}", "404") == 1
    latency = ("sitrep_http_request_duration_seconds_count", (("method", "GET"), ("route", "/health")))
    assert samples[latency] == 3
    assert not any("favicon" in str(labels) for _, labels in samples)


async def test_pool_usage_is_reported(client: AsyncTestClient, api_settings: Settings) -> None:  # type: ignore[type-arg]
    assert (await client.get("/ready")).status_code == 200
    samples = await scrape(client)
    size = samples[("sitrep_db_pool_size", ())]
    idle = samples[("sitrep_db_pool_idle", ())]
    assert samples[("sitrep_db_pool_max", ())] == api_settings.pool_max
    assert size >= api_settings.pool_min
    assert 0 <= idle <= size


async def test_requests_that_match_no_route_are_counted_under_one_label(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
    api_settings: Settings,
) -> None:
    for i in range(5):
        assert (await client.get(f"/no/such/path/{i}")).status_code == 404
    assert (await client.get("/v1/entries/not-a-number")).status_code == 404
    assert (await client.delete("/health")).status_code == 405
    # a made-up method gets past the key check only with a key that may write
    _, token = await keys.create_key(conn, api_settings.secret, name="writer", scopes=["read", "write"], rate=1000)
    assert (await client.request("BREW", "/coffee-pot", headers={"X-API-Key": token})).status_code in (404, 405)
    assert (await client.head("/health")).status_code == 200
    samples = await scrape(client)

    def count(method: str, route: str, status: str) -> float:
        key = ("sitrep_http_requests_total", (("method", method), ("route", route), ("status", status)))
        return samples.get(key, 0.0)

    assert count("GET", "<unmatched>", "404") == 6
    assert count("DELETE", "<unmatched>", "405") == 1
    assert count("other", "<unmatched>", "405") + count("other", "<unmatched>", "404") == 1
    assert count("HEAD", "/health", "200") == 1
    latency = ("sitrep_http_request_duration_seconds_count", (("method", "GET"), ("route", "<unmatched>")))
    assert samples[latency] == 6
    # never the raw path, never the made-up method
    assert not any(
        "no/such" in str(labels) or "coffee" in str(labels) or "BREW" in str(labels) for _, labels in samples
    )
