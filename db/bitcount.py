"""Exact entry counts from the entry bitmaps (migration 0050) for filters made of blogs, kinds,
actors, sources, locations, boxes, since/until and and/or/not, at any depth.

A bitmap row covers one UTC day (1024 slots a part); the filter becomes one bitwise expression
over the rows of the days it can match, ANDed with the day's live entries ('e') and counted
with bit_count. since/until are whole days there (a day is in or out); the days a boundary cuts
(at most two per since/until) are counted the plain way from entries, whose published_at index
keeps that to those days' entries. A full-text `q` is compiled over its terms (migration 0060:
lexemes, and adjacent pairs for two-word phrases; `Words`): a tracked term reads its bitmaps, an
untracked one (in fewer entries than the tracking threshold when it last ran) has its bits made
from the entries that have it; a query of other shapes is counted plainly. `updated_since` has
no bitmaps: below the top level it is not compiled (`compile_count` answers None) and is
counted plainly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
from msgspec.structs import replace

from db import where
from db.filters import BBox, EntryFilter
from db.where import Params

WIDTH = 1024  # bits a part, as in sitrep_bit()
# a search term in this many entries or more gets a bitmap (`sitrep track-words`, `sitrep
# generate`); a rarer one has its bits made from the entries that have it, at most this many
TRACK_WORDS = 2000
_ZERO = f"0::bit({WIDTH})::bit varying"
_UNIVERSE = "g.x0"
KIND_NO = {"post": 1, "video": 2, "interactive": 3, "read_more": 4}  # sitrep_kind_no()

# bbox → the locations whose whole subtree lies in the box (outermost only), or None when a
# location in the box has a place inside it outside the box (its own links have no bitmap)
Covers = dict[BBox, list[int] | None]

# q → its query over search terms (`search_words`), or None when the bitmaps cannot say (an
# empty query, a phrase of three words or with a gap, a prefix or weight)
# ("t", tracked term id) | ("u", untracked term) | ("&", a, b) | ("|", a, b) | ("!", a)
Word = tuple[Any, ...]
Words = dict[str, Word | None]


def _floor(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _is_midnight(moment: datetime) -> bool:
    return moment.astimezone(UTC).timetz().replace(tzinfo=None) == time()


class _Compiler:
    def __init__(self, covers: Covers, p: Params, words: Words | None = None) -> None:
        self.covers = covers
        self.words = words or {}
        self.p = p
        self.leaves: dict[tuple[str, tuple[Any, ...]], int] = {}
        self.edges: set[date] = set()

    def leaf(self, family: str, ids: list[Any]) -> str:
        key = (family, tuple(sorted(set(ids))))
        n = self.leaves.setdefault(key, len(self.leaves) + 1)
        return f"COALESCE(g.x{n}, {_ZERO})"

    def word(self, w: Word) -> str:
        if w[0] == "t":
            return self.leaf("w", [w[1]])
        if w[0] == "u":  # untracked: its bits made from the entries that have it
            return self.leaf("?", [w[1]])
        if w[0] == "!":
            return f"({_UNIVERSE} & ~({self.word(w[1])}))"
        return f"(({self.word(w[1])}) {w[0]} ({self.word(w[2])}))"

    def expr(self, f: EntryFilter) -> str | None:
        if f.updated_since is not None:
            return None
        parts: list[str] = []
        if f.q is not None:
            w = self.words.get(f.q)
            if w is None:
                return None
            parts.append(self.word(w))
        if f.blog:
            parts.append(self.leaf("b", [int(b) for b in f.blog]))
        if f.actor:
            if f.actor_match == "all":
                parts.extend(self.leaf("a", [int(a)]) for a in f.actor)
            else:
                parts.append(self.leaf("a", [int(a) for a in f.actor]))
        if f.source:
            parts.append(self.leaf("s", [int(s) for s in f.source]))
        if f.location:
            parts.append(self.leaf("L", [int(x) for x in f.location]))
        if f.kind:
            if any(k not in KIND_NO for k in f.kind):
                return None
            parts.append(self.leaf("k", [KIND_NO[k] for k in f.kind]))
        if f.bbox is not None:
            cover = self.covers.get(f.bbox)
            if cover is None:
                return None
            parts.append(self.leaf("L", cover))
        if f.since is not None:
            first = _floor(f.since)
            if not _is_midnight(f.since):
                self.edges.add(first)
                first += timedelta(days=1)
            parts.append(f"CASE WHEN g.day >= {self.p.add(first)}::date THEN {_UNIVERSE} ELSE {_ZERO} END")
        if f.until is not None:
            last = _floor(f.until)  # days before this are wholly before until
            if not _is_midnight(f.until):
                self.edges.add(last)
            parts.append(f"CASE WHEN g.day < {self.p.add(last)}::date THEN {_UNIVERSE} ELSE {_ZERO} END")
        for sub in f.and_:
            e = self.expr(sub)
            if e is None:
                return None
            parts.append(e)
        if f.or_:
            subs = [self.expr(sub) for sub in f.or_]
            if any(e is None for e in subs):
                return None
            parts.append("(" + " | ".join(f"({e})" for e in subs) + ")")
        if f.not_ is not None:
            e = self.expr(f.not_)
            if e is None:
                return None
            parts.append(f"({_UNIVERSE} & ~({e}))")
        return " & ".join(f"({x})" for x in parts) if parts else _UNIVERSE


def compile_count(
    f: EntryFilter, covers: Covers | None = None, words: Words | None = None
) -> tuple[str, list[Any]] | None:
    """The counting statement for a resolved filter and its values, or None (no bitmaps for it).

    A top-level `updated_since` is answered as the count without it less the entries updated
    before it that match the rest, when fewer than OLDER_MAX entries were (an old updated_since,
    as a first full sync asks); the statement then answers NULL otherwise, and the caller counts
    plainly (a recent one: few entries to count)."""
    if f.updated_since is not None:
        return _count_newer(f, covers, words)
    p = Params()
    sql = _bitmap_count(f, covers, words, p)
    return None if sql is None else (sql, p.values)


OLDER_MAX = 5000


def _count_newer(f: EntryFilter, covers: Covers | None, words: Words | None) -> tuple[str, list[Any]] | None:
    assert f.updated_since is not None
    rest = replace(f, updated_since=None)
    p = Params()
    whole = _bitmap_count(rest, covers, words, p)
    if whole is None:
        return None
    older = (
        f"SELECT id FROM entries WHERE updated_at < {p.add(f.updated_since)}::timestamptz"
        f" ORDER BY updated_at LIMIT {OLDER_MAX + 1}"
    )
    sql = (
        f"WITH older AS MATERIALIZED ({older}) SELECT CASE WHEN (SELECT count(*) FROM older) <= {OLDER_MAX}"
        f" THEN ({whole}) - (SELECT count(*) FROM entries e WHERE e.id IN (SELECT id FROM older) AND {where.where(rest, p)})"
        " END"
    )
    return sql, p.values


def _bitmap_count(f: EntryFilter, covers: Covers | None, words: Words | None, p: Params) -> str | None:
    c = _Compiler(covers or {}, p, words)
    expr = c.expr(f)
    if expr is None:
        return None
    # the top level's window bounds the days read
    days = []
    if f.since is not None:
        days.append(f"day >= {p.add(_floor(f.since))}::date")
    if f.until is not None:
        days.append(f"day <= {p.add(_floor(f.until))}::date")
    edges = sorted(c.edges)
    if edges:
        days.append(f"day <> ALL({p.add(edges)}::date[])")
    window = "".join(f" AND {d}" for d in days)
    rows = [f"SELECT 0 AS leaf, day, part, bits FROM entry_bits WHERE family = 'e' AND target = 0{window}"]
    cols = ["bit_or(r.bits) FILTER (WHERE r.leaf = 0) AS x0"]
    for (family, ids), n in c.leaves.items():
        if family == "?":
            rows.append(
                f"SELECT {n}, s.day, s.slot / {WIDTH}, bit_or(sitrep_bit(s.slot)) FROM entries e"
                f" JOIN entry_slots s ON s.entry_id = e.id WHERE e.search @@ {_term_query(ids[0], p)}{window}"
                f" GROUP BY s.day, s.slot / {WIDTH}"
            )
        else:
            rows.append(
                f"SELECT {n}, day, part, bits FROM entry_bits"
                f" WHERE family = '{family}' AND target = ANY({p.add(list(ids))}::bigint[]){window}"
            )
        cols.append(f"bit_or(r.bits) FILTER (WHERE r.leaf = {n}) AS x{n}")
    bitmaps = (
        f"SELECT COALESCE(sum(bit_count({_UNIVERSE} & ({expr}))), 0) FROM ("
        f"SELECT r.day, r.part, {', '.join(cols)} FROM ({' UNION ALL '.join(rows)}) r GROUP BY r.day, r.part"
        f") g WHERE {_UNIVERSE} IS NOT NULL"
    )
    total = [f"({bitmaps})"]
    if edges:
        start = datetime.combine
        ranges = " OR ".join(
            f"(e.published_at >= {p.add(start(d, time(), UTC))}::timestamptz"
            f" AND e.published_at < {p.add(start(d + timedelta(days=1), time(), UTC))}::timestamptz)"
            for d in edges
        )
        total.append(f"(SELECT count(*) FROM entries e WHERE ({ranges}) AND {where.where(f, p)})")
    return f"SELECT ({' + '.join(total)})::bigint"


def _term_query(term: str, p: Params) -> str:
    """The tsquery of one term: its lexeme, or its two lexemes side by side."""
    words = [f"quote_literal({p.add(w)}::text)::tsquery" for w in term.split(" ")]
    return words[0] if len(words) == 1 else f"tsquery_phrase({words[0]}, {words[1]})"


def boxes(f: EntryFilter) -> set[BBox]:
    """Every box in the filter, at any depth."""
    return {sub.bbox for sub in where._walk(f) if sub.bbox is not None}


def cover_sql(bbox: BBox) -> tuple[str, list[Any]]:
    """(outermost locations whose subtree lies in the box, whether a location in the box has a
    place outside it, whether the box holds every location: then 'L' 0, any location, answers it)."""
    p = Params()
    inside = f"SELECT bl.id FROM locations bl WHERE {where.box(bbox, p)}"
    sql = (
        f"WITH s AS ({inside}),"
        " closed AS (SELECT s.id FROM s WHERE NOT EXISTS (SELECT 1 FROM location_closure c"
        " WHERE c.ancestor_id = s.id AND c.location_id NOT IN (SELECT id FROM s)))"
        " SELECT ARRAY(SELECT x.id FROM closed x JOIN locations l ON l.id = x.id"
        " WHERE l.parent_id IS NULL OR l.parent_id NOT IN (SELECT id FROM closed) ORDER BY x.id) AS top,"
        " EXISTS (SELECT 1 FROM s WHERE s.id NOT IN (SELECT id FROM closed)) AS open,"
        " NOT EXISTS (SELECT 1 FROM locations r WHERE r.parent_id IS NULL AND r.id NOT IN (SELECT id FROM closed))"
        " AS everywhere"
    )
    return sql, p.values


_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'(:[*A-Da-d]+)?|(<->|<\d+>|[&|!()]))")


def parse_tsquery(text: str) -> tuple[Any, ...] | None:
    """A tsquery as PostgreSQL prints it ('air' <-> 'defenc' & !'drone') as a tree of terms:
    ("t", "drone"), ("t", "air defenc") for a two-word phrase, ("&" | "|", a, b), ("!", a); None
    for what has no bitmap (an empty query, a phrase of other words or distances, prefix or
    weight marks). Precedence as PostgreSQL's: ! then <-> then & then |."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        if m.group(2):  # 'drone':* or 'drone':A
            return None
        tokens.append(("lex", m.group(1).replace("''", "'")) if m.group(1) is not None else ("op", m.group(3)))
        pos = m.end()
    if not tokens:
        return None
    at = 0

    def peek() -> str | None:
        return tokens[at][1] if at < len(tokens) and tokens[at][0] == "op" else None

    def take() -> tuple[str, str]:
        nonlocal at
        at += 1
        return tokens[at - 1]

    def chain(op: str, operand: Callable[[], tuple[Any, ...] | None]) -> tuple[Any, ...] | None:
        left = operand()
        while left is not None and peek() == op:
            take()
            right = operand()
            left = None if right is None else (op, left, right)
        return left

    def either() -> tuple[Any, ...] | None:
        return chain("|", both)

    def both() -> tuple[Any, ...] | None:
        return chain("&", phrase)

    def phrase() -> tuple[Any, ...] | None:
        left = unary()
        op = peek()
        if left is None or op is None or not op.startswith("<"):
            return left
        take()
        right = unary()
        if op not in ("<->", "<1>") or right is None or left[0] != "t" or right[0] != "t" or " " in left[1]:
            return None
        if (peek() or "").startswith("<"):
            return None  # three words or more: pairs would only say which entries might match
        return ("t", f"{left[1]} {right[1]}")

    def unary() -> tuple[Any, ...] | None:
        if at >= len(tokens):
            return None
        kind, value = take()
        if kind == "lex":
            return ("t", value) if value and " " not in value else None
        if value == "!":
            inner = unary()
            return None if inner is None else ("!", inner)
        if value == "(":
            inner = either()
            if inner is None or take() != ("op", ")"):
                return None
            return inner
        return None

    tree = either()
    return tree if tree is not None and at == len(tokens) else None


def _terms(tree: tuple[Any, ...], into: set[str]) -> set[str]:
    if tree[0] == "t":
        into.add(tree[1])
    else:
        for sub in tree[1:]:
            _terms(sub, into)
    return into


def _to_ids(tree: tuple[Any, ...], ids: dict[str, int]) -> Word:
    """Tracked terms as ("t", id), the others as ("u", term): their few entries make their bits."""
    if tree[0] == "t":
        return ("t", ids[tree[1]]) if tree[1] in ids else ("u", tree[1])
    return (tree[0], *(_to_ids(sub, ids) for sub in tree[1:]))


async def search_words(conn: asyncpg.Connection, f: EntryFilter) -> Words:
    """Each `q` in a filter (at any depth) as its query over tracked terms, or None (`Words`)."""
    qs = sorted({sub.q for sub in where._walk(f) if sub.q is not None})
    if not qs:
        return {}
    rows = await conn.fetch(
        "SELECT q, websearch_to_tsquery('english', q)::text AS query FROM unnest($1::text[]) AS x(q)", qs
    )
    trees = {r["q"]: parse_tsquery(r["query"]) for r in rows}
    wanted = set().union(*(_terms(t, set()) for t in trees.values() if t is not None))
    ids: dict[str, int] = {}
    if wanted:
        found = await conn.fetch("SELECT term, id FROM search_terms WHERE term = ANY($1::text[])", sorted(wanted))
        ids = {r["term"]: r["id"] for r in found}
        if not ids and not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM search_terms)"):
            # nothing tracked yet (`sitrep track-words` never ran): an untracked term may be in
            # any number of entries, and making its bits costs more than counting them
            return dict.fromkeys(trees)
    return {q: None if t is None else _to_ids(t, ids) for q, t in trees.items()}
