"""`sitrep keys …`: create, list, revoke and rotate API keys (the same as /v1/keys for admins).

A new or rotated key is printed alone on the last line of stdout, so scripts can take it with
`tail -n 1`; it is never shown again (only its hash is stored).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
import click

from api.settings import Settings
from db import keys as keydb
from db.errors import DomainError

T = TypeVar("T")


def _pepper(settings: Settings) -> str:
    return settings.key_pepper or settings.secret


def _run(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    from api.cli import CliError, run_db

    try:
        return run_db(settings, work)
    except DomainError as exc:
        raise CliError(exc.detail) from exc


def _expires(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r} (e.g. 2027-01-01T00:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _describe(row: keydb.KeyRow) -> str:
    expires = row.expires_at.isoformat() if row.expires_at else "never"
    origins = ", ".join(row.origins) or "any (server key)"
    return (
        f"key {row.id} {row.name!r}: scopes {','.join(row.scopes)}, {row.rate} requests a minute, "
        f"expires {expires}, origins {origins}"
    )


@click.group()
def keys() -> None:
    """Manage API keys (shown once at creation, stored only as hashes)."""


@keys.command()
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option("--scopes", default="read", show_default=True, help="Comma-separated: read, write, admin.")
@click.option("--rate", default=600, show_default=True, type=int, help="Requests a minute, across all instances.")
@click.option("--expires", help="When the key stops working (ISO 8601, e.g. 2027-01-01T00:00Z; UTC if no zone).")
@click.option("--origin", "origins", multiple=True, help="A browser origin the key may be used from (repeatable).")
@click.option("--owner", help="A contact for the key (e.g. an email address).")
@click.pass_obj
def create(
    settings: Settings,
    name: str,
    scopes: str,
    rate: int,
    expires: str | None,
    origins: tuple[str, ...],
    owner: str | None,
) -> None:
    """Create a key and print it (last line): it is not shown again."""
    expires_at = _expires(expires)

    async def work(conn: asyncpg.Connection) -> tuple[keydb.KeyRow, str]:
        return await keydb.create_key(
            conn,
            _pepper(settings),
            name=name,
            scopes=scopes.split(","),
            rate=rate,
            owner=owner,
            expires_at=expires_at,
            origins=origins,
        )

    row, token = _run(settings, work)
    click.echo(f"created {_describe(row)}")
    click.echo("the key follows; store it now, it cannot be shown again:")
    click.echo(token)


@keys.command("list")
@click.pass_obj
def list_keys(settings: Settings) -> None:
    """List keys: id, name, scopes, rate, state, last use (never a secret)."""
    rows = _run(settings, keydb.list_keys)
    now = datetime.now(UTC)
    header = ("ID", "NAME", "SCOPES", "RATE/MIN", "STATE", "LAST USED")
    lines = [header] + [
        (
            r.id,
            r.name,
            ",".join(r.scopes),
            str(r.rate),
            r.state(now),
            r.last_used_at.strftime("%Y-%m-%dT%H:%MZ") if r.last_used_at else "never",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@keys.command()
@click.argument("key_id")
@click.pass_obj
def revoke(settings: Settings, key_id: str) -> None:
    """Revoke a key: every instance refuses it within a second."""

    async def work(conn: asyncpg.Connection) -> keydb.KeyRow:
        return await keydb.revoke_key(conn, key_id)

    row = _run(settings, work)
    click.echo(f"revoked key {row.id} {row.name!r}")


@keys.command()
@click.argument("key_id")
@click.pass_obj
def rotate(settings: Settings, key_id: str) -> None:
    """Give a key a new secret (same id and settings) and print it; the old secret stops working."""

    async def work(conn: asyncpg.Connection) -> tuple[keydb.KeyRow, str]:
        return await keydb.rotate_key(conn, _pepper(settings), key_id)

    row, token = _run(settings, work)
    click.echo(f"rotated {_describe(row)}")
    click.echo("the new key follows; store it now, it cannot be shown again:")
    click.echo(token)
