"""A small Python client for the sitrep REST API: typed answers, pages followed by cursor, NDJSON
exports streamed, writes made safe to retry, and the change feed as an iterator for mirroring.

    from sitrep_client import Client

    with Client("http://127.0.0.1:8000", key="...") as api:
        for entry in api.entries(actor="dmitry-peskov", since="2023-09-13T00:00:00Z"):
            print(entry.published_at, entry.headline)

The answers are the server's own response models (db.rows, db.changes) and the write bodies its
own request models (db.writes), so the client and the server cannot disagree on a field.
"""

from sitrep_client.client import ApiError, Client, ImportResult
from sitrep_client.models import (
    Actor,
    ActorCreate,
    ActorPatch,
    Blog,
    BlogCreate,
    Change,
    Entry,
    EntryCreate,
    EntryPatch,
    Location,
    LocationCreate,
    LocationPatch,
    Source,
    SourceCreate,
    SourcePatch,
    TimelineBucket,
)

__all__ = [
    "Actor",
    "ActorCreate",
    "ActorPatch",
    "ApiError",
    "Blog",
    "BlogCreate",
    "Change",
    "Client",
    "Entry",
    "EntryCreate",
    "EntryPatch",
    "ImportResult",
    "Location",
    "LocationCreate",
    "LocationPatch",
    "Source",
    "SourceCreate",
    "SourcePatch",
    "TimelineBucket",
]
