"""Small live-blog pages in the seed's text form, written here (our words), for tests that need
a page shaped just so: entries around midnight, a shown time in another zone, and so on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Post(NamedTuple):
    shown: str  # "13 Sep 2023 - 23:50"
    gmt: str | None  # "23:50", or None to leave out the "(HH:MM GMT)" line
    headline: str
    paragraphs: Sequence[str] = ("A paragraph of the entry.",)


def page(
    posts: Sequence[Post],
    *,
    title: str = "Test war live: a quiet night",
    published: str = "13 Sep 2023",
    closed: bool = False,
    chrome: bool = True,
) -> str:
    lines: list[str] = []
    if chrome:
        lines += ["Skip links", "", "Navigation menu", "", "  • News", "  • Features", "play", "", "Live", ""]
    lines += [
        title,
        "",
        "A standfirst that says what the day was about.",
        "",
        "harbour",
        "Boats in a harbour at dawn [Test Agency]",
        "By Ann Writer and Ben Editor",
        f"Published On {published}{published}",
        "",
    ]
    if closed:
        lines += ["This blog is now closed. Thank you for joining us.", ""]
    lines += ["  • The first key point.", "  • The second key point."]
    for post in posts:
        lines += ["  • live-orange", f"    {post.shown}"]
        if post.gmt is not None:
            lines.append(f"     ({post.gmt} GMT)")
        lines += ["", f"    {post.headline}", ""]
        for paragraph in post.paragraphs:
            lines += [f"    {paragraph}", ""]
    lines += ["Source: Test news agencies", "", "Related", "", "  • Something else entirely"]
    return "\n".join(lines) + "\n"
