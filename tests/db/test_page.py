"""The live-blog page parser on our own test page (tests/data/pages), on small pages written for the
purpose, and, where the workspace has it, on the publisher's seed page too."""

# the seed quotes with typographic quotes and apostrophes; so must the expected strings
# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
import re

import msgspec
import pytest

from db.errors import InvalidInput
from db.ingest.page import Embed, Image, PageError, ParsedEntry, ParsedPage, blog_slug, parse_page
from tests.db.pages import Post, page


def at(hhmm: str, day: int = 13) -> dt.datetime:
    hour, minute = map(int, hhmm.split(":"))
    return dt.datetime(2023, 9, day, hour, minute, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def seed(seed_text: str) -> ParsedPage:
    return parse_page(seed_text)


@pytest.fixture(scope="module")
def ours(page_text: str) -> ParsedPage:
    return parse_page(page_text)


def entry_at(page_: ParsedPage, hhmm: str, day: int = 13) -> ParsedEntry:
    (found,) = [e for e in page_.entries if e.published_at == at(hhmm, day)]
    return found


def ours_at(page_: ParsedPage, when: str) -> ParsedEntry:
    """Our page's entry at '2 21:10' (day of March 2024 and UTC time)."""
    day, hhmm = when.split()
    hour, minute = map(int, hhmm.split(":"))
    stamp = dt.datetime(2024, 3, int(day), hour, minute, tzinfo=dt.UTC)
    (found,) = [e for e in page_.entries if e.published_at == stamp]
    return found


# ---------------------------------------------------------------------------------------------
# our own page: every hard case of the form, in our words


def test_our_page_has_15_entries_newest_first_across_midnight(ours: ParsedPage) -> None:
    times = [e.published_at for e in ours.entries]
    assert len(times) == 15
    assert times == sorted(times, reverse=True)
    assert times[0] == dt.datetime(2024, 3, 3, 1, 20, tzinfo=dt.UTC)
    assert times[-1] == dt.datetime(2024, 3, 2, 7, 5, tzinfo=dt.UTC)
    assert sum(t.date() == dt.date(2024, 3, 3) for t in times) == 2
    # shown as "3 Mar 2024 - 01:05" in Kyiv time, it is the evening before in UTC
    assert ours_at(ours, "2 23:05").headline == "Zelenskyy thanks the crews who guarded Odesa"
    # no "(HH:MM GMT)" line: the shown time is taken as UTC
    assert ours_at(ours, "2 09:12").headline.startswith("Ukraine's air force says 31 of 38 drones")


def test_headline_only_entries_have_no_body(ours: ParsedPage) -> None:
    clear = ours_at(ours, "3 01:20")
    assert (clear.headline, clear.body, clear.media, clear.kind) == (
        "All-clear sounded across the Kyiv region",
        (),
        (),
        "post",
    )
    watch = ours_at(ours, "2 23:55")
    assert (watch.body, watch.kind) == ((), "video")


def test_our_kinds(ours: ParsedPage) -> None:
    kinds = {e.published_at.strftime("%d %H:%M"): e.kind for e in ours.entries if e.kind != "post"}
    assert kinds == {"02 23:55": "video", "02 19:45": "interactive", "02 17:15": "read_more"}
    grain = ours_at(ours, "2 17:15")
    assert grain.body == (
        "Insurers say cargo ships leaving Odesa and Izmail now pay more for cover than at any time since the spring.",
    )


def test_our_images_carry_alt_caption_and_credit(ours: ParsedPage) -> None:
    (lavrov,) = ours_at(ours, "2 18:30").media
    assert lavrov == Image(
        alt=(
            "FILE - Sergey Lavrov speaks at a news conference in Moscow, Russia, Tuesday, Jan. 16, 2024. "
            "(AP Photo/Test Photographer, File)"
        ),
        caption="Sergey Lavrov at an earlier news conference",
        credit="File: Test Photographer/Pool via AP",
    )
    # two images in one block, each an alt line over its "caption [credit]" line
    (odesa,) = [e for e in ours.entries if e.external_key == "2024-03-02T10:30Z/1"]
    assert odesa.media == (
        Image("Smoke over the Odesa port area", "Smoke over the port area of Odesa in the early morning",
              "Handout/Odesa Regional Administration via Reuters"),
        Image("Firefighters at the warehouse", "Firefighters at the damaged warehouse",
              "Handout/State Emergency Service via AP"),
    )  # fmt: skip
    # a graphic has a credit and no caption
    graphics = ours_at(ours, "2 19:45").media
    assert [(m.caption, m.credit) for m in graphics if isinstance(m, Image)] == [(None, "Sitrep Graphics")] * 2
    # an image after the paragraphs is media, not a paragraph
    shells = ours_at(ours, "2 15:40")
    assert len(shells.body) == 3
    assert shells.body[-1].startswith("Dmytro Kuleba welcomed the promise")
    images = [m for e in ours.entries for m in e.media if isinstance(m, Image)]
    assert len(images) == 6
    assert all(m.credit and "[" not in m.credit and not (m.caption or "").endswith("]") for m in images)


def test_our_embedded_posts(ours: ParsedPage) -> None:
    fleet = ours_at(ours, "2 21:10")
    (note,) = fleet.media
    assert isinstance(note, Embed)
    assert (note.author, note.handle, note.date) == ("Ministry of Defence 🇬🇧", "@DefenceHQ", dt.date(2024, 3, 2))
    # two paragraphs of the post; the reporter's introduction (ending in ':') stays in the body
    assert note.text.startswith("Our daily note on the war – 2 March 2024")
    assert note.text.count("\n\n") == 1
    assert note.text.endswith("#StandWithUkraine pic.twitter.com/AbCd1234Ef")
    assert fleet.body == (
        "Britain's Defence Intelligence said in its daily note on X that the fleet has moved most of its larger "
        "ships east, out of reach of Ukrainian sea drones:",
        "The note said that Novorossiysk now hosts most of the fleet's landing ships.",
    )
    kuleba = ours_at(ours, "2 14:05")
    (post,) = kuleba.media
    assert isinstance(post, Embed)
    assert (post.author, post.handle) == ("Dmytro Kuleba", "@DmytroKuleba")
    assert post.text.startswith("Our partners have the shells.")
    assert len(kuleba.body) == 1
    assert not any(p.startswith("—") for e in ours.entries for p in e.body)


def test_our_blog(ours: ParsedPage) -> None:
    blog = ours.blog
    assert blog.title == "Ukraine war live: Odesa counts the damage after a night of drones"
    assert blog.standfirst is not None
    assert blog.standfirst.startswith("Air defence units worked through the night")
    assert blog.status == "closed"
    assert blog.authors == ("Tess Harbour", "Omar Lind", "Rui Santos")
    assert blog.published_at == dt.datetime(2024, 3, 2, tzinfo=dt.UTC)
    assert len(blog.summary) == 3
    assert blog.hero_image == Image(
        alt="Odesa harbour",
        caption="Firefighters spray water on a burning warehouse by the Odesa waterfront before sunrise",
        credit="Nina Koval/Reuters",
    )
    assert blog.slug == "ukraine-war-live-2024-03-02"


@pytest.mark.parametrize(
    "chrome",
    ["Skip links", "Navigation menu", "live-orange", "Related", "More from News", "Most Read", "Follow us",
     "grain corridor still carries", "Source: Sitrep", "Published On", "This blog is now closed", "Read more"],
)  # fmt: skip
def test_no_page_chrome_in_our_page(ours: ParsedPage, chrome: str) -> None:
    assert chrome not in msgspec.json.encode(ours).decode()


# ---------------------------------------------------------------------------------------------
# the publisher's seed page, where the workspace has it


def test_the_seed_has_48_entries_newest_first_from_0440_to_1933_utc(seed: ParsedPage) -> None:
    assert len(seed.entries) == 48
    assert seed.entries[0].published_at == at("19:33")
    assert seed.entries[-1].published_at == at("04:40")
    times = [e.published_at for e in seed.entries]
    assert times == sorted(times, reverse=True)
    assert all(t.tzinfo is not None and t.utcoffset() == dt.timedelta(0) for t in times)


@pytest.mark.parametrize(
    ("hhmm", "headline"),
    [
        ("19:33", "Two Ukrainian drones downed over Russia’s Bryansk region"),
        ("15:21", "Estonia denies entry to all Russian registered vehicles"),
        ("09:23", "Putin treats Kim to Siberian and far eastern delicacies: TASS"),
        ("07:05", "‘A stepping stone’"),
        ("04:40", "Putin, Kim arrive at Vostochny Cosmodrome"),
    ],
)
def test_entry_times_and_headlines(seed: ParsedPage, hhmm: str, headline: str) -> None:
    assert entry_at(seed, hhmm).headline == headline


def test_entry_bodies_are_their_paragraphs(seed: ParsedPage) -> None:
    first = entry_at(seed, "19:33")
    assert first.body == (
        "Russian anti-aircraft units downed two Ukrainian drones over the Bryansk region in southern Russia, "
        "regional governor Alexander Bogomaz said on Telegram.",
        "There were no casualties or damage, he added.",
    )
    assert len(entry_at(seed, "08:50").body) == 7
    # an image's alt and caption are media, not paragraphs
    assert entry_at(seed, "17:11").body[-1].startswith("“Those are significant damages.")


def test_kinds(seed: ParsedPage) -> None:
    kinds = {e.published_at.strftime("%H:%M"): e.kind for e in seed.entries}
    # 14:24 is a headline alone, a video on this publisher's page (db/ingest/data/publishers.json)
    assert {t for t, k in kinds.items() if k == "video"} == {"15:57", "14:24", "13:06", "12:10", "06:31"}
    assert {t for t, k in kinds.items() if k == "interactive"} == {"15:05"}
    assert {t for t, k in kinds.items() if k == "read_more"} == {"15:42", "12:37", "11:19", "08:38"}
    assert sum(k == "post" for k in kinds.values()) == 48 - 10
    # the link text of a read-more entry is not a paragraph
    assert not any(p.startswith("Read more") for e in seed.entries for p in e.body)
    assert entry_at(seed, "11:19").body[-1] == "What did they discuss?"


def test_images_carry_alt_caption_and_the_bracketed_credit(seed: ParsedPage) -> None:
    (image,) = entry_at(seed, "17:11").media
    assert image == Image(
        alt="ukraine war",
        caption="Smoke rises from the shipyard that was reportedly hit by Ukrainian missile attack in Sevastopol, Crimea",
        credit="Reuters",
    )
    (lavrov,) = entry_at(seed, "08:59").media
    assert isinstance(lavrov, Image)
    assert lavrov.caption == "Russian Foreign Minister Sergey Lavrov"
    assert lavrov.credit == "File: Alexander Zemlianichenko/Pool/via AP"
    assert lavrov.alt is not None
    assert lavrov.alt.startswith("FILE - Russian Foreign Minister")
    graphics = entry_at(seed, "15:05").media
    assert [m.credit for m in graphics if isinstance(m, Image)] == ["Al Jazeera"] * 3
    assert all(isinstance(m, Image) and m.alt and m.alt.startswith("INTERACTIVE-") for m in graphics)
    images = [m for e in seed.entries for m in e.media if isinstance(m, Image)]
    assert len(images) == 10
    assert all(m.credit and "[" not in m.credit and not (m.caption or "").endswith("]") for m in images)


def test_embedded_posts_are_media_with_author_handle_date_and_text(seed: ParsedPage) -> None:
    estonia = entry_at(seed, "15:21")
    (post,) = estonia.media
    assert isinstance(post, Embed)
    assert (post.author, post.handle, post.date) == ("Margus Tsahkna", "@Tsahkna", dt.date(2023, 9, 13))
    assert post.text.startswith("Starting from today, in 1⃣6⃣ minutes to be precise, #Estonia")
    assert post.text.endswith("until #Ukraine🇺🇦 has achieved victory.")
    # the reporter's paragraphs around the post stay the body; the post's own do not
    assert estonia.body[1].startswith("“They are not welcome here")
    assert estonia.body[-1] == "Tallinn’s Baltic neighbours, Latvia and Lithuania, have also announced the ban."
    assert not any("#Estonia" in p or p.startswith("—") for p in estonia.body)

    (defence,) = entry_at(seed, "14:42").media
    assert isinstance(defence, Embed)
    assert (defence.author, defence.handle) == ("Defense of Ukraine", "@DefenceU")
    assert defence.text.startswith("Overnight, russian terrorists")
    assert "pic.twitter.com/ftdrvAlUNE" in defence.text
    assert len(entry_at(seed, "14:42").body) == 2

    (uk,) = entry_at(seed, "08:15").media
    assert isinstance(uk, Embed)
    assert (uk.author, uk.handle) == ("Ministry of Defence 🇬🇧", "@DefenceHQ")
    assert uk.text.startswith("Latest Defence Intelligence update")
    assert "#StandWithUkraine" in uk.text
    assert entry_at(seed, "08:15").body[-1].startswith("“There is also a realistic possibility")
    assert sum(isinstance(m, Embed) for e in seed.entries for m in e.media) == 3


def test_the_blog(seed: ParsedPage) -> None:
    blog = seed.blog
    assert blog.title == "Russia-Ukraine war updates: Kyiv says Russian targets damaged in Crimea"
    assert blog.standfirst == (
        "Leaders Kim Jong Un and Vladimir Putin held a summit at Russia but there have been no confirmations "
        "of an arms deal."
    )
    assert blog.status == "closed"
    assert blog.authors == ("Kevin Doyle", "Priyanka Shankar", "Arwa Ibrahim")
    assert blog.published_at == dt.datetime(2023, 9, 13, tzinfo=dt.UTC)
    assert len(blog.summary) == 5
    assert blog.summary[0].startswith("Ukraine says it struck Russian naval targets")
    assert blog.summary[-1].endswith("home to Russia’s Black Sea Fleet.")
    assert blog.hero_image == Image(
        alt="Sevastopol",
        caption=(
            "Smoke rises from the shipyard that was reportedly hit by Ukrainian missile attack in Sevastopol, "
            "Crimea, in this still image from video taken September 13, 2023"
        ),
        credit="Reuters",
    )
    assert blog.slug == "russia-ukraine-war-updates-2023-09-13"


@pytest.mark.parametrize(
    "chrome",
    [
        "Most Read",
        "More from News",
        "Related",
        "Follow Al Jazeera",
        "Source: Al Jazeera",
        "Navigation menu",
        "Skip links",
        "live-orange",
        "Moving Fortress",  # a Related headline
        "seized Iranian ammunition",  # More from News
        "Republicans jockey",  # Most Read
        "Cookie Policy",
        "Published On",
        "This blog is now closed",
    ],
)
def test_no_page_chrome_anywhere(seed: ParsedPage, chrome: str) -> None:
    assert chrome not in msgspec.json.encode(seed).decode()


def test_keys_are_unique_and_survive_new_entries_on_top(page_text: str, ours: ParsedPage) -> None:
    keys = [e.external_key for e in ours.entries]
    assert len(set(keys)) == 15
    assert ours.entries[0].external_key == "2024-03-03T01:20Z/1"
    # two entries in one minute are told apart by their order, counted from the oldest
    assert [e.external_key for e in ours.entries if e.published_at.strftime("%H:%M") == "10:30"] == [
        "2024-03-02T10:30Z/2",
        "2024-03-02T10:30Z/1",
    ]
    # an update posted in the same minute as the newest entry goes on top; the old keys stay
    marker = "  • live-orange\n    3 Mar 2024 - 01:20"
    addition = "  • live-orange\n    3 Mar 2024 - 01:20\n     (01:20 GMT)\n\n    A later update in the same minute\n\n"
    updated = parse_page(page_text.replace(marker, addition + marker, 1))
    assert len(updated.entries) == 16
    assert [e.external_key for e in updated.entries[1:]] == keys
    assert updated.entries[0].external_key == "2024-03-03T01:20Z/2"
    assert updated.entries[0].headline == "A later update in the same minute"


def test_a_changed_headline_keeps_the_key(page_text: str, ours: ParsedPage) -> None:
    edited = parse_page(page_text.replace("Six hurt in Odesa, governor says", "Six people hurt in Odesa"))
    assert [e.external_key for e in edited.entries] == [e.external_key for e in ours.entries]
    assert [e.headline for e in edited.entries if e.external_key == "2024-03-02T10:30Z/1"] == [
        "Six people hurt in Odesa"
    ]


def test_the_seed_keys_survive_new_entries_on_top(seed_text: str, seed: ParsedPage) -> None:
    keys = [e.external_key for e in seed.entries]
    assert len(set(keys)) == 48
    assert seed.entries[0].external_key == "2023-09-13T19:33Z/1"
    marker = "  • live-orange\n    13 Sep 2023 - 19:33"
    addition = "  • live-orange\n    13 Sep 2023 - 19:33\n     (19:33 GMT)\n\n    A later update in the same minute\n\n"
    updated = parse_page(seed_text.replace(marker, addition + marker, 1))
    assert [e.external_key for e in updated.entries[1:]] == keys
    assert updated.entries[0].external_key == "2023-09-13T19:33Z/2"


def test_entries_either_side_of_midnight_and_in_another_zone() -> None:
    parsed = parse_page(
        page(
            [
                Post("14 Sep 2023 - 00:10", "00:10", "Just after midnight"),
                Post("14 Sep 2023 - 01:33", "22:33", "Shown in Kyiv time, an hour before midnight GMT"),
                Post("13 Sep 2023 - 23:50", None, "Just before midnight, no GMT line"),
                Post("13 Sep 2023 - 09:05", "11:05", "Shown two hours behind GMT"),
            ]
        )
    )
    assert [e.published_at for e in parsed.entries] == [
        at("00:10", day=14),
        at("22:33"),
        at("23:50"),
        at("11:05"),
    ]
    assert [e.external_key for e in parsed.entries] == [
        "2023-09-14T00:10Z/1",
        "2023-09-13T22:33Z/1",
        "2023-09-13T23:50Z/1",
        "2023-09-13T11:05Z/1",
    ]


def test_a_page_without_chrome_and_still_live() -> None:
    parsed = parse_page(page([Post("13 Sep 2023 - 10:00", "10:00", "Morning")], chrome=False))
    assert parsed.blog.title == "Test war live: a quiet night"
    assert parsed.blog.status == "live"
    assert parsed.blog.authors == ("Ann Writer", "Ben Editor")
    assert parsed.blog.summary == ("The first key point.", "The second key point.")
    assert parsed.blog.hero_image == Image(alt="harbour", caption="Boats in a harbour at dawn", credit="Test Agency")
    closed = parse_page(page([Post("13 Sep 2023 - 10:00", "10:00", "Morning")], closed=True))
    assert closed.blog.status == "closed"


def test_the_slug_follows_the_series_and_the_date() -> None:
    first = blog_slug("Russia-Ukraine war live: Kyiv says X", dt.date(2023, 9, 13))
    later = blog_slug("Russia-Ukraine war live: Moscow says Y", dt.date(2023, 9, 13))
    assert first == later == "russia-ukraine-war-live-2023-09-13"
    assert blog_slug("Russia-Ukraine war live: Kyiv says X", dt.date(2023, 9, 14)) != first
    long = blog_slug("Ünïcode’s " + "very long words " * 20, dt.date(2023, 9, 13))
    assert len(long) <= 120
    assert long.startswith("unicodes-very-long")
    assert long.endswith("-2023-09-13")
    assert re.fullmatch(r"[a-z][a-z0-9-]*", long)
    assert blog_slug("2023: a year", dt.date(2023, 1, 1)) == "blog-2023-2023-01-01"


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    ("edit", "needle", "expected"),
    [
        (lambda t: t.replace("2 Mar 2024 - 17:15", "2 Mar 2024 - 17:1x"), "17:1x", "an entry time"),
        (lambda t: t.replace("2 Mar 2024 - 17:15", "2 Mar 2024 - 25:15"), "25:15", "an entry time"),
        (lambda t: t.replace("2 Mar 2024 - 17:15", "31 Feb 2024 - 17:15"), "31 Feb", "an entry time"),
        (lambda t: t.replace("(15:40 GMT)", "(15:4 GMT)"), "(15:4 GMT)", "the time in GMT"),
        (lambda t: t.replace("Published On", "Posted"), "live-orange", "a 'Published On"),
    ],
)
def test_a_malformed_page_names_the_line(page_text: str, edit: object, needle: str, expected: str) -> None:
    assert callable(edit)
    text = edit(page_text)
    with pytest.raises(PageError) as caught:
        parse_page(text)
    line = _line_of(text, needle)
    assert caught.value.line == line
    assert caught.value.detail.startswith(f"line {line}: expected {expected}")
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize("keep", [36, 37, 40, 100, 150, 185])
def test_a_truncated_page_is_refused(page_text: str, keep: int) -> None:
    lines = page_text.splitlines()[:keep]
    with pytest.raises(PageError) as caught:
        parse_page("\n".join(lines))
    assert keep <= caught.value.line <= keep + 1
    assert re.match(r"line \d+: expected ", caught.value.detail)


@pytest.mark.parametrize("text", ["", "\n\n", "just some words\non two lines\n", "Published On 13 Sep 2023\n"])
def test_something_that_is_not_a_live_blog_is_refused(text: str) -> None:
    with pytest.raises(PageError, match=r"^line \d+: expected at least one entry"):
        parse_page(text)


def test_an_entry_without_a_headline_is_refused() -> None:
    text = page([Post("13 Sep 2023 - 10:00", "10:00", "Morning")]).replace("    Morning\n\n    A paragraph", "")
    with pytest.raises(PageError, match="expected the entry's headline"):
        parse_page(text)


def test_a_byte_order_mark_and_windows_line_ends_change_nothing(page_text: str, ours: ParsedPage) -> None:
    assert parse_page("\ufeff" + page_text.replace("\n", "\r\n")) == ours
