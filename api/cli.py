"""The `sitrep` command line: serve, migrate, import, relink, generate, keys, actors.

Every expected failure is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import click
import msgspec

from api.cli_actors import actors
from api.cli_keys import keys
from api.settings import Settings, from_env
from db.bitcount import TRACK_WORDS

T = TypeVar("T")


class CliError(click.ClickException):
    """A failure the user can act on: printed as one line."""


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield a DSN: DATABASE_DIRECT_URL or DATABASE_URL (the CLI's work and migrations take
    session advisory locks and run long transactions: never through a transaction pooler),
    or the embedded server (started for as long as we run)."""
    if settings.direct_url:
        yield settings.direct_url
        return
    from db import embedded

    try:
        dsn, server = embedded.start(settings.data_dir)
    except Exception as exc:  # the wheel's failures are many and untyped
        raise CliError(
            f"could not start the embedded PostgreSQL in {settings.data_dir}: {exc}"
            f" (see {embedded.wheel_log_path(settings.data_dir)} and {embedded.log_path(settings.data_dir)})"
        ) from exc
    try:
        yield dsn
    finally:
        embedded.stop(server)


def run_db(settings: Settings, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run one coroutine on a fresh connection, with migrations applied, turning DB failures into one line."""
    from db.migrate import migrate
    from db.pool import connect

    async def main(dsn: str) -> T:
        conn = await connect(dsn, timeout=10)
        try:
            await migrate(conn)
            return await work(conn)
        finally:
            await conn.close()

    with database(settings) as dsn:
        try:
            return asyncio.run(main(dsn))
        except (OSError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise CliError(f"cannot reach the database: {exc}") from exc
        except asyncpg.PostgresError as exc:
            raise CliError(f"database error: {exc}") from exc


@click.group()
@click.version_option(package_name="sitrep")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """sitrep: live conflict-news coverage as a data API."""
    try:
        ctx.obj = from_env()
    except (ValueError, OSError) as exc:
        raise CliError(f"bad setting: {exc}") from exc


@cli.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Apply pending database migrations."""
    from db.migrate import migrate as apply

    async def work(conn: asyncpg.Connection) -> list[str]:
        return await apply(conn)  # run_db applied them already; this reports none left

    run_db(settings, work)
    click.echo("migrations: up to date")


@cli.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every IPv4 interface)."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port (each with its own pool and caches).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log one line per request on stdout (stream tokens in URLs are masked).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people; json: one JSON object a line (time, level, logger, message or request fields).",
)
@click.pass_obj
def serve(settings: Settings, host: str, port: int, workers: int, access_log: bool, log_format: str) -> None:
    """Serve the API (the embedded database and the sample data unless DATABASE_URL is set).

    The port is bound first: if it is taken, this says so and exits with 1 before starting
    anything. "serving on" is printed once the app is up and answering.
    """
    import logging.config

    from api import logformat, serving

    log_config = logformat.config(log_format, access_log)
    logging.config.dictConfig(log_config)
    say = logging.getLogger("sitrep.serve").info
    try:
        sock = serving.bind(host, port)
    except serving.BindError as exc:
        raise CliError(str(exc)) from exc
    with sock, database(settings) as dsn:
        os.environ["SITREP_WORKERS"] = str(workers)  # the processes share the instance's entry cache budget
        if not settings.database_url:
            os.environ["DATABASE_URL"] = dsn  # the embedded server, for the app's processes
            from db import embedded

            say(f"embedded PostgreSQL in {settings.data_dir}; its log: {embedded.log_path(settings.data_dir)}")

        async def prepare(conn: asyncpg.Connection) -> None:
            if settings.load_sample:
                from db.sample import load_sample_if_empty

                loaded = await load_sample_if_empty(conn)
                if loaded:
                    say(f"loaded the sample dataset: {loaded}")

        run_db(msgspec.structs.replace(settings, database_url=dsn), prepare)
        bound_port = sock.getsockname()[1]
        ready = f"sitrep serving on http://{host}:{bound_port} (docs at /docs, GraphQL at /graphql)"
        if not serving.run(
            sock,
            workers=workers,
            log_config=log_config,
            access_log=access_log,
            ready=ready,
            shutdown_timeout=settings.shutdown_timeout_seconds,
        ):
            raise CliError("the server did not start; see the messages above")


@cli.command()
@click.option("--entries", required=True, type=click.IntRange(1, 100_000_000), help="How many entries to write.")
@click.option("--seed", default=1, show_default=True, type=int, help="The same seed writes the same rows.")
@click.option("--blogs", type=click.IntRange(1), help="How many blogs to spread them over [default: one a day].")
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    help="The day (UTC) the three years of entries end on [default: today]; fix it to reproduce a run later.",
)
@click.pass_obj
def generate(settings: Settings, entries: int, seed: int, blogs: int | None, end: datetime | None) -> None:
    """Write synthetic data at scale (benchmarks, demos) in one transaction."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from db.generate import generate as write

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        until = end.replace(tzinfo=UTC) if end else None
        result = run_db(
            settings, lambda conn: write(conn, entries=entries, seed=seed, blogs=blogs, end=until, progress=progress)
        )
    click.echo(f"generated {result.summary()}")
    if result.triggers_bypassed:
        click.echo("(bulk rows were copied with triggers off: the change log does not list them)", err=True)


@cli.command("track-words")
@click.option(
    "--min-entries",
    default=TRACK_WORDS,
    show_default=True,
    type=click.IntRange(1),
    help="Give a bitmap to every search term (word, or two adjacent words) in at least this many entries.",
)
@click.pass_obj
def track_words(settings: Settings, min_entries: int) -> None:
    """Choose the search terms whose full-text counts come from bitmaps (count=true with q).

    Counts stay exact either way; a term without a bitmap is counted from the entries that have
    it. Run it again as the text grows (nightly, say): writes to entries wait while it runs."""

    async def work(conn: asyncpg.Connection) -> int:
        async with conn.transaction():
            n = int(await conn.fetchval("SELECT sitrep_track_search_terms($1)", min_entries))
        await conn.execute("ANALYZE entry_bits, search_terms")
        return n

    n = run_db(settings, work)
    click.echo(f"tracking {n:,} search terms found in at least {min_entries:,} entries")


@cli.command("import")
@click.argument("pages", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_obj
def import_pages(settings: Settings, pages: tuple[Path, ...]) -> None:
    """Import live-blog pages saved as text; a page imported again updates what changed.

    Every page is read and parsed before anything is written, so a bad page in the list
    stops the run with nothing imported; each page is then one transaction.
    """
    from db.errors import DomainError
    from db.ingest.page import PageError, ParsedPage, parse_page

    parsed: list[tuple[Path, ParsedPage]] = []
    for path in pages:
        try:
            parsed.append((path, parse_page(path.read_text(encoding="utf-8"))))
        except OSError as exc:
            raise CliError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CliError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
        except PageError as exc:
            raise CliError(f"{path}: not a live-blog page: {exc.detail}") from exc

    async def work(conn: asyncpg.Connection) -> None:
        from db.ingest.gazetteer import ensure_gazetteer
        from db.ingest.linker import Linker
        from db.ingest.store import import_page

        await ensure_gazetteer(conn)
        linker = await Linker.load(conn)
        for path, page in parsed:
            try:
                r = await import_page(conn, page, linker)
            except DomainError as exc:
                raise CliError(f"{path}: {exc.detail}") from exc
            click.echo(
                f"{path}: blog {r.blog_slug} {r.blog}, entries: "
                f"{r.created} created, {r.updated} updated, {r.unchanged} unchanged"
            )

    run_db(settings, work)


@cli.command()
@click.option(
    "--gazetteer",
    "gazetteer_path",
    type=click.Path(path_type=Path),
    help="The gazetteer file to load first [default: the shipped db/ingest/data/gazetteer.json].",
)
@click.pass_obj
def relink(settings: Settings, gazetteer_path: Path | None) -> None:
    """Reload the gazetteer, then link every stored entry again (entries whose links change are updated)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from db.errors import DomainError
    from db.ingest import relink as relinking
    from db.ingest.gazetteer import DEFAULT_PATH, read

    path = gazetteer_path or DEFAULT_PATH
    try:
        read(path)  # a bad file stops here, before any connection
    except DomainError as exc:
        raise CliError(exc.detail) from exc

    async def work(conn: asyncpg.Connection) -> relinking.RelinkResult:
        # the bar appears once the gazetteer is loaded, so a refused file prints one line only
        bar = Progress(
            TextColumn("relinking"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        task = bar.add_task("relink", total=None)

        def progress(done: int, total: int) -> None:
            if done == 0:
                bar.start()
            bar.update(task, completed=done, total=total)

        try:
            return await relinking.relink(conn, path, progress=progress)
        except DomainError as exc:
            raise CliError(exc.detail) from exc
        finally:
            bar.stop()

    result = run_db(settings, work)
    g = result.gazetteer
    click.echo(
        f"gazetteer {path}: actors {g.actors_inserted} new, {g.actors_updated} changed; "
        f"locations {g.locations_inserted} new, {g.locations_updated} changed; "
        f"sources {g.sources_inserted} new, {g.sources_updated} changed"
    )
    click.echo(f"entries: {result.entries} relinked, {result.changed} with changed links")


cli.add_command(keys)
cli.add_command(actors)


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="sitrep", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
