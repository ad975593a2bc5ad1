"""What the linker finds in an entry's text: the seam between the importer, writes and the linker."""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["speaker", "mentioned"]


class LinkedActor(msgspec.Struct, frozen=True):
    slug: str
    role: Role = "mentioned"


class Links(msgspec.Struct, frozen=True):
    actors: tuple[LinkedActor, ...] = ()
    locations: tuple[str, ...] = ()  # slugs
    sources: tuple[str, ...] = ()  # slugs
