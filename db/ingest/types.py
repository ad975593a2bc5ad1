"""What the linker finds in an entry's text: the seam between the importer, writes and the linker."""

from __future__ import annotations

from typing import Literal

import msgspec

from db.ingest.world import PlaceSpec

Role = Literal["speaker", "mentioned"]


class LinkedActor(msgspec.Struct, frozen=True):
    slug: str
    role: Role = "mentioned"


class Links(msgspec.Struct, frozen=True):
    actors: tuple[LinkedActor, ...] = ()
    locations: tuple[str, ...] = ()  # slugs
    sources: tuple[str, ...] = ()  # slugs
    # locations from the world gazetteer that `locations` names, to create if missing (countries first)
    new_locations: tuple[PlaceSpec, ...] = ()
    # actors found in the text that no catalogue lists, to create (marked discovered) if missing
    new_actors: tuple[ActorSpec, ...] = ()


class ActorSpec(msgspec.Struct, frozen=True):
    """An actor the linker discovered: created on first use, with the phrase that found it."""

    slug: str
    name: str
    kind: str  # person, organization, state, military
    country: str | None = None
    aliases: tuple[str, ...] = ()
    discovered_by: str = ""
