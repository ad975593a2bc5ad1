"""`sitrep actors …` run as an editor runs it, after `sitrep import` of a page about Sudan."""

from __future__ import annotations

from pathlib import Path

from db.ingest.evaluate import PAGES
from tests.api.test_cli_import import assert_one_line_error, sitrep

SUDAN = next(page for name, page, _ in PAGES if "sudan" in name)


def test_review_discovered_actors(db_dsn: str, tmp_path: Path) -> None:
    def run(*args: str) -> str:
        done = sitrep(*args, database_url=db_dsn, data_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "10 created" in run("import", str(SUDAN))
    listed = run("actors", "discovered")
    assert "rapid-support-forces: Rapid Support Forces (also RSF), military, discovered, 4 entries" in listed
    assert "found by 'The Rapid Support Forces (RSF)'" in listed
    assert run("actors", "confirm", "rapid-support-forces") == "rapid-support-forces: confirmed\n"
    assert "rapid-support-forces" in run("actors", "discovered", "--status", "confirmed")
    assert (
        run("actors", "rename", "unhcr", "UN Refugee Agency")
        == "unhcr: renamed 'UN Refugee Agency' (un-refugee-agency)\n"
    )
    merged = run("actors", "merge", "sudanese-armed-forces", "rapid-support-forces")
    assert merged == "sudanese-armed-forces: merged into rapid-support-forces (1 entries relinked)\n"
    assert_one_line_error(
        sitrep("actors", "merge", "nobody", "rapid-support-forces", database_url=db_dsn, data_dir=tmp_path),
        "no actor 'nobody'",
    )
    assert_one_line_error(
        sitrep("actors", "confirm", "vladimir-putin", database_url=db_dsn, data_dir=tmp_path), "was not discovered"
    )
