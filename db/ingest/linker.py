"""The entity linker: which actors (and in what role), locations and sources an entry names.

`linker = await Linker.load(conn)` compiles one matcher from every actor, location and
source in the database (name and aliases, so entities added through the API link too) and
the rule data of the gazetteer file; `linker.link(headline, paragraphs)` then costs one
regex pass over the normalised text plus a few anchored checks per match.

Reading rules (what a researcher filtering by actor, location or source expects):
- Text is normalised first: NFKC, curly quotes and apostrophes made straight, zero-width
  characters dropped, and Cyrillic or Greek look-alike letters inside an otherwise Latin
  word mapped to Latin ("Vostochny Cosmodrome" typed with a Cyrillic Es). Matching ignores case,
  except for short all-capital aliases ("US", "UN", "AP", "X"), which must match exactly.
- Names match whole words, the longest first ("Black Sea Fleet" before "Black Sea", "Kim Yo
  Jong" before "Kim"); a possessive ("Russia's") still matches.
- An alias several actors share ("Kim", "Defence Ministry") means the one the entry names
  unambiguously; failing that the gazetteer's declared default; failing that the one of the
  country the entry is first about; failing that nothing.
- An actor is a `speaker` where the entry reports it saying, claiming, telling or writing:
  "X said", "X, the official, said", "X's spokesperson told", "said X.", "according to X",
  "X was cited by TASS as saying", a headline ending ": X", and "he said" after a sentence whose
  first person is X. Otherwise `mentioned`.
- A `state` actor is linked only when the state itself speaks ("Russia says", "Kyiv says",
  "Ukrainian officials said", "Romania's president said"); a country's name otherwise links
  the country as a location only.
- Every place name links its location, except a capital standing for its government
  ("Moscow has said", "talks between Moscow and Pyongyang"): a capital is a place only after
  a locative word ("in Moscow", "from Seoul", "visited Pyongyang"). Demonyms link no
  location ("Ukrainian drones"), except before a place noun ("Ukrainian ports", "Romanian
  territory").
- A source is linked only from an attribution: "said on Telegram", "the RIA news agency
  reported", "according to Interfax", "on the social media platform X", "told Reuters",
  "published by Meduza", a headline ending ": TASS", or one of the source's attribution
  phrases in the gazetteer ("Telegram channel").
"""

from __future__ import annotations

import bisect
import itertools
import re
import sys
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import asyncpg
import msgspec

from db.ingest.discover import discoverer
from db.ingest.gazetteer import DEFAULT_PATH, Gazetteer, Rules, read
from db.ingest.page import ParsedPage
from db.ingest.types import ActorSpec, LinkedActor, Links, Role
from db.ingest.world import MAX_WORDS, PlaceSpec, World, cased, key_of, tokens, world
from db.ingest.world import words as tokens_of
from db.sql import query

Kind = Literal["actor", "location", "source"]
LinkFn = Callable[[str, Sequence[str]], Links]

# --- normalisation -------------------------------------------------------------------------

_PUNCT = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
        "\ufeff": None,
        "\u00ad": None,
    }
)
# Cyrillic and Greek letters drawn like Latin ones; applied only inside words that also hold
# Latin letters, so a Cyrillic alias ("Песков") stays Cyrillic.
_LOOKALIKES = str.maketrans(
    "АВСЕНІЈКМОРЅТХУасеіјорѕхуԁԛԝΑΒΕΖΗΙΚΜΝΟΡΤΥΧοκνρτυχ",
    "ABCEHIJKMOPSTXYaceijopsxydqwABEZHIKMNOPTYXokvptux",
)
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z]")
_OTHER = re.compile(r"[\u0370-\u03ff\u0400-\u052f]")


def _unmix(match: re.Match[str]) -> str:
    word = match.group()
    if _LATIN.search(word) and _OTHER.search(word):
        return word.translate(_LOOKALIKES)
    return word


def normalize(text: str) -> str:
    """NFKC, straight quotes and hyphens, no invisible characters, no look-alike letters."""
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT)
    return _WORD.sub(_unmix, text)


def fold(text: str) -> str:
    """Lower case with every character's position kept (so matches on it index `text` too)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _case_sensitive(alias: str) -> bool:
    """Short capitalised aliases ("US", "UN", "AP", "X", "MoD") must match their case."""
    letters = [c for c in alias if c.isalpha()]
    return len(letters) == 1 or (len(letters) <= 4 and sum(c.isupper() for c in letters) >= 2)


_Trie = dict[str, "_Trie"]


def _trie_pattern(words: Iterable[str]) -> str:
    """One regex alternation shaped as a trie: fast, and the longest alternative wins."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: _Trie) -> str:
        end = "" in node
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        if len(branches) == 1 and not end:
            return branches[0]
        body = "(?:" + "|".join(branches) + ")"
        return body + "?" if end else body

    return build(trie)


def _words_pattern(words: Iterable[str]) -> str:
    return "|".join(re.escape(fold(normalize(w))) for w in sorted(set(words), key=len, reverse=True))


# --- context patterns ------------------------------------------------------------------------

_SPEECH_WORDS = (
    r"say|says|said|saying|tell|tells|told|telling|claim(?:s|ed|ing)?|wr[io]tes?|wrote|writing|"
    r"announc(?:e|es|ed|ing)|confirm(?:s|ed|ing)?|den(?:y|ies|ied|ying)|warn(?:s|ed|ing)?|urg(?:e|es|ed|ing)|"
    r"add(?:s|ed|ing)?|stat(?:es|ed|ing)|report(?:s|ed|ing)?|admit(?:s|ted|ting)?|promis(?:e|es|ed|ing)|"
    r"call(?:s|ed|ing)?|spok(?:e|en)|speaks?|thank(?:s|ed|ing)?|ask(?:s|ed|ing)?|prais(?:e|es|ed|ing)|hail(?:s|ed|ing)?|"
    r"congratulat(?:e|es|ed|ing)|accus(?:e|es|ed|ing)|blam(?:e|es|ed|ing)|repeat(?:s|ed|ing)?|insist(?:s|ed|ing)?|stress(?:es|ed|ing)?|not(?:es|ed)|"
    r"comment(?:s|ed|ing)?|repl(?:y|ies|ied|ying)|post(?:s|ed|ing)|tweet(?:s|ed|ing)|alleg(?:e|es|ed|ing)|"
    r"vow(?:s|ed|ing)?|pledg(?:e|es|ed|ing)|condemn(?:s|ed|ing)?|explain(?:s|ed|ing)?|declar(?:e|es|ed|ing)|"
    r"reject(?:s|ed|ing)?|dismiss(?:es|ed|ing)?|acknowledg(?:e|es|ed|ing)|criticis(?:e|es|ed|ing)|criticiz(?:e|es|ed|ing)|"
    r"quoted|cited|speaking|made\s+(?:the|his|her|its|their)\s+comments?"
)
_SPEECH = "(?:" + _SPEECH_WORDS + ")"
_AUX = (
    r"(?:(?:has|have|had|was|were|is|are|will|would|also|later|then|further|again|earlier|previously|"
    r"reportedly|publicly|once\s+again|has\s+been|have\s+been|had\s+been)\s+)*"
)
# passive "X was told", "X has been asked": X is the one spoken to
_PASSIVE = re.compile(r"(?:was|were|is|are|been|be)\s+(?:told|asked|urged|warned|called|thanked|accused)\b")
_TITLE = (
    r"(?i:spokes(?:person|man|woman)|press\s+(?:secretary|service|office)|official|officials|agency\s+officials?|"
    r"president|prime\s+minister|chancellor|minister|secretary[\s-]+general|secretary|chief|head|leader|governor|"
    r"ambassador|commander|translator|office)"
)
_NAME_WORD = r"(?:[A-Z][\w'.-]*|von|van|der|de|bin|al)"
_COORD = r"(?:\s*,?\s+and\s+(?:the\s+)?[A-Z][\w'.-]*(?:\s+[A-Z][\w'.-]*){0,3})?"
# after an actor's name: its spokesperson, an appositive, then a verb of speech
_ACRONYM = r"(?:\s*\([A-Z](?=[A-Za-z]*[A-Z])[A-Za-z]{1,7}\))?"  # "the Arakan Army (AA) said", "(FAMa)"
_SPEAKER_AFTER = re.compile(
    r"(?:'s?)?\)?"
    + _ACRONYM
    + _COORD
    + r"(?:\s+" + _TITLE + r"\b(?:\s+" + _NAME_WORD + r"){0,4})?"
    + r"(?P<apposition>\s*,\s*[^,.;:\"]{1,120},)?"
    + r"(?P<comma>\s*,)?\s*" + _AUX + r"(?P<verb>" + _SPEECH + r")\b"
)  # fmt: skip
# before an actor's name: "said X.", "according to X", "citing the X spokesman"
_SPEAKER_BEFORE = re.compile(
    r"(?:\baccording\s+to|\bciting|\bquoting|\bsaid|\bsays|\badded|\bwrote)\s+"
    r"(?:the\s+)?(?:(?:[A-Z][\w'.-]*|spokes(?:person|man|woman)|minister|official|president|deputy|prime|"
    r"foreign|defence|defense|state|regional|governor|leader|chief|head|of)\s+){0,5}$"
)
_BEFORE_END = re.compile(r"(?:\s+" + _TITLE + r")?\s*(?:[.,;:!?\"]|$)")
# a state speaks only as the subject: directly before its verb, its head or government between
_STATE_AFTER = re.compile(
    r"(?:'s\s+(?:(?:new|interim|transitional|military|former)\s+)?"
    r"(?i:president|prime\s+minister|chancellor|(?:foreign|home|interior|defen[cs]e)\s+minister|"
    r"foreign\s+ministry|government|leader|authorities)\b"
    r"(?:\s+" + _NAME_WORD + r"){0,4})?"
    + _COORD
    + r"(?P<comma>\s*,)?\s*" + _AUX + _SPEECH + r"\b"
)  # fmt: skip
_GOVERNMENT_SAID = re.compile(
    r"\b(?:[Tt]he\s+)?[Gg]overnment(?:'s)?\s+(?:spokes(?:person|man|woman)\s+(?:[A-Z][\w'-]*\s+){1,4})?"
    + _AUX
    + _SPEECH
    + r"\b"
)
_MODIFIER = re.compile(r"\s+(?:[a-z]+\s+){1,4}\([A-Z](?=[A-Za-z]*[A-Z])[A-Za-z]{1,7}\)")
_PREPOSITION_BEFORE = re.compile(
    r"\b(?:in|from|to|with|on|of|against|for|between|at|over|into|by|about|across|near|toward|towards)\s+(?:the\s+)?$",
    re.IGNORECASE,
)
_PRONOUN_SAID = re.compile(
    r"\b(?:he|she)\s+(?:also\s+|later\s+|then\s+)?(?:has\s+|had\s+)?"
    r"(?:said|says|added|adds|told|tells|wrote|writes|explained|stated|claimed)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")

# sources: the words around a source's name that make it where the report came from
_SOURCE_BEFORE = re.compile(
    r"(?:\baccording\s+to|\bciting|\bcited\s+by|\bquoted\s+by|\breported\s+by|\bpublished\s+by|\bbroadcast\s+by|"
    r"\breport\s+by)\s+(?:[\w'.-]+\s+){0,5}$"
    r"|(?:\btold|\btells|\btelling|\binterview\s+with|\bspeaking\s+to|\bsaid\s+to)\s+(?:the\s+)?"
    r"(?:(?:[\w-]+\s+){0,3}(?:news\s+)?(?:agency|broadcaster|newspaper|channel)\s+)?$"  # "told the French news agency AFP"
)
_SOURCE_ON = re.compile(
    r"\b(?:on|via)\s+(?:the\s+|its\s+|his\s+|her\s+|their\s+|a\s+|an\s+|official\s+)*"
    r"(?:(?:social\s+media|social\s+network(?:ing)?|messaging|video(?:-sharing)?)\s+(?:platform|app|site|service|network)\s+)?$"
)
_SOURCE_ON_CONTEXT = re.compile(
    r"\b(?:post|posts|posted|statement|message|video|channel|account|page|wrote|writes|tweeted|"
    + _SPEECH_WORDS
    + r")\b"
)
_SOURCE_AFTER = re.compile(
    r"(?:(?:\s+state)?(?:\s+news)?\s+agency\b"
    r"|(?:\s+news\s+agency|\s+agency)?\s+(?:has\s+|had\s+)?"
    r"(?:reported|reports|reporting|report|said|says|quoted|cited|citing|published|posted|wrote|writes)\b"
    r"|'s\s+(?:[\w.-]+\s+){1,3}(?:said|says|reported|reports|told|tells|explained|added)"
    r"|\s+(?:post|posts|channel|account|message|statement)\b)"
)


_CACHE: OrderedDict[str, Linker] = OrderedDict()  # compiled linkers are immutable: safe to share
_CACHE_SIZE = 8
_WINDOW = 240  # characters of context either side of a name


@dataclass(frozen=True)
class _Target:
    kind: Kind
    slug: str
    exact: str | None  # the alias as written, when it must match case-sensitively


@dataclass
class _Actor:
    slug: str
    kind: str
    country: str | None


@dataclass
class _Place:
    slug: str
    kind: str
    country: str | None


@dataclass
class _Match:
    segment: int
    sentence: int
    start: int
    end: int
    key: str
    actors: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


class Linker:
    """A compiled matcher over a fixed set of entities; build one per load, reuse for many entries."""

    def __init__(
        self,
        actors: Sequence[tuple[str, str, str, Sequence[str], str | None]],
        locations: Sequence[tuple[str, str, str, Sequence[str], str | None]],
        sources: Sequence[tuple[str, str, str, Sequence[str]]],
        rules: Rules,
        attribution: dict[str, Sequence[str]] | None = None,
        *,
        use_world: bool = True,
    ) -> None:
        """Rows are (slug, kind, name, aliases, country) for actors and locations, (slug, kind,
        name, aliases) for sources; `attribution` maps a source slug to its attribution phrases."""
        self._rows = (actors, locations, sources, rules, attribution)
        self._actors = {slug: _Actor(slug, kind, country) for slug, kind, _, _, country in actors}
        self._places = {slug: _Place(slug, kind, country) for slug, kind, _, _, country in locations}
        # the catalogue's countries by ISO code: a world place inside one takes it as its parent
        self._country_slugs = {p.country: p.slug for p in self._places.values() if p.kind == "country" and p.country}
        self._use_world = use_world
        self._targets: dict[str, list[_Target]] = {}
        for slug, _, name, aliases, *_ in actors:
            self._add("actor", slug, [name, *aliases])
        for slug, _, name, aliases, *_ in locations:
            self._add("location", slug, [name, *aliases])
        for slug, _, name, aliases in sources:
            self._add("source", slug, [name, *aliases])
        # no names at all (an empty catalogue): an empty alternation would match the empty string
        self._matcher = re.compile(r"(?<!\w)(?:" + _trie_pattern(self._targets) + r")(?!\w)") if self._targets else None

        # an alias shared by several actors -> which one it means by default
        self._defaults = {fold(normalize(alias)): slug for alias, slug in rules.ambiguous_defaults.items()}
        # capitals: a city alias that is also a state actor's alias
        self._capitals = {
            key
            for key, targets in self._targets.items()
            if any(t.kind == "location" and self._places[t.slug].kind == "city" for t in targets)
            and any(t.kind == "actor" and self._actors[t.slug].kind == "state" for t in targets)
        }
        self._state_of_country = {a.country: a.slug for a in self._actors.values() if a.kind == "state" and a.country}
        demonyms = {fold(normalize(word)): slug for word, slug in rules.demonyms.items() if slug in self._places}
        self._demonyms = demonyms
        nouns = rules.place_nouns or ["territory"]
        self._demonym_place = (
            re.compile(
                r"(?<!\w)(" + _words_pattern(demonyms) + r")\s+(?:[\w-]+\s+)?(?:" + _words_pattern(nouns) + r")(?!\w)"
            )
            if demonyms
            else None
        )
        self._demonym_speaks = (
            re.compile(
                r"(?<!\w)("
                + _words_pattern(demonyms)
                + r")\s+(?:officials|authorities|government)\s+"
                + _AUX
                + _SPEECH
                + r"\b"
            )
            if demonyms
            else None
        )
        locatives = rules.locative_words or ["in", "from", "at"]
        self._locative = re.compile(r"(?<!\w)(?:" + _words_pattern(locatives) + r")\s+(?:the\s+)?$")
        phrases: dict[str, str] = {}
        for slug, items in (attribution or {}).items():
            if any(s[0] == slug for s in sources):
                for phrase in items:
                    phrases[fold(normalize(phrase))] = slug
        self._phrases = phrases
        self._phrase_matcher = re.compile(r"(?<!\w)(?:" + _trie_pattern(phrases) + r")(?!\w)") if phrases else None

    def _add(self, kind: Kind, slug: str, names: Iterable[str]) -> None:
        for name in names:
            written = normalize(name).strip()
            if not written:
                continue
            key = fold(written)
            target = _Target(kind, slug, written if _case_sensitive(written) else None)
            bucket = self._targets.setdefault(key, [])
            if target not in bucket:
                bucket.append(target)

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_gazetteer(cls, g: Gazetteer) -> Linker:
        """A linker over a gazetteer file alone (no database): for tests and tools."""
        return cls(
            [(a.slug, a.kind, a.name, a.aliases, a.country) for a in g.actors],
            [(loc.slug, loc.kind, loc.name, loc.aliases, loc.country) for loc in g.locations],
            [(s.slug, s.kind, s.name, s.aliases) for s in g.sources],
            g.rules,
            {s.slug: s.attribution for s in g.sources},
        )

    @classmethod
    async def load(cls, conn: asyncpg.Connection, gazetteer: Path | str | Gazetteer = DEFAULT_PATH) -> Linker:
        """A linker over every entity in the database, with the gazetteer's rule data.

        Compiling takes tens of milliseconds, so a linker is reused while neither the
        database's entities (by digest) nor the gazetteer file (by size and mtime) change.
        """
        if isinstance(gazetteer, Gazetteer):
            return await cls._compile(conn, gazetteer)
        path = Path(gazetteer)
        key = f"{_file_key(path)}:{await conn.fetchval(query('linker_fingerprint'))}"
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
        linker = await cls._compile(conn, read(path))
        _CACHE[key] = linker
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return linker

    @classmethod
    async def _compile(cls, conn: asyncpg.Connection, g: Gazetteer) -> Linker:
        actors = await conn.fetch(query("linker_actors"))
        locations = await conn.fetch(query("linker_locations"))
        sources = await conn.fetch(query("linker_sources"))
        return cls(
            [(r["slug"], r["kind"], r["name"], r["aliases"], r["country"]) for r in actors],
            [(r["slug"], r["kind"], r["name"], r["aliases"], r["country"]) for r in locations],
            [(r["slug"], r["kind"], r["name"], r["aliases"]) for r in sources],
            g.rules,
            {s.slug: s.attribution for s in g.sources},
        )

    # --- a page at a time ----------------------------------------------------------------------

    def for_page(self, page: ParsedPage) -> LinkFn:
        """The link function for a page's entries: the countries of the blog's title and
        standfirst as context, and the people and organisations discovered across the page."""
        context = self.countries_of([page.blog.title, page.blog.standfirst or ""])
        texts = [t for e in page.entries for t in (e.headline, *e.body)]
        return self.for_texts(texts, context)

    def for_texts(self, texts: Sequence[str], context: Sequence[str] = ()) -> LinkFn:
        """A link function that also knows the actors `texts` name that no catalogue lists."""
        found = discoverer().find([normalize(t) for t in texts], self.knows, self.knows_actor, self._forceless())
        if not found:
            return lambda headline, paragraphs: self.link(headline, paragraphs, context)
        actors, locations, sources, rules, attribution = self._rows
        # an organisation found on a page about one country is that country's (RSF is Sudan's)
        home = context[0] if len(context) == 1 else None
        extra = [
            (f.slug, f.kind, f.name, f.aliases, None if f.kind == "person" else home)
            for f in found
            if f.slug not in self._actors
        ]
        # on this page an acronym means the organisation the page spells out, whatever it meant elsewhere
        defaults = {alias: f.slug for f in found if f.kind != "person" for alias in f.aliases}
        rules = msgspec.structs.replace(rules, ambiguous_defaults={**rules.ambiguous_defaults, **defaults})
        derived = Linker([*actors, *extra], locations, sources, rules, attribution, use_world=self._use_world)
        specs = {
            f.slug: ActorSpec(f.slug, f.name, f.kind, None if f.kind == "person" else home, tuple(f.aliases), f.phrase)
            for f in found
        }

        def link(headline: str, paragraphs: Sequence[str]) -> Links:
            links = derived.link(headline, paragraphs, context)
            new = tuple(specs[a.slug] for a in links.actors if a.slug in specs)
            return msgspec.structs.replace(links, new_actors=links.new_actors + new) if new else links

        return link

    def countries_of(self, texts: Sequence[str]) -> tuple[str, ...]:
        """ISO codes of the countries (and of the places' countries) that `texts` name."""
        links = self.link(texts[0] if texts else "", texts[1:])
        codes = [self._places[s].country for s in links.locations if s in self._places]
        codes += [spec.country for spec in links.new_locations]
        return tuple(dict.fromkeys(c for c in codes if c))

    def knows(self, name: str) -> bool:
        """Whether a catalogue holds `name` (any kind), or the world gazetteer as a place's own name."""
        written = normalize(name).strip()
        if fold(written) in self._targets:
            return True
        if not self._use_world:
            return False
        w, key = world(), key_of(tokens_of(written))  # a place's own name, not one of its alternate names
        return any(w.is_own_name(j, key) for j in w.by_key.get(key, ()))

    def _forceless(self) -> dict[str, str]:
        """Demonym -> ISO code, for countries none of whose armed forces the catalogue lists."""
        armed = {a.country for a in self._actors.values() if a.kind == "military" and a.country}
        hand = {word: p.country or "" for word, slug in self._rows[3].demonyms.items() if (p := self._places.get(slug))}
        codes = {**world().rules.demonyms, **hand} if self._use_world else hand
        return {word: code for word, code in codes.items() if code and code not in armed}

    def knows_actor(self, name: str) -> bool:
        """Whether a catalogue holds `name` as an actor's name or alias."""
        return any(t.kind == "actor" for t in self._targets.get(fold(normalize(name).strip()), ()))

    def people(self) -> set[str]:
        return {a.slug for a in self._actors.values() if a.kind == "person"}

    # --- linking -------------------------------------------------------------------------------

    def link(self, headline: str, paragraphs: Sequence[str], context: Sequence[str] = ()) -> Links:
        """Links of one entry; `context` is the ISO codes of the countries its blog is about."""
        segments = [normalize(headline), *(normalize(p) for p in paragraphs)]
        sentences: list[list[tuple[int, int]]] = [_sentences(s) for s in segments]
        matches = self._find(segments, sentences)

        roles: dict[str, Role] = {}
        places: list[str] = []
        sources: list[str] = []
        first_person: dict[tuple[int, int], tuple[str, int]] = {}
        country = self._context_country(matches)
        named_actors, named_places = self._fully_named(matches)

        for m in matches:
            text = segments[m.segment]
            s_start, s_end = sentences[m.segment][m.sentence]
            sentence = text[s_start:s_end]
            at, till = m.start - s_start, m.end - s_start
            # context checks look at a bounded window, so a huge sentence stays linear
            before, after = sentence[max(0, at - _WINDOW) : at], sentence[till : till + _WINDOW]
            quoted = m.segment == 0 and _attributed_in_headline(sentence, at)
            capital = m.key in self._capitals
            located = capital and bool(self._locative.search(fold(before)))
            # actors
            people = [a for a in m.actors if self._actors[a].kind != "state"]
            states = [a for a in m.actors if self._actors[a].kind == "state"]
            chosen = self._resolve(m.key, people, named_actors, country, context)
            if chosen is not None and _MODIFIER.match(after):
                chosen = None  # "the UN refugee agency (UNHCR)": the name qualifies another organisation's
            if chosen is not None:
                speaks = quoted or _speaks(before, after)
                _note(roles, chosen, "speaker" if speaks else "mentioned")
                if self._actors[chosen].kind == "person":
                    first_person.setdefault((m.segment, m.sentence), (chosen, at))
            if states and not located and _state_speaks(before, after, capital):
                for state in states:
                    _note(roles, state, "speaker")
            # locations
            if m.locations and (not capital or located):
                place = self._resolve_place(m.locations, named_places)
                if place is not None and place not in places:
                    places.append(place)
            # sources
            if m.sources and (quoted or _attributed(fold(before), fold(after))):
                for source in m.sources:
                    if source not in sources:
                        sources.append(source)

        self._pronouns(segments, sentences, first_person, roles)
        self._demonym_links(segments, places, roles)
        new_locations: list[PlaceSpec] = []
        new_actors: list[ActorSpec] = []
        if self._use_world:
            named = {c for m in matches for p in m.locations if (c := self._places[p].country)}
            linked, new_locations, speaking = self._world_places(segments, sentences, matches, named, set(context))
            places.extend(slug for slug in linked if slug not in places)
            speaking += self._government_speaks(segments, places, new_locations, speaking)
            for spec in speaking:
                roles[spec.slug] = "speaker"
                if spec.slug not in self._actors:
                    new_actors.append(spec)
        if self._phrase_matcher is not None:
            for text in segments:
                for pm in self._phrase_matcher.finditer(fold(text)):
                    slug = self._phrases[pm.group()]
                    if slug not in sources:
                        sources.append(slug)

        return Links(
            actors=tuple(LinkedActor(slug, role) for slug, role in roles.items()),
            locations=tuple(places),
            sources=tuple(sources),
            new_locations=tuple(new_locations),
            new_actors=tuple(new_actors),
        )

    def _world_places(
        self,
        segments: list[str],
        sentences: list[list[tuple[int, int]]],
        matches: list[_Match],
        named: set[str],
        context: set[str],
    ) -> tuple[list[str], list[PlaceSpec], list[ActorSpec]]:
        """Places of the world gazetteer the entry names outside the catalogue's matches, and
        the world's states it reports speaking.

        Two passes: the first finds every name (and the countries among them, which join the
        entry's context), the second picks one place per name by the rules of data/world.json.
        """
        w = world()
        hits: list[_WorldHit] = []
        for i, text in enumerate(segments):
            # a name the catalogue holds only as a state (a state discovered earlier) is still a place here
            covered = sorted((m.start, m.end) for m in matches if m.segment == i and not self._only_states(m))
            hits.extend(self._world_names(w, i, text, sentences[i], covered))
        countries = set(named) | context
        for hit in hits:
            first = w.places[w.by_key[hit.key][0]]
            if first.kind == "country" and hit.key in w.country_keys:
                countries.add(first.country)
        near = {n for c in countries for n in w.neighbours(c)} - countries

        linked: list[str] = []
        specs: dict[str, PlaceSpec] = {}
        states: dict[str, ActorSpec] = {}
        for hit in hits:
            pick = _pick(w, hit, countries, near)
            if pick is None:
                continue
            place = w.places[pick]
            text = segments[hit.segment]
            before, after = text[max(0, hit.start - _WINDOW) : hit.start], text[hit.end : hit.end + _WINDOW]
            needed = w.spec(pick, self._country_slugs)
            country_slug = self._country_slugs.get(place.country) or needed[0].slug
            speaks = _state_speaks(before, after, capital=place.capital)
            if (place.kind == "country" or (place.capital and not hit.locative)) and speaks:
                # the state speaks ("Egypt's foreign minister said", "Cairo has rejected"): a state actor
                phrase = text[hit.start : hit.end + 80].split(".")[0]
                states.setdefault(
                    country_slug,
                    ActorSpec(country_slug, w.country_name(place.country), "state", place.country, (), phrase),
                )
            if place.capital and not hit.locative:
                continue  # a capital stands for its government unless a locative word says it is the place
            for spec in needed:
                specs.setdefault(spec.slug, spec)
            slug = country_slug if place.kind == "country" else needed[-1].slug
            if slug not in linked:
                linked.append(slug)
        return linked, list(specs.values()), list(states.values())

    def _only_states(self, m: _Match) -> bool:
        return not m.locations and not m.sources and all(self._actors[a].kind == "state" for a in m.actors)

    def _government_speaks(
        self, segments: list[str], places: list[str], found: list[PlaceSpec], speaking: list[ActorSpec]
    ) -> list[ActorSpec]:
        """ "The government said", "Government spokesperson X said" in an entry that names one
        country: that country's state speaks."""
        hit = next((m for text in segments if (m := _GOVERNMENT_SAID.search(text))), None)
        if hit is None:
            return []
        codes = {self._places[p].country for p in places if p in self._places and self._places[p].kind == "country"}
        codes |= {spec.country for spec in found if spec.kind == "country" and spec.slug in places}
        if len(codes) != 1:
            return []
        code = codes.pop() or ""
        slug = self._state_of_country.get(code) or self._country_slugs.get(code) or ""
        if not slug:
            slug = next((spec.slug for spec in found if spec.kind == "country" and spec.country == code), "")
        if not slug or any(spec.slug == slug for spec in speaking):
            return []
        w = world()
        name = w.country_name(code) if code in w.countries else slug
        return [ActorSpec(slug, name, "state", code, (), hit.group())]

    def _world_names(
        self, w: World, segment: int, text: str, bounds: list[tuple[int, int]], covered: list[tuple[int, int]]
    ) -> list[_WorldHit]:
        """Every name in `text` the world index holds, outside the catalogue's matches."""
        words = tokens(text)
        starts = {b[0] for b in bounds}
        title_case = segment == 0 and _title_case(words)  # only a headline is written in title case
        out: list[_WorldHit] = []
        i = 0
        while i < len(words):
            word = words[i].group()
            if (cased(word) and not word[0].isupper()) or _inside(words[i].start(), covered):
                i += 1
                continue
            found = None
            for n in range(min(MAX_WORDS, len(words) - i), 0, -1):
                run = words[i : i + n]
                if any(text[a.end() : b.start()] != " " for a, b in itertools.pairwise(run)):
                    continue
                if any(_inside(m.start(), covered) for m in run[1:]):
                    continue
                key = key_of([m.group() for m in run])
                if key in w.by_key:
                    found = (n, key)
                    break
            if found is None:
                i += 1
                continue
            n, key = found
            start, end = words[i].start(), words[i + n - 1].end()
            i += n
            written = text[start:end]
            if len(written) > 1 and written.isupper() and key not in w.caps_keys:
                continue  # "MENA", "UN": an acronym, not a place's name
            if not title_case and _in_longer_name(text, words, i - n, i, starts, w.rules.place_suffixes):
                continue
            if i < len(words) and text[end : words[i].start()] == " " and words[i].group().lower() in w.region_words:
                continue
            before = fold(text[max(0, start - _WINDOW) : start])
            initial = start in starts or text[max(0, start - 4) : start].strip() in ("", '"', "'", "(", "[")
            out.append(_WorldHit(segment, start, end, key, bool(self._locative.search(before)), initial and n == 1))
        return out

    def _find(self, segments: list[str], sentences: list[list[tuple[int, int]]]) -> list[_Match]:
        found: list[_Match] = []
        if self._matcher is None:
            return found
        for i, text in enumerate(segments):
            bounds = sentences[i]
            k = 0
            for hit in self._matcher.finditer(fold(text)):
                key = hit.group()
                written = text[hit.start() : hit.end()]
                targets = [t for t in self._targets[key] if t.exact is None or t.exact == written]
                if not targets:
                    continue
                while k + 1 < len(bounds) and hit.start() >= bounds[k][1]:
                    k += 1
                m = _Match(i, k, hit.start(), hit.end(), key)
                for t in targets:
                    getattr(m, t.kind + "s").append(t.slug)
                found.append(m)
        return found

    def _fully_named(self, matches: list[_Match]) -> tuple[list[str], list[str]]:
        """Actors, and locations, that the entry names unambiguously somewhere, in order."""
        actors: list[str] = []
        places: list[str] = []
        for m in matches:
            people = [a for a in m.actors if self._actors[a].kind != "state"]
            for group, named in ((people, actors), (m.locations, places)):
                if len(group) == 1 and group[0] not in named:
                    named.append(group[0])
        return actors, places

    def _context_country(self, matches: list[_Match]) -> str | None:
        """The country of the first place (or capital) the entry names."""
        for m in matches:
            for slug in m.locations:
                if self._places[slug].country:
                    return self._places[slug].country
        return None

    def _resolve(
        self, key: str, candidates: list[str], fully_named: list[str], country: str | None, context: Sequence[str] = ()
    ) -> str | None:
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        default = self._defaults.get(key)
        named = [slug for slug in fully_named if slug in candidates]
        if named:
            return default if default in named else named[0]
        if default in candidates:
            return default
        if country is not None:
            local = [slug for slug in candidates if self._actors[slug].country == country]
            if len(local) == 1:
                return local[0]
        local = [slug for slug in candidates if self._actors[slug].country in context]
        return local[0] if len(local) == 1 else None  # the one of the blog's country

    def _resolve_place(self, candidates: list[str], fully_named: list[str]) -> str | None:
        if len(candidates) == 1:
            return candidates[0]
        named = [slug for slug in fully_named if slug in candidates]
        return named[0] if named else None

    def _pronouns(
        self,
        segments: list[str],
        sentences: list[list[tuple[int, int]]],
        first_person: dict[tuple[int, int], tuple[str, int]],
        roles: dict[str, Role],
    ) -> None:
        """ "He said ..." before any person is named in its sentence: the last subject spoke."""
        last: str | None = None
        for i, text in enumerate(segments):
            for k, (start, end) in enumerate(sentences[i]):
                person = first_person.get((i, k))
                said = _PRONOUN_SAID.search(text[start:end])
                if said is not None and (person is None or person[1] > said.start()):
                    if last is not None:
                        roles[last] = "speaker"
                elif person is not None:
                    last = person[0]

    def _demonym_links(self, segments: list[str], places: list[str], roles: dict[str, Role]) -> None:
        for text in segments:
            low = fold(text)
            if self._demonym_place is not None:
                for hit in self._demonym_place.finditer(low):
                    place = self._demonyms[hit.group(1)]
                    if place not in places:
                        places.append(place)
            if self._demonym_speaks is not None:
                for hit in self._demonym_speaks.finditer(low):
                    place_country = self._places[self._demonyms[hit.group(1)]].country
                    state = self._state_of_country.get(place_country or "")
                    if state is not None:
                        roles[state] = "speaker"


class _WorldHit(NamedTuple):
    segment: int
    start: int
    end: int
    key: str
    locative: bool  # after a locative word ("in", "near", "the town of")
    initial: bool  # one word opening a sentence: its capital letter says nothing


def _pick(w: World, hit: _WorldHit, countries: set[str], near: set[str]) -> int | None:
    """Which of the places sharing a name the entry means, by data/world.json's rules; None: no place.

    A place's own name (or a country's) links in the story's countries, then in their
    neighbours, then anywhere if populous enough; an alternate name (an exonym, an old or
    foreign spelling) only in the story's countries (not opening a sentence) or, when it has
    several words and follows a locative word, their neighbours, since alternate names include
    words of every language ("Thai", "More", "Taiga")."""
    indices = w.by_key[hit.key]
    own = [j for j in indices if w.is_own_name(j, hit.key)]
    local = next((j for j in indices if w.places[j].country in countries), None)
    if local is not None and (local in own or not hit.initial):
        return local
    if hit.key in w.stop_keys:
        return None  # a common word or first name outside the story's countries
    far_ok = hit.locative and " " in hit.key  # "in Deir el-Balah", not "outside the Thai embassy"
    pick = next((j for j in indices if w.places[j].country in near and (j in own or far_ok)), None)
    if pick is not None:
        return pick
    if not own:
        return None  # an alternate name far from the story
    best = w.places[own[0]]
    floor = w.rules.min_population if hit.locative else w.rules.min_population_bare
    return own[0] if best.kind == "country" or best.population >= floor else None


def _inside(at: int, spans: list[tuple[int, int]]) -> bool:
    """Whether `at` falls in one of `spans` (sorted, not overlapping)."""
    k = bisect.bisect_right(spans, (at, sys.maxsize)) - 1
    return k >= 0 and spans[k][0] <= at < spans[k][1]


def _title_case(words: list[re.Match[str]]) -> bool:
    """A headline in title case: most words capitalised, so capitals say nothing about names."""
    long = [m.group() for m in words if len(m.group()) > 3 and cased(m.group())]
    return len(long) >= 3 and sum(w[0].isupper() for w in long) >= 0.7 * len(long)


_NAME_GAP = re.compile(r" |\] | \[|\]")


def _capitalised(word: str) -> bool:
    return cased(word) and word[0].isupper()


def _in_longer_name(
    text: str, words: list[re.Match[str]], i: int, j: int, starts: set[int], suffixes: Sequence[str]
) -> bool:
    """Whether words[i:j] are part of a longer capitalised name ("Florence Looi", "Camp David")."""
    if j < len(words) and _NAME_GAP.fullmatch(text[words[j - 1].end() : words[j].start()]):
        after = words[j].group()
        if _capitalised(after) and after not in suffixes:
            return True  # "Florence Looi", "[Vladimir] Putin"
    if i > 1 and text[words[i - 1].end() : words[i].start()] == " " and words[i - 1].group() == "of":
        # "the Global New Light of Myanmar", "University of Khartoum": the place names the institution
        owner = words[i - 2]
        opening = owner.start() in starts or text[max(0, owner.start() - 4) : owner.start()].strip() in ("", '"')
        return _capitalised(owner.group()) and not opening and text[owner.end() : words[i - 1].start()] == " "
    if i > 0 and _NAME_GAP.fullmatch(text[words[i - 1].end() : words[i].start()]):
        before = words[i - 1]
        sentence_start = before.start() in starts or text[max(0, before.start() - 8) : before.start()].rstrip()[
            -1:
        ] in (
            "",
            '"',
            "(",
            ":",
        )
        if _capitalised(before.group()) and not sentence_start:
            return True
    return False


def _speaks(before: str, after: str) -> bool:
    hit = _SPEAKER_AFTER.match(after)
    # ", saying ..." after a noun belongs to the clause's subject, not to the noun
    dangling = hit is not None and bool(hit.group("comma")) and hit.group("verb").endswith("ing")
    if hit is not None and not dangling and not _PASSIVE.match(after.lstrip(" ,'s")):
        return True
    return bool(_SPEAKER_BEFORE.search(before) and _BEFORE_END.match(after))


def _state_speaks(before: str, after: str, capital: bool) -> bool:
    if _PREPOSITION_BEFORE.search(before):
        return False
    hit = _STATE_AFTER.match(after)
    if hit is None or _PASSIVE.match(after.lstrip(" ,")):
        return False
    return not (capital and hit.group("comma"))


def _attributed(before: str, after: str) -> bool:
    """Whether the words around a source's name (folded) attribute a report to it."""
    if _SOURCE_BEFORE.search(before) or _SOURCE_AFTER.match(after):
        return True
    return bool(_SOURCE_ON.search(before) and _SOURCE_ON_CONTEXT.search(before + " " + after))


def _file_key(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return str(path)  # read() reports the problem
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _note(roles: dict[str, Role], slug: str, role: Role) -> None:
    if roles.get(slug) != "speaker":
        roles[slug] = role


def _sentences(text: str) -> list[tuple[int, int]]:
    bounds: list[tuple[int, int]] = []
    start = 0
    for cut in _SENTENCE.finditer(text):
        bounds.append((start, cut.start()))
        start = cut.end()
    bounds.append((start, len(text)))
    return bounds


def _attributed_in_headline(headline: str, at: int) -> bool:
    """A headline ending ": X" (at most four words after the last colon) quotes X."""
    colon = headline.rfind(":")
    if colon < 0 or at < colon:
        return False
    tail = headline[colon + 1 :].strip()
    # the name leads the tail ("Kremlin spokesperson", "AJ correspondent"), not "Kim tells Putin"
    lead = len(headline[colon + 1 : at].split())
    return 0 < len(tail.split()) <= 4 and lead <= 1 and not tail.endswith("?")
