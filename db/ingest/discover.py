"""Discover people and organisations that no gazetteer lists, from the way a report names them.

The rules and word lists live in data/discovery.json (see its comment). `discover(texts)`
reads every entry of a page first, so a name found in full in one entry links its surname
or acronym in every other; the linker then matches the discovered names like any other
actor's (db/ingest/linker.py: `Linker.for_page`), with the same reading of speaker roles.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec

from db.ingest.page import slugify

RULES_PATH = Path(__file__).parent / "data" / "discovery.json"


class DiscoveryRules(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    comment: str | None = None
    titles: list[str] = []
    not_name_words: list[str] = []
    particles: list[str] = []
    military_words: list[str] = []
    state_words: list[str] = []
    organisation_heads: list[str] = []
    member_titles: list[str] = []
    source_words: list[str] = []


class Found(msgspec.Struct):
    """A name found in the text: what it is, the words it goes by, and the phrase that found it."""

    slug: str
    name: str
    kind: str  # person, organization, military
    aliases: list[str]
    phrase: str


_SPEECH = (
    r"(?:has\s+|had\s+|also\s+|later\s+)?(?:said|says|told|tells|added|wrote|warned|denied|announced|"
    r"confirmed|claimed|stated|urged|accused|blamed|insisted|explained)\b"
)


class Discoverer:
    def __init__(self, rules: DiscoveryRules) -> None:
        self.rules = rules
        self._not_name = frozenset(rules.not_name_words)
        self._sources = frozenset(rules.source_words)
        # words before a body's name that are not part of it ("The", "Residents", "Police"); demonyms
        # stay ("the Palestinian Red Crescent")
        self._lead = frozenset({"The", "A", "An"} | {w for w in self._not_name if not _demonym_like(w)})
        self._military = tuple(rules.military_words)
        particle = "|".join(re.escape(p) for p in rules.particles)
        word = r"[A-Z][a-z]+(?:-[A-Z]?[a-z]+|'[A-Z][a-z]+)*"  # "Al-Nur", "O'Brien"; not "Sunak's"
        name = rf"(?:{word}|(?:{particle})-{word})(?:\s+(?:(?:{particle})[\s-])?(?:{word}))" + "{1,3}"
        self._name = name
        titles = "|".join(re.escape(t) for t in sorted(rules.titles, key=len, reverse=True))
        # "Foreign Minister Karim Fawzy Nassar", "WFP country director Halima Osterberg"
        self._after_title = re.compile(rf"(?<![\w-])(?:(?:{titles})\s+)+(?P<name>{name})(?![\w-])")
        # "Abdelrahim Bakhit Suleiman, an RSF field commander," / "Myo Zaw Lwin, a 24-year-old engineer"
        self._apposition = re.compile(
            rf"(?:^|(?<=[.;:\"]\s)|(?<=^\"))(?P<name>{name}),\s+(?:a|an|the)\s+[^,.;]{{3,80}}[,.]"
        )
        # "Halima Osterberg said", "a spokesperson for the mission, Ferdinand Okafor, said"
        self._before_speech = re.compile(rf"(?<![\w-])(?P<name>{name}),?\s+{_SPEECH}")
        org_word = r"(?:[A-Z][\w'-]*|of|for|the|and|on|in|de|du|al)"
        # "Rapid Support Forces (RSF)", "the UN refugee agency (UNHCR)"
        self._acronym = re.compile(
            rf"(?P<org>(?:[A-Z][\w'-]*\s+)(?:{org_word}\s+){{0,6}}?)?\((?P<acr>[A-Z](?=[A-Za-z]*[A-Z])[A-Za-z]{{1,7}})\)"
        )

        heads = "|".join(re.escape(h) for h in rules.organisation_heads)
        # "the Palestinian Red Crescent said", "Kookmin University": a capitalised name ending in a
        # word that names a body, whatever words (demonyms too) come before it
        self._body = re.compile(rf"(?<![\w-])(?P<org>(?:[A-Z][\w-]*(?:'(?!s\b)\w+)?\s+){{1,4}}(?:{heads}))(?![\w'-])")
        members = "|".join(re.escape(t) for t in rules.member_titles)
        # "Hamas official Khalil Barakat": one capitalised word, opening a sentence or after a word
        # in lower case, before a member's title and a person's name is the body
        self._member_of = re.compile(rf"(?<![\w-])(?P<org>[A-Z][a-z]{{2,}})\s+(?:{members})\s+(?={name})")
        self._forces: dict[frozenset[str], re.Pattern[str]] = {}

    def _forces_of(self, demonyms: dict[str, str]) -> re.Pattern[str]:
        """ "the Israeli military said": a country's armed forces, by its demonym."""
        key = frozenset(demonyms)
        if key not in self._forces:
            words = "|".join(re.escape(d) for d in sorted(key, key=len, reverse=True))
            self._forces[key] = re.compile(
                rf"(?<![\w-])(?P<demonym>{words})\s+(?:military|army|armed\s+forces|forces|troops)\b"
            )
        return self._forces[key]

    def find(
        self,
        texts: Iterable[str],
        known: Callable[[str], bool],
        known_actor: Callable[[str], bool] | None = None,
        demonyms: dict[str, str] | None = None,
    ) -> list[Found]:
        """What the texts name that `known` (a name the catalogues hold) does not, in order found.

        A person's name that holds a name `known_actor` knows ("Al Jazeera Florence Looi") is
        not new; `demonyms` maps a demonym to the ISO code of a country whose armed forces no
        catalogue lists ("Israeli" -> "IL"), so "the Israeli military" is found."""
        self._known_actor = known_actor or known
        found: dict[str, Found] = {}
        for text in texts:
            for m in self._forces_of(demonyms).finditer(text) if demonyms else ():
                demonym = m.group("demonym")
                if demonym in (demonyms or {}):
                    slug = f"{slugify(demonym)}-military"
                    forms = [f"{demonym} {w}" for w in ("military", "army", "armed forces", "forces", "troops")]
                    found.setdefault(slug, Found(slug, f"{demonym} military", "military", forms[1:], m.group()))
            for m in self._acronym.finditer(text):
                self._organisation(m, found, known)
            for m in self._body.finditer(text):
                self._body_named(m.group("org"), m.group(), found, known)
            for m in self._member_of.finditer(text):
                before = text[max(0, m.start() - 40) : m.start()].split()
                if not before or not before[-1][:1].isupper() or before[-1][-1] in '.:;"':
                    self._body_named(m.group("org"), m.group(), found, known)  # not "State Department official"
            for pattern in (self._after_title, self._apposition, self._before_speech):
                for m in pattern.finditer(text):
                    self._person(m.group("name"), text[m.start() : m.end()], found, known)
        return list(found.values())

    def _organisation(self, m: re.Match[str], found: dict[str, Found], known: Callable[[str], bool]) -> None:
        acronym = m.group("acr")
        words = (m.group("org") or "").split()
        while (words and words[0] in ("The", "the", "A", "An")) or (words and not words[0][0].isupper()):
            words = words[1:]
        while words and not words[-1][0].isupper():
            words.pop()
        name = " ".join(words)
        initials = "".join(w[0] for w in words if w[0].isupper())
        if len(words) < 2 or not _abbreviates(initials, acronym):
            name = ""  # the words before the brackets are not the name the acronym shortens
        if (name and known(name)) or (not name and known(acronym)):
            return  # a name the catalogues know; an acronym known for another name stays this page's
        full = name or acronym
        if any(w in self._sources for w in full.split()):
            return  # "the National News Agency (NNA)": an outlet, not an actor
        kind = "military" if any(w in full.split() for w in self._military) else "organization"
        slug = slugify(full)
        if slug not in found:
            found[slug] = Found(slug, full, kind, [acronym] if name else [], m.group())

    def _body_named(self, name: str, phrase: str, found: dict[str, Found], known: Callable[[str], bool]) -> None:
        words = name.split()
        while words and words[0] in self._lead:
            words = words[1:]
        name = " ".join(words)
        if not name or self._known_actor(name) or any(w in self._sources for w in words):
            return  # a name the catalogues know, or an outlet ("National News Agency"): not an actor
        if len(words) == 1 and (known(name) or _demonym_like(name) or name in self._not_name):
            return  # "Khartoum official", "Korean leader", "Department official": no body's name
        slug = slugify(name)
        if slug not in found:
            kind = "military" if any(w in words for w in self._military) else "organization"
            found[slug] = Found(slug, name, kind, [], phrase)

    def _person(self, name: str, phrase: str, found: dict[str, Found], known: Callable[[str], bool]) -> None:
        words = name.split()
        if any(w in self._not_name for w in words) or known(name):
            return
        if any(self._known_actor(" ".join(words[k : k + n])) for n in (2, 1) for k in range(len(words) - n + 1)):
            return  # holds a name the catalogues know: "Al Jazeera Florence Looi", "Port Sudan Hamdi"
        slug = slugify(name)
        if slug in found or any(slug in f.slug or f.slug in slug for f in found.values() if f.kind == "person"):
            return  # "Halima Osterberg" found again, or a shorter run of a name found already
        surname = words[-1]
        aliases = [surname] if not known(surname) and surname not in self._not_name else []
        found[slug] = Found(slug, name, "person", aliases, phrase)


def _demonym_like(word: str) -> bool:
    return len(word) > 3 and word.endswith(("an", "ese", "ish", "i"))


def _abbreviates(initials: str, acronym: str) -> bool:
    """Whether the acronym shortens the name: "Rapid Support Forces" for RSF, or an acronym of the
    name in another language ("Doctors Without Borders" for MSF, "Malian Armed Forces" for FAMa)
    with as many capitals as the name has words."""
    capitals = "".join(c for c in acronym if c.isupper())
    return initials.upper() == acronym.upper() or len(initials) == len(capitals)


@functools.cache
def discoverer(path: Path = RULES_PATH) -> Discoverer:
    return Discoverer(msgspec.json.decode(path.read_bytes(), type=DiscoveryRules))
