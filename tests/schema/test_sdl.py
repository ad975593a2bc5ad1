"""The committed SDL is what the code generates: regenerate with `python -m schema.dump`."""

from __future__ import annotations

from schema import sdl
from schema.dump import PATH


def test_committed_sdl_matches_the_code() -> None:
    assert PATH.read_text(encoding="utf-8") == sdl(), "schema drift: run `python -m schema.dump` and commit"


def test_sdl_has_the_relay_basics() -> None:
    text = sdl()
    assert "interface Node {\n  id: ID!\n}" in text
    assert "node(id: ID!): Node" in text
    for type_name in ("Blog", "Entry", "Actor", "Location", "Source"):
        assert f"type {type_name} implements Node" in text
