"""`sitrep actors …`: review the actors the linker discovered (list, confirm, rename, merge)."""

from __future__ import annotations

import click

from api.cli_keys import _run
from api.settings import Settings
from db.ingest import curate


@click.group()
def actors() -> None:
    """Review the actors the linker discovered in imported pages."""


@actors.command("discovered")
@click.option("--status", type=click.Choice(["discovered", "confirmed"]), help="Only actors of this status.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.pass_obj
def list_discovered(settings: Settings, status: str | None, limit: int) -> None:
    """List discovered actors, newest first, with the phrase that found each."""
    rows = _run(settings, lambda conn: curate.discovered(conn, status, limit))
    for r in rows:
        aliases = f" (also {', '.join(r.aliases)})" if r.aliases else ""
        click.echo(
            f"{r.slug}: {r.name}{aliases}, {r.kind}, {r.status}, {r.entries} entries; found by {r.discovered_by!r}"
        )
    if not rows:
        click.echo("no discovered actors")


@actors.command()
@click.argument("slug")
@click.pass_obj
def confirm(settings: Settings, slug: str) -> None:
    """Confirm a discovered actor."""
    _run(settings, lambda conn: curate.confirm(conn, slug))
    click.echo(f"{slug}: confirmed")


@actors.command()
@click.argument("slug")
@click.argument("name")
@click.option("--slug", "new_slug", help="The new slug [default: made from the name].")
@click.pass_obj
def rename(settings: Settings, slug: str, name: str, new_slug: str | None) -> None:
    """Give an actor its proper NAME; the old name stays an alias, its links stay."""
    _, target = _run(settings, lambda conn: curate.rename(conn, slug, name, new_slug))
    click.echo(f"{slug}: renamed {name!r} ({target})")


@actors.command()
@click.argument("source")
@click.argument("into")
@click.pass_obj
def merge(settings: Settings, source: str, into: str) -> None:
    """Merge actor SOURCE into INTO: its entries link INTO, its names become INTO's aliases."""
    _, moved = _run(settings, lambda conn: curate.merge(conn, source, into))
    click.echo(f"{source}: merged into {into} ({moved} entries relinked)")
