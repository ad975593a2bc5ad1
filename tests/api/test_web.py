"""The browser pages' wiring: / and /static served from the package, open without a key,
GraphiQL from local assets, and every static file shipped in the wheel (pyproject package-data)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from litestar.testing import AsyncTestClient

from api.app import create_app
from api.settings import Settings
from api.web import STATIC_DIR

REPO = Path(__file__).resolve().parents[2]


async def test_the_pages_and_their_assets_are_open_and_local(db_dsn: str) -> None:
    # even where every API read needs a key, the pages load (their API calls then need one)
    app = create_app(Settings(secret="web-test-secret", require_key=True, anonymous_rate=2), db_dsn)
    async with AsyncTestClient(app) as client:
        page = await client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        graphiql = await client.get("/graphql", headers={"Accept": "text/html"})
        assert graphiql.status_code == 200
        for html in (page.text, graphiql.text):
            assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
            assert assets
            assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from another host
            for path in assets:  # more requests than the anonymous rate (2): static files are not charged
                response = await client.get(path)
                assert response.status_code == 200, path
                assert int(response.headers["content-length"]) > 0
        assert (await client.get("/static/nothing-here.js")).status_code == 404
        assert (await client.get("/static/%2e%2e/web.py")).status_code == 404  # nothing outside static/
        assert (await client.get("/v1/blogs")).status_code == 401


def test_every_static_file_is_package_data() -> None:
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api"]
    package = STATIC_DIR.parent
    files = [p.relative_to(package) for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert len(files) > 20
    # setuptools globs: `*` stays within one folder
    missed = [str(f) for f in files if not any(len(f.parts) == len(Path(g).parts) and f.match(g) for g in globs)]
    assert missed == []
