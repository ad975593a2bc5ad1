"""List formats: negotiation, CSV, GeoJSON and the whole-result NDJSON export."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from api.formats import Format, NotAcceptable, entries_csv, entries_geojson, negotiate, text_cell
from db import export
from db import keys as keydb
from db.entries import linked_by_ids
from db.errors import InvalidInput, NotFound
from db.filters import EntryFilter
from db.refs import Refs
from db.rows import Entry
from tests.api.live import live_server, stalled_export
from tests.db import factories as f

# ---------------------------------------------------------------- negotiation


@pytest.mark.parametrize(
    ("accept", "format", "expected"),
    [
        (None, None, Format.JSON),
        ("", None, Format.JSON),
        ("*/*", None, Format.JSON),
        ("application/json", None, Format.JSON),
        ("application/x-ndjson", None, Format.NDJSON),
        ("text/csv", None, Format.CSV),
        ("application/geo+json", None, Format.GEOJSON),
        ("text/*", None, Format.CSV),
        ("application/*", None, Format.JSON),
        ("TEXT/CSV; charset=utf-8", None, Format.CSV),
        # a browser: no exact match, */* gives the default
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", None, Format.JSON),
        # q decides, then specificity, then the client's order
        ("application/json;q=0.5, text/csv", None, Format.CSV),
        ("text/csv, */*", None, Format.CSV),
        ("application/geo+json, application/json", None, Format.GEOJSON),
        ("application/json, application/geo+json", None, Format.JSON),
        ("*/*;q=0.1, application/x-ndjson;q=0.2", None, Format.NDJSON),
        ("text/csv;q=0, */*", None, Format.JSON),
        ("application/json;q=bogus, text/csv;q=0.1", None, Format.CSV),
        # format= wins over Accept, even one we could not answer
        ("application/json", "csv", Format.CSV),
        ("image/png", "ndjson", Format.NDJSON),
        (None, "GeoJSON", Format.GEOJSON),
    ],
)
def test_negotiation(accept: str | None, format: str | None, expected: Format) -> None:
    assert negotiate(accept, format) is expected


@pytest.mark.parametrize("accept", ["image/png", "text/html", "application/xml, text/plain", "text/csv;q=0"])
def test_an_accept_we_cannot_answer_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable) as caught:
        negotiate(accept, None)
    assert caught.value.status_code == 406
    assert "text/csv" in caught.value.detail


@pytest.mark.parametrize("value", ["xml", "", "json2"])
def test_an_unknown_format_names_the_parameter(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        negotiate(None, value)
    assert caught.value.field == "format"


def test_a_format_the_list_does_not_offer_is_refused() -> None:
    with pytest.raises(InvalidInput):
        negotiate(None, "geojson", offered=(Format.JSON, Format.CSV))
    assert negotiate("*/*", None, offered=(Format.JSON, Format.CSV)) is Format.JSON
    with pytest.raises(NotAcceptable):
        negotiate("application/geo+json", None, offered=(Format.JSON, Format.CSV))


# ---------------------------------------------------------------- renderers


async def _entries(conn: asyncpg.Connection, ids: list[int]) -> list[Entry]:
    found = await linked_by_ids(conn, Refs(), ids)
    return [found[i] for i in sorted(ids)]


@pytest.fixture
async def linked(conn: asyncpg.Connection) -> dict[str, int]:
    blog = await f.blog(conn, "kyiv-live")
    ukraine = await f.location(conn, "ukraine", 49.0, 32.0, kind="country")
    crimea = await f.location(conn, "crimea", 45.3, 34.4, kind="region", parent=ukraine)
    sevastopol = await f.location(conn, "sevastopol", 44.6, 33.5, parent=crimea)
    peskov = await f.actor(conn, "dmitry-peskov", "Dmitry Peskov")
    zelensky = await f.actor(conn, "volodymyr-zelensky", "Volodymyr Zelensky")
    tass = await f.source(conn, "tass")
    reuters = await f.source(conn, "reuters")
    tricky = await f.entry(
        conn,
        blog,
        f.at(1),
        headline='Peskov: "no talks", says Kremlin; Песков',
        body=["First paragraph, with a comma.", 'Second "quoted"\nline'],
        actors={peskov: "speaker", zelensky: "mentioned"},
        locations=[sevastopol, crimea],
        sources=[tass, reuters],
    )
    plain = await f.entry(conn, blog, f.at(2), headline="Nothing located")
    return {"tricky": tricky, "plain": plain, "sevastopol": sevastopol, "crimea": crimea}


async def test_csv_quotes_and_joins(conn: asyncpg.Connection, linked: dict[str, int]) -> None:
    entries = await _entries(conn, [linked["tricky"], linked["plain"]])
    text = entries_csv(entries).decode()
    assert text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 2
    tricky, plain = rows
    assert tricky["id"] == str(linked["tricky"])
    assert tricky["blog"] == "kyiv-live"
    assert tricky["headline"] == 'Peskov: "no talks", says Kremlin; Песков'
    assert tricky["body"] == 'First paragraph, with a comma.\n\nSecond "quoted"\nline'
    assert sorted(tricky["actors"].split(";")) == ["dmitry-peskov", "volodymyr-zelensky"]
    assert tricky["speakers"] == "dmitry-peskov"
    assert sorted(tricky["locations"].split(";")) == ["crimea", "sevastopol"]
    assert sorted(tricky["sources"].split(";")) == ["reuters", "tass"]
    # the same RFC 3339 form as the JSON answers
    assert tricky["published_at"] == f.at(1).isoformat().replace("+00:00", "Z")
    assert tricky["published_at"].endswith("Z")
    assert (plain["actors"], plain["locations"], plain["sources"]) == ("", "", "")
    assert entries_csv([]).decode() == ",".join(rows[0].keys()) + "\r\n"


async def test_geojson_is_one_feature_per_entry_and_location(conn: asyncpg.Connection, linked: dict[str, int]) -> None:
    entries = await _entries(conn, [linked["tricky"], linked["plain"]])
    collection = msgspec.json.decode(entries_geojson(entries, {"limit": 50, "next_cursor": None}))
    assert collection["type"] == "FeatureCollection"
    assert collection["page"] == {"limit": 50, "next_cursor": None}
    features = collection["features"]
    assert len(features) == 2  # two locations of the first entry, none for the second
    by_location = {feat["properties"]["location"]: feat for feat in features}
    assert set(by_location) == {"crimea", "sevastopol"}
    sevastopol = by_location["sevastopol"]
    assert sevastopol["type"] == "Feature"
    assert sevastopol["geometry"] == {"type": "Point", "coordinates": [33.5, 44.6]}  # lon, lat
    assert sevastopol["properties"]["entry_id"] == linked["tricky"]
    assert sevastopol["properties"]["headline"].startswith("Peskov")
    assert sorted(sevastopol["properties"]["actors"]) == ["dmitry-peskov", "volodymyr-zelensky"]
    assert len({feat["id"] for feat in features}) == 2


# ---------------------------------------------------------------- whole-result export


async def test_export_reads_every_row_once_in_order_in_chunks(conn: asyncpg.Connection) -> None:
    blog = await f.blog(conn)
    other = await f.blog(conn)
    actor = await f.actor(conn, "someone")
    await conn.executemany(
        "INSERT INTO entries (blog_id, published_at, headline) VALUES ($1, $2, $3)",
        [(blog if i % 3 else other, f.at(i // 2), f"entry {i}") for i in range(1234)],
    )
    some = await conn.fetch("SELECT id, published_at FROM entries WHERE blog_id = $1 ORDER BY id LIMIT 7", blog)
    await conn.executemany(
        "INSERT INTO entry_actors (entry_id, actor_id, published_at) VALUES ($1, $2, $3)",
        [(r["id"], actor, r["published_at"]) for r in some],
    )
    chunks = [c async for c in export.iter_entries(conn, EntryFilter(blog=(blog,)), chunk=100)]
    assert max(len(c) for c in chunks) == 100
    got = [e for c in chunks for e in c]
    expected = await conn.fetch("SELECT id FROM entries WHERE blog_id = $1 ORDER BY published_at DESC, id DESC", blog)
    assert [e.id for e in got] == [r["id"] for r in expected]
    assert len(got) == 822

    oldest_first = [
        e async for c in export.iter_entries(conn, EntryFilter(actor=("someone",)), "published_at") for e in c
    ]
    assert [e.id for e in oldest_first] == sorted(r["id"] for r in some)
    assert all(e.actors[0].actor.slug == "someone" for e in oldest_first)


async def test_export_of_an_unknown_reference_is_not_found(conn: asyncpg.Connection) -> None:
    with pytest.raises(NotFound) as caught:
        async for _ in export.iter_entries(conn, EntryFilter(actor=("nobody",))):
            pass
    assert caught.value.field == "actor"


# ---------------------------------------------------------------- over HTTP: GET /v1/entries


@pytest.fixture
async def many(conn: asyncpg.Connection, linked: dict[str, int]) -> int:
    """450 more entries in their own blog: more than the largest page (200)."""
    blog = await f.blog(conn, "many-updates")
    await conn.executemany(
        "INSERT INTO entries (blog_id, published_at, headline, body) VALUES ($1, $2, $3, $4)",
        [(blog, f.at(10 + i), f"update {i}", [f"paragraph {i}"]) for i in range(450)],
    )
    return blog


@pytest.mark.parametrize("how", [{"params": {"format": "ndjson"}}, {"headers": {"Accept": "application/x-ndjson"}}])
async def test_ndjson_streams_the_whole_result_past_the_page_limit(
    client: AsyncTestClient,  # type: ignore[type-arg]
    many: int,
    linked: dict[str, int],
    how: dict[str, dict[str, str]],
) -> None:
    response = await client.get("/v1/entries", **how)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert "etag" not in response.headers  # streamed: see api/caching.py
    lines = response.content.splitlines()
    assert len(lines) == 452  # every entry, no page limit
    rows = [msgspec.json.decode(line) for line in lines]
    assert [r["headline"] for r in rows[:2]] == ["update 449", "update 448"]  # newest first
    tricky = next(r for r in rows if r["id"] == linked["tricky"])
    # each line is the same object the JSON list answers
    page = (await client.get("/v1/entries", params={"blog": "kyiv-live"})).json()
    assert tricky == next(e for e in page["data"] if e["id"] == linked["tricky"])


async def test_ndjson_applies_the_filters_and_sort(client: AsyncTestClient, many: int) -> None:  # type: ignore[type-arg]
    response = await client.get(
        "/v1/entries", params={"format": "ndjson", "blog": "many-updates", "sort": "published_at", "q": "update"}
    )
    headlines = [msgspec.json.decode(line)["headline"] for line in response.content.splitlines()]
    assert headlines == [f"update {i}" for i in range(450)]


async def test_ndjson_with_an_unknown_reference_is_a_404_problem(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/v1/entries", params={"format": "ndjson", "actor": "nobody-at-all"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["name"] == "actor"


async def test_csv_page_follows_the_link_header(client: AsyncTestClient, many: int) -> None:  # type: ignore[type-arg]
    first = await client.get("/v1/entries", params={"blog": "many-updates", "limit": 200, "format": "csv"})
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/csv")
    assert "header=present" in first.headers["content-type"]
    ids: list[str] = []
    response = first
    while True:
        rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
        ids += [row["id"] for row in rows]
        link = response.links.get("next")
        if link is None:
            break
        assert "format=csv" in link["url"]
        response = await client.get(link["url"])
        assert response.headers["content-type"].startswith("text/csv")
    assert len(ids) == len(set(ids)) == 450


async def test_accept_text_csv_answers_csv(client: AsyncTestClient, linked: dict[str, int]) -> None:  # type: ignore[type-arg]
    response = await client.get("/v1/entries", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert {int(r["id"]) for r in rows} == {linked["tricky"], linked["plain"]}


async def test_geojson_page(client: AsyncTestClient, linked: dict[str, int]) -> None:  # type: ignore[type-arg]
    response = await client.get("/v1/entries", params={"format": "geojson", "limit": 1, "sort": "published_at"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert {feat["properties"]["location"] for feat in body["features"]} == {"crimea", "sevastopol"}
    assert body["page"]["limit"] == 1
    assert body["page"]["next_cursor"]
    assert 'rel="next"' in response.headers["link"]


async def test_csv_with_all_streams_the_whole_result_as_the_pages_give_it(
    client: AsyncTestClient,  # type: ignore[type-arg]
    many: int,
) -> None:
    params = {"blog": "many-updates", "format": "csv"}
    response = await client.get("/v1/entries", params={**params, "all": "true"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "link" not in response.headers
    assert "etag" not in response.headers
    streamed = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert len(streamed) == 450  # past the largest page, one header row
    paged: list[dict[str, str]] = []
    url: str | None = "/v1/entries"
    query: dict[str, str | int] | None = {**params, "limit": 200}
    while url is not None:
        page = await client.get(url, params=query)
        paged += csv.DictReader(io.StringIO(page.text, newline=""))
        url, query = page.links.get("next", {}).get("url"), None
    assert streamed == paged  # the same rows, cells and order


async def test_geojson_with_all_is_one_collection_of_every_feature(
    client: AsyncTestClient,  # type: ignore[type-arg]
    many: int,
    linked: dict[str, int],
) -> None:
    whole = await client.get("/v1/entries", params={"format": "geojson", "all": "1", "sort": "published_at"})
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("application/geo+json")
    body = whole.json()  # one valid document, although written chunk by chunk
    assert body["type"] == "FeatureCollection"
    assert "page" not in body
    page = (await client.get("/v1/entries", params={"format": "geojson", "limit": 200, "sort": "published_at"})).json()
    assert body["features"] == page["features"]  # only the linked entries have points: all fit one page
    assert {feat["properties"]["location"] for feat in body["features"]} >= {"crimea", "sevastopol"}
    empty = await client.get("/v1/entries", params={"format": "geojson", "all": "true", "blog": "many-updates"})
    assert empty.json() == {"type": "FeatureCollection", "features": []}


async def test_all_is_refused_for_json_and_for_a_bad_value(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    for params in ({"all": "true"}, {"format": "csv", "all": "maybe"}):
        response = await client.get("/v1/entries", params=params)
        assert response.status_code == 400, params
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["name"] for e in response.json()["errors"]] == ["all"]


async def test_an_accept_the_list_cannot_answer_is_a_406_problem(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/v1/entries", headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "text/csv" in response.json()["detail"]


async def test_an_unknown_format_is_a_400_naming_it(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/v1/entries", params={"format": "xml"})
    assert response.status_code == 400
    assert [e["name"] for e in response.json()["errors"]] == ["format"]


async def test_each_format_has_its_own_etag(client: AsyncTestClient, linked: dict[str, int]) -> None:  # type: ignore[type-arg]
    tags = set()
    for fmt in ("json", "csv", "geojson"):
        response = await client.get("/v1/entries", params={"format": fmt})
        assert "Accept" in response.headers["vary"]
        tags.add(response.headers["etag"])
    assert len(tags) == 3


# ---------------------------------------------------------------- over HTTP: the catalogue lists


async def test_catalogue_ndjson_walks_every_page(client: AsyncTestClient, conn: asyncpg.Connection) -> None:  # type: ignore[type-arg]
    await conn.executemany(
        "INSERT INTO actors (slug, name, kind) VALUES ($1, $2, 'person')",
        [(f"person-{i:03d}", f"Person {i:03d}") for i in range(450)],
    )
    response = await client.get("/v1/actors", params={"format": "ndjson", "q": "person"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    slugs = [msgspec.json.decode(line)["slug"] for line in response.content.splitlines()]
    assert slugs == [f"person-{i:03d}" for i in range(450)]  # by name, each once, past the page limit


async def test_catalogue_csv_page(client: AsyncTestClient, linked: dict[str, int]) -> None:  # type: ignore[type-arg]
    response = await client.get("/v1/locations", headers={"Accept": "text/csv"}, params={"limit": 2})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [r["slug"] for r in rows] == ["crimea", "sevastopol"]
    assert rows[1]["parent"] == "crimea"
    assert rows[1]["ancestors"] == "ukraine;crimea"
    assert rows[1]["latitude"] == "44.6"
    assert 'rel="next"' in response.headers["link"]


async def test_locations_geojson(client: AsyncTestClient, linked: dict[str, int]) -> None:  # type: ignore[type-arg]
    body = (await client.get("/v1/locations", params={"format": "geojson", "within": "ukraine"})).json()
    assert body["type"] == "FeatureCollection"
    points = {feat["properties"]["slug"]: feat["geometry"]["coordinates"] for feat in body["features"]}
    assert points == {"crimea": [34.4, 45.3], "sevastopol": [33.5, 44.6]}


async def test_geojson_is_not_offered_where_there_are_no_points(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/v1/actors", params={"format": "geojson"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["name"] == "format"
    response = await client.get("/v1/sources", headers={"Accept": "application/geo+json"})
    assert response.status_code == 406


async def test_a_client_that_leaves_mid_stream_frees_its_connection(
    conn: asyncpg.Connection, db_dsn: str, tmp_path: Path
) -> None:
    blog = await f.blog(conn)
    paragraph = "word " * 800  # 4 kB a row, 12 MB in all: far more than the socket buffers hold
    await conn.executemany(
        "INSERT INTO entries (blog_id, published_at, headline, body) VALUES ($1, $2, $3, $4)",
        [(blog, f.at(i), f"entry {i}", [paragraph]) for i in range(3000)],
    )
    log = tmp_path / "server.log"
    with live_server(db_dsn, tmp_path / "data", log, SITREP_ANONYMOUS_RATE="100000") as base:
        # the export's snapshot: a transaction held open by another backend of this database (idle
        # in transaction while the client does not read, active while a chunk is fetched)
        exporting = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()"
        )
        async with stalled_export(base) as head:
            assert head.startswith(b"HTTP/1.1 200")
            for _ in range(100):
                if (open_before := await conn.fetchval(exporting)) == 1:
                    break
                await asyncio.sleep(0.1)
            assert open_before == 1
        # hung up
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for _ in range(100):
                if (open_after := await conn.fetchval(exporting)) == 0:
                    break
                await asyncio.sleep(0.1)
            assert open_after == 0
            # and the server still answers, with its pool back to idle
            metrics = (await http.get("/metrics")).text
            assert (await http.get("/v1/entries", params={"limit": 1})).status_code == 200
    assert "sitrep_db_pool_idle" in metrics
    # the hang-up is routine: nothing for the server to complain about (asyncpg logs a connection
    # returned to the pool mid-transaction as an error)
    assert "ERROR" not in log.read_text(), log.read_text()


# ---------------------------------------------------------------- CSV cells a spreadsheet would run


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ('=HYPERLINK("http://evil.example")', '\'=HYPERLINK("http://evil.example")'),
        ("+7 killed", "'+7 killed"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Kyiv = capital", "Kyiv = capital"),  # only the first character matters
        ("'quoted'", "'quoted'"),
        ("", ""),
    ],
)
def test_text_cells_that_start_a_formula_get_a_leading_quote(text: str, cell: str) -> None:
    assert text_cell(text) == cell


async def test_entry_csv_neutralises_formulas_in_text_only(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
) -> None:
    blog = await f.blog(conn, "formula-live")
    entry = await f.entry(
        conn, blog, f.at(1), headline='=HYPERLINK("http://evil.example","click")', body=["+1 for the Kremlin", "=2"]
    )
    response = await client.get("/v1/entries", params={"format": "csv"})
    assert response.status_code == 200
    (row,) = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert row["headline"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["body"] == "'+1 for the Kremlin\n\n=2"  # the cell's start is what a spreadsheet reads
    # what we write ourselves is untouched
    assert row["id"] == str(entry)
    assert row["published_at"] == "2023-09-13T06:01:00Z"
    # the JSON answer keeps the text as it is
    assert (await client.get(f"/v1/entries/{entry}")).json()["headline"].startswith("=HYPERLINK")


async def test_catalogue_csv_neutralises_names_and_aliases_but_not_numbers(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
) -> None:
    chile = await f.location(conn, "chile", -33.5, -70.6, kind="country", name="=cmd|' /C calc'!A0")
    await conn.execute("UPDATE locations SET aliases = $2, description = $3 WHERE id = $1", chile, ["@x", "y"], "-z")
    await f.actor(conn, "someone", "+Someone")
    await f.source(conn, "plain-source", name="Plain Source")

    (place,) = list(csv.DictReader(io.StringIO((await client.get("/v1/locations?format=csv")).text, newline="")))
    assert place["name"] == "'=cmd|' /C calc'!A0"
    assert place["aliases"] == "'@x;y"
    assert place["description"] == "'-z"
    # numbers: negative coordinates and the id are written as numbers, never quoted
    assert (place["id"], place["latitude"], place["longitude"]) == (str(chile), "-33.5", "-70.6")
    assert place["created_at"].endswith("Z")
    assert place["created_at"][0].isdigit()

    (person,) = list(csv.DictReader(io.StringIO((await client.get("/v1/actors?format=csv")).text, newline="")))
    assert person["name"] == "'+Someone"
    assert person["entry_count"] == "0"
    (source,) = list(csv.DictReader(io.StringIO((await client.get("/v1/sources?format=csv")).text, newline="")))
    assert source["name"] == "Plain Source"


# ---------------------------------------------------------------- single objects: JSON only, said so


@pytest.fixture
async def one_of_each(conn: asyncpg.Connection, linked: dict[str, int]) -> list[str]:
    """The address of one object of each kind, by id or slug."""
    return [
        f"/v1/entries/{linked['tricky']}",
        "/v1/blogs/kyiv-live",
        "/v1/actors/dmitry-peskov",
        f"/v1/locations/{linked['sevastopol']}",
        "/v1/sources/tass",
    ]


@pytest.mark.parametrize(
    "how",
    [
        {},
        {"params": {"format": "json"}},
        {"params": {"format": "JSON"}},
        {"headers": {"Accept": "application/json"}},
        {"headers": {"Accept": "*/*"}},
        {"headers": {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}},
        {"headers": {"Accept": "image/png"}, "params": {"format": "json"}},  # format= wins, as on lists
    ],
)
async def test_a_single_object_answers_json(
    client: AsyncTestClient,  # type: ignore[type-arg]
    one_of_each: list[str],
    how: dict[str, dict[str, str]],
) -> None:
    for path in one_of_each[1:]:  # entries/{id}: see test_get_entry_refuses_other_formats
        response = await client.get(path, **how)  # type: ignore[arg-type]
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["id"]


@pytest.mark.parametrize("value", ["csv", "ndjson", "geojson", "xml", ""])
async def test_a_single_object_refuses_other_formats_naming_the_parameter(
    client: AsyncTestClient,  # type: ignore[type-arg]
    one_of_each: list[str],
    value: str,
) -> None:
    for path in one_of_each[1:]:
        response = await client.get(path, params={"format": value})
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert [e["name"] for e in problem["errors"]] == ["format"]
        assert "json" in problem["errors"][0]["reason"]  # what the route does offer


@pytest.mark.parametrize("accept", ["text/csv", "application/x-ndjson", "image/png", "application/json;q=0, */*;q=0"])
async def test_a_single_object_under_an_accept_without_json_is_406(
    client: AsyncTestClient,  # type: ignore[type-arg]
    one_of_each: list[str],
    accept: str,
) -> None:
    for path in one_of_each[1:]:
        response = await client.get(path, headers={"Accept": accept})
        assert response.status_code == 406, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "application/json" in response.json()["detail"]


async def test_a_bad_format_is_refused_before_the_lookup(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    response = await client.get("/v1/actors/nobody-at-all", params={"format": "csv"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["name"] == "format"


async def test_get_entry_refuses_other_formats(
    client: AsyncTestClient,  # type: ignore[type-arg]
    one_of_each: list[str],
) -> None:
    entry = one_of_each[0]
    assert (await client.get(entry, params={"format": "json"})).status_code == 200
    response = await client.get(entry, params={"format": "csv"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["name"] == "format"
    assert (await client.get(entry, headers={"Accept": "text/csv"})).status_code == 406


async def test_timeline_and_changes_refuse_other_formats(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    for path in ("/v1/timeline", "/v1/changes"):
        assert (await client.get(path, params={"format": "json"})).status_code == 200
        response = await client.get(path, params={"format": "ndjson"})
        assert response.status_code == 400, path
        assert response.json()["errors"][0]["name"] == "format"
        assert (await client.get(path, headers={"Accept": "text/csv"})).status_code == 406


async def test_openapi_documents_format_on_single_objects(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    doc = (await client.get("/openapi.json")).json()
    for path in (
        "/v1/entries/{entry_id}",
        "/v1/blogs/{ref}",
        "/v1/actors/{ref}",
        "/v1/locations/{ref}",
        "/v1/timeline",
        "/v1/changes",
    ):
        op = doc["paths"][path]["get"]
        (param,) = [p for p in op["parameters"] if p["name"] == "format"]
        assert param["schema"]["enum"] == ["json"]
        assert "406" in op["responses"]


async def test_key_routes_refuse_unknown_parameters_and_other_formats(
    client: AsyncTestClient,  # type: ignore[type-arg]
    conn: asyncpg.Connection,
) -> None:
    row, token = await keydb.create_key(conn, "api-test-secret", name="formats", scopes=("read", "admin"), rate=100_000)
    auth = {"Authorization": f"Bearer {token}"}
    for path in ("/v1/usage", f"/v1/keys/{row.id}"):
        assert (await client.get(path, headers=auth, params={"format": "json"})).status_code == 200, path
        response = await client.get(path, headers=auth, params={"format": "csv"})
        assert response.status_code == 400, path
        assert response.json()["errors"][0]["name"] == "format"
        response = await client.get(path, headers=auth, params={"colour": "blue"})
        assert response.status_code == 400, path
        assert response.json()["errors"][0]["name"] == "colour"
        assert (await client.get(path, headers={**auth, "Accept": "text/csv"})).status_code == 406
