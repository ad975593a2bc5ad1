"""Domain errors raised by the data layer; each API skin maps them in one table."""

from __future__ import annotations

import asyncpg


class DomainError(Exception):
    """Base of every error the data layer means a caller to see."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidInput(DomainError):
    pass


class Unavailable(DomainError):
    """The database cannot be reached or did not answer in time."""


# Every failure that means "the database is down, restarting or too slow right now" (a 503 or
# SERVICE_UNAVAILABLE, retry later), for every skin and the auth middleware alike. asyncpg's
# InternalClientError ("cannot switch to state ...; another operation is in progress") is what a
# pooled connection says when the server went away under it mid-operation, as in a restart.
UNAVAILABLE: tuple[type[Exception], ...] = (
    Unavailable,
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.PostgresConnectionError,  # class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: statement_timeout, shutdown
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections
    asyncpg.exceptions.CannotConnectNowError,
)
# what background work (listeners, counters) shrugs off and retries: the above, and any SQL error
DATABASE_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE, asyncpg.PostgresError)


# constraint name -> (error class, field it concerns)
_CONSTRAINTS: dict[str, tuple[type[DomainError], str]] = {
    "blogs_slug_key": (Conflict, "slug"),
    "actors_slug_key": (Conflict, "slug"),
    "locations_slug_key": (Conflict, "slug"),
    "sources_slug_key": (Conflict, "slug"),
    "blogs_slug_check": (InvalidInput, "slug"),
    "actors_slug_check": (InvalidInput, "slug"),
    "locations_slug_check": (InvalidInput, "slug"),
    "sources_slug_check": (InvalidInput, "slug"),
    "blogs_status_check": (InvalidInput, "status"),
    "entries_kind_check": (InvalidInput, "kind"),
    "actors_kind_check": (InvalidInput, "kind"),
    "locations_kind_check": (InvalidInput, "kind"),
    "sources_kind_check": (InvalidInput, "kind"),
    "actors_country_check": (InvalidInput, "country"),
    "locations_country_check": (InvalidInput, "country"),
    "locations_latitude_check": (InvalidInput, "latitude"),
    "locations_longitude_check": (InvalidInput, "longitude"),
    "locations_parent_fkey": (InvalidInput, "parent"),
    "locations_parent_not_self": (InvalidInput, "parent"),
    "locations_parent_cycle": (InvalidInput, "parent"),
    "entries_blog_fkey": (InvalidInput, "blog"),
    "entry_actors_actor_fkey": (InvalidInput, "actors"),
    "entry_actors_role_check": (InvalidInput, "actors"),
    "entry_locations_location_fkey": (InvalidInput, "locations"),
    "entry_sources_source_fkey": (InvalidInput, "sources"),
    "media_kind_check": (InvalidInput, "media"),
}


def from_postgres(exc: asyncpg.PostgresError) -> DomainError | None:
    """The domain error a constraint violation stands for, or None if it is not one we know."""
    name = getattr(exc, "constraint_name", None)
    if name and name in _CONSTRAINTS:
        cls, field = _CONSTRAINTS[name]
        return cls(f"{field}: {getattr(exc, 'detail', None) or exc}", field=field)
    return None
