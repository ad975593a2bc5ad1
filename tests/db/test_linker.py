"""The entity linker: the seed page against a human reading of it, and the reading rules case by case."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from db.ingest.gazetteer import load_gazetteer, read
from db.ingest.linker import Linker, normalize
from db.ingest.page import parse_page
from db.ingest.store import import_page
from db.ingest.types import Links
from db.ingest.world import world
from db.sample import PAGE as SAMPLE

ANNOTATIONS = Path(__file__).resolve().parent.parent / "data" / "seed_annotations.json"

Item = tuple[Any, ...]


def _items(key: str, links: dict[str, Any], *, roles: bool) -> set[Item]:
    """(entry, kind, slug[, role]) for every link of one entry."""
    out: set[Item] = set()
    for slug, role in links["actors"].items():
        out.add((key, "actor", slug, role) if roles else (key, "actor", slug))
    out |= {(key, "location", slug) for slug in links["locations"]}
    out |= {(key, "source", slug) for slug in links["sources"]}
    return out


def _as_dict(links: Links) -> dict[str, Any]:
    return {
        "actors": {a.slug: a.role for a in links.actors},
        "locations": list(links.locations),
        "sources": list(links.sources),
    }


def _score(expected: set[Item], found: set[Item]) -> tuple[float, float]:
    hits = len(expected & found)
    return hits / len(found), hits / len(expected)


def _keys(published: list[str]) -> list[str]:
    """HH:MM, with /2, /3 ... for further entries in the same minute (as the annotations key them)."""
    seen: dict[str, int] = {}
    keys = []
    for minute in published:
        seen[minute] = seen.get(minute, 0) + 1
        keys.append(minute if seen[minute] == 1 else f"{minute}/{seen[minute]}")
    return keys


async def test_seed_page_precision_and_recall(conn: asyncpg.Connection, seed_text: str) -> None:
    await load_gazetteer(conn)
    linker = await Linker.load(conn)
    page = parse_page(seed_text)
    annotations = json.loads(ANNOTATIONS.read_text(encoding="utf-8"))["entries"]
    keys = _keys([e.published_at.strftime("%H:%M") for e in page.entries])
    assert sorted(keys) == sorted(annotations), "every seed entry is annotated, and nothing else"

    world()  # the world index is read once per process; link() is timed without it
    timings: list[float] = []
    found: dict[str, dict[str, Any]] = {}
    for key, entry in zip(keys, page.entries, strict=True):
        start = time.perf_counter()
        links = linker.link(entry.headline, entry.body)
        timings.append(time.perf_counter() - start)
        found[key] = _as_dict(links)

    report = []
    for roles in (False, True):
        expected = set().union(*(_items(k, v, roles=roles) for k, v in annotations.items()))
        got = set().union(*(_items(k, v, roles=roles) for k, v in found.items()))
        precision, recall = _score(expected, got)
        label = "with actor roles" if roles else "entities"
        report.append((label, precision, recall))
        print(f"seed linking, {label}: precision {precision:.3f}, recall {recall:.3f} ({len(expected)} annotated)")
        for item in sorted(got - expected):
            print("  not in the reading:", item)
        for item in sorted(expected - got):
            print("  missed:", item)
    mean_ms = statistics.fmean(timings) * 1000
    print(f"link() per entry: mean {mean_ms:.3f} ms, max {max(timings) * 1000:.3f} ms over {len(timings)} entries")

    for label, precision, recall in report:
        assert precision >= 0.9, f"{label}: precision {precision:.3f}"
        assert recall >= 0.9, f"{label}: recall {recall:.3f}"
    assert mean_ms < 5, "link() is meant to be a fraction of a millisecond per entry"


@pytest.fixture(scope="module")
def linker() -> Linker:
    """The shipped gazetteer compiled without a database (the database path is tested above and below)."""
    return Linker.from_gazetteer(read())


def _link(linker: Linker, text: str, headline: str = "Update") -> dict[str, Any]:
    return _as_dict(linker.link(headline, [text]))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The leaders met at the Vostochny \u0421osmodrome on Wednesday.", "vostochny-cosmodrome"),  # Cyrillic Es
        ("Ships left Sev\u0430stopol overnight.", "sevastopol"),  # Cyrillic a
        ("Drones flew over Russia\u2019s Bryansk region.", "bryansk-oblast"),  # curly apostrophe
        ("Drones flew over Russia's Bryansk region.", "russia"),  # possessive
        ("A strike hit the port of \uff33evastopol.", "sevastopol"),  # full-width S, NFKC
        ("Fighting near Zaporizhzhia nuclear power plant went on.", "zaporizhzhia-nuclear-power-plant"),
    ],
)
def test_normalised_text_still_links_places(linker: Linker, text: str, expected: str) -> None:
    assert expected in _link(linker, text)["locations"]


def test_normalize_maps_lookalikes_only_inside_latin_words() -> None:
    assert normalize("Vostochny \u0421osmodrome") == "Vostochny Cosmodrome"
    assert normalize("\u041f\u0435\u0441\u043a\u043e\u0432") == "\u041f\u0435\u0441\u043a\u043e\u0432"  # stays Cyrillic
    assert normalize("\u201cquoted\u201d Ukraine\u2019s") == '"quoted" Ukraine\'s'


@pytest.mark.parametrize(
    ("text", "actors", "absent"),
    [
        ("The Black Sea Fleet lost a ship.", {"black-sea-fleet"}, {"black-sea"}),
        ("Kim Yo Jong arrived at the summit.", {"kim-yo-jong"}, {"kim-jong-un"}),
        ("Kim Jong Un arrived at the summit.", {"kim-jong-un"}, {"kim-yo-jong"}),
        ("Kim Yo Jong arrived. Later, Kim visited a factory.", {"kim-yo-jong"}, {"kim-jong-un"}),
        ("Kim met Putin at the cosmodrome.", {"kim-jong-un", "vladimir-putin"}, {"kim-yo-jong"}),
        ("Kim Jong Un came with his sister Kim Yo Jong. Kim toured a plant.", {"kim-jong-un", "kim-yo-jong"}, set()),
        (
            "The Ukrainian military intelligence agency said so.",
            {"ukraine-military-intelligence"},
            {"ukrainian-armed-forces"},
        ),
    ],
)
def test_longest_match_and_disambiguation(linker: Linker, text: str, actors: set[str], absent: set[str]) -> None:
    found = _link(linker, text)
    assert actors <= set(found["actors"])
    assert not absent & set(found["actors"]), found
    assert not absent & set(found["locations"]), found


def test_an_ambiguous_ministry_is_the_one_of_the_country_the_entry_is_about(linker: Linker) -> None:
    russian = linker.link("Russia says it sank three boats", ["The Defence Ministry said in a statement it acted."])
    ukrainian = linker.link("Kyiv says drones hit Odesa", ["The Defence Ministry said the attack lasted hours."])
    assert [a.slug for a in russian.actors if "ministry" in a.slug] == ["russian-defence-ministry"]
    assert [a.slug for a in ukrainian.actors if "ministry" in a.slug] == ["ukrainian-defence-ministry"]


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("Regional governor Alexander Bogomaz said on Telegram there were no casualties.", "telegram"),
        ("The ministry said in a statement on Telegram that it downed drones.", "telegram"),
        ("Russia's Defence Ministry has said it destroyed boats, the RIA news agency reported.", "ria-novosti"),
        ("Talks were substantive, according to Interfax.", "interfax"),
        ("Talks were substantive, according to Russia's Interfax news agency.", "interfax"),
        ("The minister said in a post on the social media platform X that the ban starts today.", "x"),
        ("The minister said on social media platform X, formerly known as Twitter, that it was over.", "x"),
        ("A senior official told Reuters that the deal was close.", "reuters"),
        ("The Russian state news agency TASS reports that talks ended.", "tass"),
        ("The spokesman was cited by state-run TASS news agency as saying so.", "tass"),
        ("Kubrakov wrote on Facebook that exports fell.", "facebook"),
        ("She was quoted in a story published by Meduza as saying it hurt.", "meduza"),
        ("The governor said it on the Telegram messaging app.", "telegram"),
        ("The ministry tweeted a map of the strikes.", "x"),
    ],
)
def test_attribution_links_the_source(linker: Linker, text: str, source: str) -> None:
    assert source in _link(linker, text)["sources"]


def test_a_headline_ending_in_a_source_attributes_it(linker: Linker) -> None:
    assert linker.link("Putin treats Kim to far eastern delicacies: TASS", []).sources == ("tass",)


@pytest.mark.parametrize(
    "text",
    [
        "Telegram is widely used in Ukraine and Russia.",
        "X marks the spot on the map of the front.",
        "Reuters photographers were near the front line.",
        "The Interfax building in Moscow was evacuated.",
        "Russia imposed sanctions on Russia's critics and on X.",
    ],
)
def test_a_source_merely_named_is_not_a_source(linker: Linker, text: str) -> None:
    assert _link(linker, text)["sources"] == []


@pytest.mark.parametrize(
    ("text", "slug", "role"),
    [
        ("Peskov said the talks went well.", "dmitry-peskov", "speaker"),
        ("The talks went well, said Kremlin spokesman Dmitry Peskov.", "dmitry-peskov", "speaker"),
        (
            "\u201cWe can confirm it,\u201d Andriy Yusov, the official, said in televised comments.",
            "andriy-yusov",
            "speaker",
        ),
        ("The talks were substantive, according to Peskov.", "dmitry-peskov", "speaker"),
        ("\u201cIt is troubling,\u201d Miller said.", "matthew-miller", "speaker"),
        (
            "Prime Minister Rishi Sunak's spokesperson told reporters the visit was a sign of isolation.",
            "rishi-sunak",
            "speaker",
        ),
        ("Kremlin spokesperson Dmitry Peskov was cited by TASS as saying ties would grow.", "dmitry-peskov", "speaker"),
        ("Sergey Lavrov, commenting on media speculation, says the West broke agreements.", "sergey-lavrov", "speaker"),
        ("Kim, speaking via a translator, thanked Putin for the invitation.", "kim-jong-un", "speaker"),
        (
            "The Committee to Protect Journalists saying journalists are not safe.",
            "committee-to-protect-journalists",
            "speaker",
        ),
        ("Bogomaz said two drones were downed. There was no damage, he added.", "alexander-bogomaz", "speaker"),
        ("NATO Secretary General Jens Stoltenberg told a news conference the alliance would help.", "nato", "speaker"),
        ("Germany's Chancellor Olaf Scholz said Berlin would send another system.", "germany", "speaker"),
        ("Maria Zakharova later repeated the position on her Telegram channel.", "maria-zakharova", "speaker"),
        ("Putin met Kim at the cosmodrome.", "kim-jong-un", "mentioned"),
        ("Putin met Kim at the cosmodrome.", "vladimir-putin", "mentioned"),
        ("Putin says Kim will visit Vladivostok.", "kim-jong-un", "mentioned"),
        ("Kim Jong Un has told Putin he backs Russia.", "vladimir-putin", "mentioned"),
        ("Analysts said Putin wants more shells, saying he needs them.", "vladimir-putin", "mentioned"),
        (
            "A meeting between Putin and Kim, Kremlin spokesman Dmitry Peskov said, lasted hours.",
            "kim-jong-un",
            "mentioned",
        ),
    ],
)
def test_speaker_or_mentioned(linker: Linker, text: str, slug: str, role: str) -> None:
    actors = _link(linker, text)["actors"]
    assert actors.get(slug) == role, actors


def test_a_headline_ending_in_a_name_quotes_it(linker: Linker) -> None:
    links = linker.link("\u2018West broke agreements\u2019: Lavrov", [])
    assert [(a.slug, a.role) for a in links.actors] == [("sergey-lavrov", "speaker")]
    links = linker.link("\u2018I am sure Russia will win\u2019: Kim tells Putin", [])
    assert {a.slug: a.role for a in links.actors} == {"kim-jong-un": "speaker", "vladimir-putin": "mentioned"}


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        (
            "\u041f\u0435\u0441\u043a\u043e\u0432 \u0437\u0430\u044f\u0432\u0438\u043b \u0436\u0443\u0440\u043d\u0430\u043b\u0438\u0441\u0442\u0430\u043c.",
            "dmitry-peskov",
        ),  # Песков
        ("Dimitry Peskov told reporters the matter was closed.", "dmitry-peskov"),
        (
            "\u0417\u0435\u043b\u0435\u043d\u0441\u044c\u043a\u0438\u0439 visited the front.",
            "volodymyr-zelenskyy",
        ),  # Зеленський
        ("Zelenskiy visited the front.", "volodymyr-zelenskyy"),
    ],
)
def test_aliases_in_any_script_and_spelling(linker: Linker, text: str, slug: str) -> None:
    assert slug in _link(linker, text)["actors"]


@pytest.mark.parametrize(
    ("text", "places", "not_places", "speakers"),
    [
        ("Moscow has said it destroyed three drones.", set(), {"moscow"}, {"russia"}),
        ("Reporting from Moscow, a journalist described the dinner.", {"moscow"}, set(), set()),
        ("Shoigu visited Pyongyang in July.", {"pyongyang"}, set(), set()),
        ("China could restrain a deal between Moscow and Pyongyang.", {"china"}, {"moscow", "pyongyang"}, set()),
        ("Kyiv says 105 port facilities were damaged.", set(), {"kyiv"}, {"ukraine"}),
        ("Russia's economy grew in the second quarter.", {"russia"}, set(), set()),
        ("Russia says it destroyed three boats.", {"russia"}, set(), {"russia"}),
        ("Two Ukrainian drones were downed over the Bryansk region.", {"bryansk-oblast"}, {"ukraine"}, set()),
        ("Russia attacked Ukrainian ports on the Danube River.", {"ukraine", "danube", "russia"}, set(), set()),
        ("Fragments were found on Romanian territory.", {"romania"}, set(), set()),
        ("Ukrainian officials said the port was hit.", set(), set(), {"ukraine"}),
        ("Latvia and Lithuania have also announced the ban.", {"latvia", "lithuania"}, set(), {"latvia", "lithuania"}),
        ("The Kremlin and North Korea have not confirmed any arms deal.", {"north-korea"}, set(), set()),
        ("Media in Russia have been told about a dinner.", {"russia"}, set(), set()),
    ],
)
def test_places_capitals_demonyms_and_states(
    linker: Linker, text: str, places: set[str], not_places: set[str], speakers: set[str]
) -> None:
    found = _link(linker, text)
    assert places <= set(found["locations"]), found
    assert not not_places & set(found["locations"]), found
    states = {
        slug
        for slug, role in found["actors"].items()
        if slug in {"russia", "ukraine", "latvia", "lithuania", "north-korea"}
    }
    assert states == speakers, found
    assert all(found["actors"][s] == "speaker" for s in states)


def test_case_matters_for_short_capitalised_aliases(linker: Linker) -> None:
    assert "united-states" in _link(linker, "The US has said it will respond.")["locations"]
    assert "united-states" not in _link(linker, "Let us say the talks went well.")["locations"]
    assert "united-nations" not in _link(linker, "Un jour the talks went well.")["actors"]


async def test_entities_added_to_the_database_link_too(conn: asyncpg.Connection) -> None:
    await load_gazetteer(conn)
    await conn.execute(
        "INSERT INTO actors (slug, name, kind, aliases, country) VALUES ('oleh-syniehubov', 'Oleh Syniehubov', 'person', '{Syniehubov,\"\u0421\u0438\u043d\u0454\u0433\u0443\u0431\u043e\u0432\"}', 'UA')"
    )
    await conn.execute(
        "INSERT INTO locations (slug, name, kind, parent_id, latitude, longitude, aliases, country) "
        "SELECT 'chuhuiv', 'Chuhuiv', 'city', id, 49.84, 36.69, '{Chuguev}', 'UA' FROM locations WHERE slug = 'kharkiv-oblast'"
    )
    await conn.execute(
        "INSERT INTO sources (slug, name, kind, aliases) VALUES ('hromadske', 'Hromadske', 'broadcaster', '{}')"
    )
    linker = await Linker.load(conn)
    links = linker.link("Shelling in Chuguev", ["Oleh Syniehubov said two people were hurt, according to Hromadske."])
    assert ("oleh-syniehubov", "speaker") in [(a.slug, a.role) for a in links.actors]
    assert "chuhuiv" in links.locations
    assert links.sources == ("hromadske",)


def test_link_is_fast_on_a_long_entry(linker: Linker) -> None:
    page = parse_page(SAMPLE.read_text(encoding="utf-8"))
    body = [p for e in page.entries for p in e.body]  # the whole day as one entry
    start = time.perf_counter()
    links = linker.link("All of it", body)
    elapsed = time.perf_counter() - start
    print(f"link() over {sum(map(len, body))} characters: {elapsed * 1000:.1f} ms")
    assert {"vladimir-putin", "kim-jong-un", "kim-yo-jong"} <= {a.slug for a in links.actors}
    assert elapsed < 0.5


async def test_a_linker_is_reused_until_the_catalogue_changes(conn: asyncpg.Connection) -> None:
    await load_gazetteer(conn)
    first = await Linker.load(conn)
    start = time.perf_counter()
    assert await Linker.load(conn) is first
    print(f"Linker.load() when nothing changed: {(time.perf_counter() - start) * 1000:.1f} ms")
    await conn.execute("UPDATE actors SET aliases = aliases || '{Hromadske anchor}'::text[] WHERE slug = 'joe-biden'")
    second = await Linker.load(conn)
    assert second is not first
    assert [a.slug for a in second.link("Hromadske anchor spoke", []).actors] == ["joe-biden"]
    assert first.link("Hromadske anchor spoke", []).actors == ()


def test_a_huge_sentence_stays_linear(linker: Linker) -> None:
    text = "Putin and Kim and Peskov according to TASS on Telegram in Moscow " * 3000  # 195k characters, no full stop
    start = time.perf_counter()
    links = linker.link("Stress", [text])
    assert time.perf_counter() - start < 3
    assert {a.slug for a in links.actors} >= {"vladimir-putin", "kim-jong-un", "dmitry-peskov"}
    assert "moscow" in links.locations


def test_entries_written_for_the_project(linker: Linker) -> None:
    """A second, smaller corpus in other words than the seed's, against the same policy."""
    cases = json.loads((ANNOTATIONS.parent / "linker_cases.json").read_text(encoding="utf-8"))["entries"]
    expected: set[Item] = set()
    got: set[Item] = set()
    for i, case in enumerate(cases):
        key = str(i)
        expected |= _items(key, case, roles=True)
        got |= _items(key, _as_dict(linker.link(case["headline"], case["paragraphs"])), roles=True)
    precision, recall = _score(expected, got)
    print(
        f"written cases, with actor roles: precision {precision:.3f}, recall {recall:.3f} ({len(expected)} annotated)"
    )
    assert precision >= 0.9
    assert recall >= 0.9


async def test_a_database_with_no_catalogue_links_only_world_places(conn: asyncpg.Connection, seed_text: str) -> None:
    """No actors, locations or sources at all: no source links, no actor but the world's states
    heard speaking; places come from the world gazetteer and become location rows (with their
    country as parent) on import, states and discovered people actors marked discovered."""
    assert await conn.fetchval("SELECT (SELECT count(*) FROM actors) + (SELECT count(*) FROM locations)") == 0
    linker = await Linker.load(conn)
    page = parse_page(seed_text)
    found = [linker.link(e.headline, e.body) for e in page.entries]
    assert all(links.sources == () for links in found)
    assert {a.kind for links in found for a in links.new_actors} == {"state"}
    assert {a.slug for links in found for a in links.actors} == {a.slug for links in found for a in links.new_actors}
    assert linker.link("", []) == Links()
    result = await import_page(conn, page, linker)
    assert result.created == len(page.entries) == await conn.fetchval("SELECT count(*) FROM entries")
    sevastopol = await conn.fetchrow(
        "SELECT l.kind, l.latitude, p.slug AS parent, g.geonameid FROM locations l "
        "JOIN locations p ON p.id = l.parent_id JOIN location_geonames g ON g.location_id = l.id "
        "WHERE l.name = 'Sevastopol'"
    )
    assert sevastopol is not None
    assert (sevastopol["kind"], sevastopol["parent"]) == ("city", "ukraine")
    assert 44 < sevastopol["latitude"] < 45
    linked = await conn.fetchval(
        "SELECT count(*) FROM entry_locations el JOIN locations l ON l.id = el.location_id WHERE l.name = 'Sevastopol'"
    )
    assert linked >= 4  # entries that name Sevastopol in their own text
    russia = await conn.fetchrow(
        "SELECT a.kind, a.country, d.status, d.discovered_by FROM actors a "
        "JOIN actor_discoveries d ON d.actor_id = a.id WHERE a.slug = 'russia'"
    )
    assert russia is not None
    assert (russia["kind"], russia["country"], russia["status"]) == ("state", "RU", "discovered")
    assert russia["discovered_by"].startswith("Russia")
    undiscovered = await conn.fetchval(
        "SELECT count(*) FROM actors a WHERE NOT EXISTS (SELECT 1 FROM actor_discoveries d WHERE d.actor_id = a.id)"
    )
    assert undiscovered == 0


def test_our_page_links_several_actors_places_and_sources_per_entry(linker: Linker, page_text: str) -> None:
    found = {e.external_key: linker.link(e.headline, e.body) for e in parse_page(page_text).entries}
    shells = found["2024-03-02T15:40Z/1"]
    assert {(a.slug, a.role) for a in shells.actors} >= {
        ("olaf-scholz", "speaker"),
        ("emmanuel-macron", "speaker"),
        ("jens-stoltenberg", "speaker"),
        ("dmytro-kuleba", "mentioned"),
    }
    assert {"berlin", "warsaw", "germany", "france"} <= set(shells.locations)
    assert "afp" in shells.sources
    drones = found["2024-03-03T00:40Z/1"]
    assert ("russian-defence-ministry", "speaker") in {(a.slug, a.role) for a in drones.actors}
    assert {"belgorod-oblast", "kursk-oblast"} <= set(drones.locations)
    assert {"telegram", "ria-novosti"} <= set(drones.sources)
    # a headline alone still links; a graphic with no words links nothing
    assert found["2024-03-03T01:20Z/1"].locations == ("kyiv-oblast",)
    assert found["2024-03-02T19:45Z/1"] == Links()
