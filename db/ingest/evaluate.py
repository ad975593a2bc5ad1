"""Precision and recall of the linker per entity type, against pages annotated by hand.

    python -m db.ingest.evaluate                 # the project's annotated pages (see PAGES)
    python -m db.ingest.evaluate PAGE.txt NOTES.json …

Each page is linked as an import links it (one linker over the shipped gazetteer and the
world gazetteer, actors discovered across the page), without a database: what the linker
would create on import is named by its slug. An annotation file holds, per entry, keyed by
its UTC time "HH:MM" ("HH:MM/2" for a second entry in the same minute), the actors with
their roles, the locations and the sources a reader finds in its headline and paragraphs.

A wrong-person link is a person linked to an entry that names no such person: the error a
reader minds most ("Kim" taken for the wrong Kim, a place read as a surname).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from db.ingest.gazetteer import read
from db.ingest.linker import Linker
from db.ingest.page import parse_page
from db.ingest.types import Links

ROOT = Path(__file__).resolve().parents[2]
# (name, page, annotations); the seed lives outside the project and is skipped where absent
PAGES: tuple[tuple[str, Path, Path], ...] = (
    (
        "seed (Ukraine, shared/seeds)",
        ROOT.parent / "shared" / "seeds" / "aljazeera-2023-09-13.txt",
        ROOT / "tests" / "data" / "seed_annotations.json",
    ),
    (
        "sample (Ukraine, db/sample)",
        ROOT / "db" / "sample" / "day-2023-09-13.txt",
        ROOT / "tests" / "data" / "sample_annotations.json",
    ),
    *(
        (f"{path.stem} (tests/data/linker_pages)", path, path.with_suffix(".json"))
        for path in sorted((ROOT / "tests" / "data" / "linker_pages").glob("*.txt"))
    ),
)
TYPES = ("actors", "actors+roles", "locations", "sources")

Item = tuple[str, ...]


class Score(msgspec.Struct, frozen=True):
    expected: int
    found: int
    hits: int

    @property
    def precision(self) -> float:
        return self.hits / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.expected if self.expected else 1.0


class PageScore(msgspec.Struct, frozen=True):
    name: str
    entries: int
    scores: dict[str, Score]
    wrong_people: list[Item]  # (entry, slug)
    missed: dict[str, list[Item]]
    extra: dict[str, list[Item]]


def entry_keys(minutes: Sequence[str]) -> list[str]:
    """HH:MM, with /2, /3 … for further entries in the same minute, counted from the oldest."""
    seen: dict[str, int] = {}
    keys: list[str] = []
    for minute in reversed(minutes):
        seen[minute] = seen.get(minute, 0) + 1
        keys.append(minute if seen[minute] == 1 else f"{minute}/{seen[minute]}")
    return keys[::-1]


def _items(key: str, kind: str, links: dict[str, Any]) -> set[Item]:
    if kind == "actors":
        return {(key, slug) for slug in links["actors"]}
    if kind == "actors+roles":
        return {(key, slug, role) for slug, role in links["actors"].items()}
    return {(key, slug) for slug in links[kind]}


def as_dict(links: Links) -> dict[str, Any]:
    return {
        "actors": {a.slug: a.role for a in links.actors},
        "locations": list(links.locations),
        "sources": list(links.sources),
    }


def score_page(name: str, linker: Linker, text: str, annotations: dict[str, Any]) -> PageScore:
    page = parse_page(text)
    keys = entry_keys([e.published_at.strftime("%H:%M") for e in page.entries])
    if sorted(keys) != sorted(annotations):
        raise ValueError(f"{name}: the annotations do not key the page's entries one to one")
    link = linker.for_page(page)
    found: dict[str, Links] = {key: link(e.headline, e.body) for key, e in zip(keys, page.entries, strict=True)}
    people = {a.slug for links in found.values() for a in links.new_actors if a.kind == "person"}
    people |= linker.people()
    scores: dict[str, Score] = {}
    missed: dict[str, list[Item]] = {}
    extra: dict[str, list[Item]] = {}
    for kind in TYPES:
        want: set[Item] = set().union(*(_items(k, kind, v) for k, v in annotations.items()))
        got: set[Item] = set().union(*(_items(k, kind, as_dict(v)) for k, v in found.items()))
        scores[kind] = Score(len(want), len(got), len(want & got))
        missed[kind] = sorted(want - got)
        extra[kind] = sorted(got - want)
    wrong = [item for item in extra["actors"] if item[1] in people]
    return PageScore(name, len(keys), scores, wrong, missed, extra)


def evaluate(pages: Iterable[tuple[str, Path, Path]]) -> list[PageScore]:
    linker = Linker.from_gazetteer(read())
    out: list[PageScore] = []
    for name, page, notes in pages:
        if not page.exists() or not notes.exists():
            continue
        annotations = json.loads(notes.read_text(encoding="utf-8"))["entries"]
        out.append(score_page(name, linker, page.read_text(encoding="utf-8"), annotations))
    return out


def table(results: Sequence[PageScore]) -> str:
    """A Markdown table: one row per page, precision / recall per entity type."""
    head = "| page | entries | " + " | ".join(f"{t} P / R" for t in TYPES) + " | wrong-person links |"
    rule = "|---|---:|" + "---:|" * len(TYPES) + "---:|"
    rows = [head, rule]
    for r in results:
        cells = [f"{r.scores[t].precision:.2f} / {r.scores[t].recall:.2f} ({r.scores[t].expected})" for t in TYPES]
        rows.append(f"| {r.name} | {r.entries} | " + " | ".join(cells) + f" | {len(r.wrong_people)} |")
    return "\n".join(rows)


def main(argv: Sequence[str]) -> int:
    if argv and len(argv) % 2:
        print("usage: python -m db.ingest.evaluate [PAGE.txt ANNOTATIONS.json] …", file=sys.stderr)
        return 2
    pages = [(Path(p).name, Path(p), Path(a)) for p, a in zip(argv[0::2], argv[1::2], strict=True)] or list(PAGES)
    results = evaluate(pages)
    print(table(results))
    print("\n(P / R (annotated items); actors ignore roles, actors+roles count a link right only with its role)")
    for r in results:
        for kind in ("actors+roles", "locations", "sources"):
            for item in r.missed[kind]:
                print(f"{r.name}: missed {kind[:-1] if kind != 'actors+roles' else 'actor'} {' '.join(item)}")
            for item in r.extra[kind]:
                print(f"{r.name}: not in the reading: {' '.join(item)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
