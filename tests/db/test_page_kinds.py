"""Entry kinds from a page's structure, by the publisher rules in db/ingest/data/publishers.json."""

from __future__ import annotations

import pytest

from db.ingest.page import parse_page, publisher_of
from tests.db.pages import Post, page

POSTS = [
    Post("13 Sep 2023 - 19:00", "19:00", "What the leaders said at the summit", ()),  # a headline alone
    Post("13 Sep 2023 - 18:00", "18:00", "Shelling overnight", ("Two people were hurt.",)),
    Post("13 Sep 2023 - 17:00", "17:00", "Watch: the harbour at dawn", ()),
]


def _kinds(text: str) -> list[str]:
    return [e.kind for e in parse_page(text).entries]


def test_a_headline_alone_is_a_video_on_a_publisher_whose_rule_says_so() -> None:
    text = page(POSTS).replace("Source: Test news agencies", "Source: Al Jazeera and news agencies")
    assert _kinds(text) == ["video", "post", "video"]


def test_elsewhere_a_headline_alone_is_a_post() -> None:
    assert _kinds(page(POSTS)) == ["post", "post", "video"]


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("Source: Al Jazeera and news agencies", "Al Jazeera"),
        ("Source: Al Jazeera", "Al Jazeera"),
        ("Source: Al Jazeeran Times", None),
        ("Source: Test news agencies", None),
    ],
)
def test_publishers_are_known_by_the_line_that_ends_their_entries(line: str, name: str | None) -> None:
    publisher = publisher_of(line)
    assert (publisher.name if publisher else None) == name
