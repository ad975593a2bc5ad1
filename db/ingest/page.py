"""Read a live-blog page, in the text form a browser's "save as text" gives, into plain structs.

The form (Al Jazeera's live blogs; the seed in shared/seeds is one), top to bottom:

    <page chrome: "Skip links", "Navigation menu", "play", "Live", "• News" ...>   ignored
    Title of the blog: what happened

    The standfirst.

    hero alt text                                  optional hero image: alt, then
    The hero caption [Credit]                      its caption ending in [credit]
    By Author One, Author Two and Author Three      optional
    Published On 13 Sep 202313 Sep 2023            required (the date may be doubled)

    This blog is now closed. ...                    optional: the blog is closed
      • A key point.                                the summary bullets
      • live-orange                                 each entry: a marker bullet,
        13 Sep 2023 - 19:33                         the time as shown (any zone),
         (19:33 GMT)                                optional: the same time in GMT,
                                                    then, indented by four spaces:
        Headline                                    the headline,
                                                    blank-line separated paragraphs,
        A paragraph.                                images (an alt line directly above a
                                                    "caption [credit]" line), embedded
        alt text                                    posts (their paragraphs, then a line
        A caption [Reuters]                         "— Name (@handle) September 13, 2023")
    Source: Al Jazeera and news agencies            a line at the margin ends the entries;
    <Related, More from News, Most Read, footer>    everything after it is ignored

A page that does not follow the form raises PageError naming the line and what was expected.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec

from db.errors import InvalidInput

PUBLISHERS = Path(__file__).parent / "data" / "publishers.json"
BlogStatus = Literal["live", "closed"]
EntryKind = Literal["post", "video", "interactive", "read_more"]


class PageError(InvalidInput):
    """The page does not follow the live-blog form; `line` is 1-based."""

    def __init__(self, line: int, expected: str, found: str | None = None) -> None:
        detail = f"line {line}: expected {expected}"
        if found is not None:
            detail += f", found {_clip(found)!r}"
        super().__init__(detail, field="page")
        self.line = line


class Image(msgspec.Struct, frozen=True, tag="image"):
    alt: str | None = None
    caption: str | None = None
    credit: str | None = None
    url: str | None = None  # the text form carries none; kept for pages that do


class Embed(msgspec.Struct, frozen=True, tag="embed"):
    """An embedded social post (an X/Twitter post in the seed)."""

    text: str
    author: str
    handle: str  # as the page shows it: "@DefenceHQ"
    date: dt.date
    url: str | None = None


Media = Image | Embed


class ParsedBlog(msgspec.Struct, frozen=True):
    slug: str
    title: str
    standfirst: str | None
    status: BlogStatus
    authors: tuple[str, ...]
    published_at: dt.datetime  # the "Published On" date, at 00:00 UTC
    summary: tuple[str, ...]
    hero_image: Image | None


class ParsedEntry(msgspec.Struct, frozen=True):
    external_key: str
    published_at: dt.datetime  # aware, UTC
    headline: str
    body: tuple[str, ...]
    kind: EntryKind
    media: tuple[Media, ...] = ()


class ParsedPage(msgspec.Struct, frozen=True):
    blog: ParsedBlog
    entries: tuple[ParsedEntry, ...]  # as on the page: newest first


# ---------------------------------------------------------------------------------------------
# patterns

_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTHS = {name[:3]: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_LONG_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, start=1)}
_DATE = r"(\d{1,2}) ([A-Z][a-z]{2}) (\d{4})"
_PUBLISHED = re.compile(rf"^Published On {_DATE}")
_ENTRY_MARK = re.compile(r"^• live(?:-[\w-]+)?$")
_ENTRY_TIME = re.compile(rf"^{_DATE} - (\d{{1,2}}):(\d{{2}})$")
_GMT = re.compile(r"^\((\d{1,2}):(\d{2}) GMT\)$")
_CREDITED = re.compile(r"^(.*?)\s*\[([^\[\]]+)\]$")
_SIGNATURE = re.compile(
    r"^[\u2014\u2013-] (?P<author>.+?) \((?P<handle>@[A-Za-z0-9_]{1,15})\) (?P<month>[A-Z][a-z]+) (?P<day>\d{1,2}), (?P<year>\d{4})$"
)
_READ_MORE = re.compile(r"^Read more\b.{0,60}$", re.IGNORECASE)
_WATCH_HEADLINE = re.compile(r"^Watch\s*:", re.IGNORECASE)
_CHROME = {"Skip links", "Skip to Content", "play", "Live", "Navigation menu"}
_URL = re.compile(r"https?://\S+")
_PIC = re.compile(r"\s*pic\.twitter\.com/\S+")
_TWEET_BUDGET = 280
_TIME_EXAMPLE = "an entry time such as '13 Sep 2023 - 19:33'"


class _Line(NamedTuple):
    no: int  # 1-based
    text: str  # stripped
    indent: int


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    for i, raw in enumerate(text.splitlines(), start=1):
        # non-breaking spaces and doubled spaces are layout, not text
        stripped = " ".join(raw.split())
        out.append(_Line(i, stripped, len(raw) - len(raw.lstrip()) if stripped else 0))
    return out


def _day(match: re.Match[str], line: _Line, what: str) -> dt.date:
    day, month, year = match.group(1), match.group(2), match.group(3)
    try:
        return dt.date(int(year), _MONTHS[month], int(day))
    except (KeyError, ValueError):
        raise PageError(line.no, what, line.text) from None


def _is_entry_mark(line: _Line) -> bool:
    return line.indent < 4 and _ENTRY_MARK.match(line.text) is not None


# ---------------------------------------------------------------------------------------------
# the page


def parse_page(text: str) -> ParsedPage:
    lines = _lines(text.removeprefix("\ufeff"))
    first = next((i for i, line in enumerate(lines) if _is_entry_mark(line)), None)
    if first is None:
        raise PageError(
            len(lines) or 1, "at least one entry: a '• live-orange' line followed by " + _TIME_EXAMPLE, "none"
        )
    blog = _parse_blog(lines[:first], first)
    entries, end = _parse_entries(lines, first)
    publisher = publisher_of(lines[end].text)
    if publisher is not None and publisher.headline_only is not None:
        kind = publisher.headline_only
        entries = [e._replace(kind=kind) if e.kind == "post" and not e.body and not e.media else e for e in entries]
    return ParsedPage(blog=blog, entries=_with_keys(entries))


class Publisher(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """data/publishers.json: a publisher known by the line that ends its entries."""

    name: str
    end_line: str  # a regular expression matched at the start of that line
    headline_only: EntryKind | None = None  # the kind of an entry that is only a headline


class _Publishers(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    comment: str | None = None
    publishers: tuple[Publisher, ...] = ()


@functools.cache
def _publishers() -> tuple[tuple[re.Pattern[str], Publisher], ...]:
    data = msgspec.json.decode(PUBLISHERS.read_bytes(), type=_Publishers)
    return tuple((re.compile(p.end_line), p) for p in data.publishers)


def publisher_of(end_line: str) -> Publisher | None:
    """The publisher whose pages end their entries with this line, if data/publishers.json knows it."""
    return next((p for pattern, p in _publishers() if pattern.match(end_line)), None)


def slugify(text: str, limit: int = 120) -> str:
    """Lowercase a-z0-9 words joined by '-', starting with a letter, at most `limit` long."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    ascii_text = ascii_text.lower().replace("'", "")  # typographic apostrophes are gone already
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"blog-{slug}".rstrip("-")
    return slug[:limit].rstrip("-")


def blog_slug(title: str, published: dt.date) -> str:
    """The series name (the title before its first colon) and the date.

    A live blog's title is rewritten through the day ("...: Kyiv says Russian targets damaged
    in Crimea") while its series name stays, so the slug, and with it the blog a re-import
    updates, stays put. Two blogs of one series on one date are one blog.
    """
    series = title.split(":", 1)[0].strip() or title
    suffix = "-" + published.isoformat()
    return slugify(series, 120 - len(suffix)) + suffix


def _parse_blog(head: list[_Line], first_entry: int) -> ParsedBlog:
    published_at_line = next((i for i, line in enumerate(head) if _PUBLISHED.match(line.text)), None)
    if published_at_line is None:
        raise PageError(first_entry + 1, "a 'Published On 13 Sep 2023' line above the first entry")
    pub_line = head[published_at_line]
    match = _PUBLISHED.match(pub_line.text)
    assert match is not None
    published = _day(match, pub_line, "a 'Published On' date such as '13 Sep 2023'")

    above = published_at_line - 1
    authors: tuple[str, ...] = ()
    if above >= 0 and head[above].text.startswith("By "):
        authors = _authors(head[above].text[3:])
        above -= 1

    hero: Image | None = None
    if above >= 0 and (credited := _CREDITED.match(head[above].text)):
        alt = None
        if above - 1 >= 0 and head[above - 1].text:
            alt = head[above - 1].text
            above -= 1
        hero = Image(alt=alt, caption=credited.group(1) or None, credit=credited.group(2))
        above -= 1

    start = max((i + 1 for i in range(above + 1) if _is_chrome(head[i])), default=0)
    texts = [line.text for line in head[start : above + 1] if line.text]
    if not texts:
        raise PageError(pub_line.no, "the blog's title above the 'Published On' line")
    title = texts[0]
    if len(title) > 500:
        raise PageError(next(line.no for line in head[start:] if line.text), "a title of at most 500 characters")
    standfirst = " ".join(texts[1:]) or None

    intro = head[published_at_line + 1 :]
    closed = any("This blog is now closed" in line.text for line in intro)
    summary = tuple(line.text[1:].strip() for line in intro if line.text.startswith("•") and line.text[1:].strip())
    return ParsedBlog(
        slug=blog_slug(title, published),
        title=title,
        standfirst=standfirst,
        status="closed" if closed else "live",
        authors=authors,
        published_at=dt.datetime.combine(published, dt.time(), dt.UTC),
        summary=summary,
        hero_image=hero,
    )


def _is_chrome(line: _Line) -> bool:
    return line.text in _CHROME or line.text.startswith("•")


def _authors(text: str) -> tuple[str, ...]:
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", text.strip())
    return tuple(p.strip() for p in parts if p.strip())


# ---------------------------------------------------------------------------------------------
# entries


class _Entry(NamedTuple):
    published_at: dt.datetime
    headline: str
    body: tuple[str, ...]
    kind: EntryKind
    media: tuple[Media, ...]


def _parse_entries(lines: list[_Line], i: int) -> tuple[list[_Entry], int]:
    """The entries from line i on, and the index of the line at the margin that ends them."""
    entries: list[_Entry] = []
    n = len(lines)
    while True:
        mark = lines[i]
        i += 1
        while i < n and not lines[i].text:
            i += 1
        if i == n:
            raise PageError(mark.no + 1, _TIME_EXAMPLE + " below the entry marker", "the end of the page")
        published_at, i = _entry_time(lines, i)
        while i < n and not lines[i].text:
            i += 1
        if i == n or lines[i].indent < 4:
            found = "the end of the page" if i == n else lines[i].text
            raise PageError(lines[i].no if i < n else lines[-1].no + 1, "the entry's headline", found)
        headline = lines[i]
        if len(headline.text) > 1000:
            raise PageError(headline.no, "a headline of at most 1000 characters")
        i += 1
        content: list[_Line] = []
        while i < n and (not lines[i].text or lines[i].indent >= 4):
            content.append(lines[i])
            i += 1
        entries.append(_entry(published_at, headline.text, content))
        if i == n:
            raise PageError(
                lines[-1].no + 1,
                "a line at the margin ending the entries (such as 'Source: Al Jazeera and news agencies')",
                "the end of the page: is it cut short?",
            )
        if not _is_entry_mark(lines[i]):
            return entries, i


def _entry_time(lines: list[_Line], i: int) -> tuple[dt.datetime, int]:
    """The entry's time in UTC: the shown date and time, moved by its distance to the GMT line."""
    line = lines[i]
    match = _ENTRY_TIME.match(line.text)
    if match is None:
        raise PageError(line.no, _TIME_EXAMPLE, line.text)
    day = _day(match, line, _TIME_EXAMPLE)
    hour, minute = int(match.group(4)), int(match.group(5))
    if hour > 23 or minute > 59:
        raise PageError(line.no, _TIME_EXAMPLE, line.text)
    shown = dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)
    i += 1
    j = i
    while j < len(lines) and not lines[j].text:
        j += 1
    if j < len(lines) and lines[j].text.startswith("(") and lines[j].text.endswith("GMT)"):
        gmt = _GMT.match(lines[j].text)
        if gmt is None or int(gmt.group(1)) > 23 or int(gmt.group(2)) > 59:
            raise PageError(lines[j].no, "the time in GMT such as '(19:33 GMT)'", lines[j].text)
        # the shown time is local to some zone; its offset from GMT is within -12h..+14h
        offset = (hour * 60 + minute - int(gmt.group(1)) * 60 - int(gmt.group(2))) % 1440
        if offset > 14 * 60:
            offset -= 1440
        return shown - dt.timedelta(minutes=offset), j + 1
    return shown, i


def _blocks(content: list[_Line]) -> list[list[str]]:
    """Runs of adjacent non-blank lines."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in content:
        if line.text:
            current.append(line.text)
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _images(block: list[str]) -> list[Image] | None:
    """An image block is (alt, 'caption [credit]') pairs; None if the block is not one."""
    if len(block) % 2:
        return None
    images: list[Image] = []
    for alt, caption in zip(block[0::2], block[1::2], strict=True):
        credited = _CREDITED.match(caption)
        if credited is None:
            return None
        images.append(Image(alt=alt or None, caption=credited.group(1) or None, credit=credited.group(2)))
    return images


def _signature(text: str) -> tuple[str, str, dt.date] | None:
    """(author, handle, date) of an embedded post's closing line, or None if `text` is not one."""
    match = _SIGNATURE.match(text)
    if match is None or match.group("month") not in _LONG_MONTHS:
        return None
    try:
        day = dt.date(int(match.group("year")), _LONG_MONTHS[match.group("month")], int(match.group("day")))
    except ValueError:
        return None
    return match.group("author").strip(), match.group("handle"), day


def _tweet_weight(text: str) -> int:
    """Roughly how X counts a post: links as 23 characters, attached media not at all."""
    text = _PIC.sub("", text)
    return len(_URL.sub("x" * 23, text))


def _entry(published_at: dt.datetime, headline: str, content: list[_Line]) -> _Entry:
    # items in page order: ("text", lines) or ("media", item)
    items: list[tuple[str, list[str] | Media]] = []
    for block in _blocks(content):
        signature = _signature(block[-1])
        if signature is not None:
            items.append(("media", _embed(items, block[:-1], signature)))
            continue
        images = _images(block)
        if images is not None:
            items.extend(("media", image) for image in images)
        else:
            items.append(("text", block))

    body: list[str] = []
    media: list[Media] = []
    for tag, value in items:
        if tag == "text":
            assert isinstance(value, list)
            body.extend(value)
        else:
            assert isinstance(value, Image | Embed)
            media.append(value)

    kind: EntryKind = "post"
    if _WATCH_HEADLINE.match(headline) or (body and body[-1].startswith("Watch") and body[-1].endswith(":")):
        # "Watch: ..." or a closing "Watch the moment ...:" introduce a video the text form drops
        kind = "video"
    elif any(isinstance(m, Image) and (m.alt or "").upper().startswith("INTERACTIVE") for m in media):
        kind = "interactive"
    elif body and _READ_MORE.match(body[-1]):
        kind = "read_more"
        body.pop()
    return _Entry(published_at, headline, tuple(body), kind, tuple(media))


def _embed(items: list[tuple[str, list[str] | Media]], own: list[str], signature: tuple[str, str, dt.date]) -> Embed:
    """The embedded post a signature line closes, taking its text from the paragraphs above.

    The text form loses the post's frame, so its paragraphs are told from the reporter's by
    position and size: the block right above the signature always belongs to the post, and
    earlier blocks do while the post stays within X's 280 characters and the block does not
    introduce it (ending in ':').
    """
    paragraphs: list[str] = ["\n".join(own)] if own else []
    if not paragraphs and items and items[-1][0] == "text":
        block = items.pop()[1]
        assert isinstance(block, list)
        paragraphs.append("\n".join(block))
    weight = sum(_tweet_weight(p) for p in paragraphs)
    while items and items[-1][0] == "text":
        block = items[-1][1]
        assert isinstance(block, list)
        candidate = "\n".join(block)
        weight += _tweet_weight(candidate) + 2
        if weight > _TWEET_BUDGET or candidate.endswith(":"):
            break
        paragraphs.insert(0, candidate)
        items.pop()
    return Embed(
        text="\n\n".join(paragraphs),
        author=signature[0],
        handle=signature[1],
        date=signature[2],
    )


def _with_keys(entries: list[_Entry]) -> tuple[ParsedEntry, ...]:
    """Key each entry by its minute and its place among the entries of that minute, counted
    from the oldest, so that entries added on top of an updated page leave the keys alone."""
    seen: Counter[str] = Counter()
    keyed: list[ParsedEntry] = []
    for entry in reversed(entries):
        minute = entry.published_at.strftime("%Y-%m-%dT%H:%MZ")
        seen[minute] += 1
        keyed.append(
            ParsedEntry(
                external_key=f"{minute}/{seen[minute]}",
                published_at=entry.published_at,
                headline=entry.headline,
                body=entry.body,
                kind=entry.kind,
                media=entry.media,
            )
        )
    return tuple(reversed(keyed))
