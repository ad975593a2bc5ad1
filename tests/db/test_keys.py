"""API keys in the data layer: hashed storage, validation, rotation, revocation, usage counts."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from db import keys as keydb
from db.errors import Conflict, InvalidInput, NotFound

PEPPER = "test-pepper"


async def test_the_table_holds_no_secret_only_its_keyed_hash(conn: asyncpg.Connection) -> None:
    row, token = await keydb.create_key(conn, PEPPER, name="Partner", scopes=["read"], rate=60)
    parsed = keydb.parse_token(token)
    assert parsed is not None
    key_id, secret = parsed
    assert key_id == row.id
    stored = await conn.fetchrow("SELECT * FROM api_keys WHERE id = $1", row.id)
    assert stored is not None
    dumped = " ".join(str(v) for v in stored.values())
    assert secret not in dumped
    assert token not in dumped
    assert bytes(stored["secret_hash"]) == keydb.hash_secret(PEPPER, key_id, secret)
    # another pepper (another installation) cannot verify it
    assert not keydb.secret_matches("other", key_id, secret, bytes(stored["secret_hash"]))
    assert keydb.secret_matches(PEPPER, key_id, secret, bytes(stored["secret_hash"]))


async def test_keys_are_unique_and_in_the_documented_format(conn: asyncpg.Connection) -> None:
    tokens = [(await keydb.create_key(conn, PEPPER, name=f"k{i}", scopes=["read"], rate=1))[1] for i in range(5)]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert token.startswith("sk_")
        assert keydb.parse_token(token) is not None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "sk_",
        "pk_abcdefghijkl_" + "A" * 40,  # wrong prefix
        "sk_ABCDEFGHIJKL_" + "A" * 40,  # id not lowercase
        "sk_abc_" + "A" * 40,  # id too short
        "sk_abcdefghijkl_" + "A" * 39,  # secret too short
        "sk_abcdefghijkl_" + "A" * 39 + "-",  # not alphanumeric
        "sk_abcdefghijkl_" + "A" * 40 + "\n",
        " sk_abcdefghijkl_" + "A" * 40,
    ],
)
def test_malformed_tokens_do_not_parse(token: str) -> None:
    assert keydb.parse_token(token) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "", "scopes": ["read"], "rate": 10}, "name"),
        ({"name": "x" * 201, "scopes": ["read"], "rate": 10}, "name"),
        ({"name": "x", "scopes": [], "rate": 10}, "scopes"),
        ({"name": "x", "scopes": ["read", "root"], "rate": 10}, "scopes"),
        ({"name": "x", "scopes": ["read"], "rate": 0}, "rate"),
        ({"name": "x", "scopes": ["read"], "rate": 1_000_001}, "rate"),
        ({"name": "x", "scopes": ["read"], "rate": 10, "expires_at": datetime(2020, 1, 1, tzinfo=UTC)}, "expires_at"),
        ({"name": "x", "scopes": ["read"], "rate": 10, "expires_at": datetime(2099, 1, 1)}, "expires_at"),
        ({"name": "x", "scopes": ["read"], "rate": 10, "origins": ["example.org"]}, "origins"),
        ({"name": "x", "scopes": ["read"], "rate": 10, "origins": ["https://example.org/app"]}, "origins"),
        ({"name": "x", "scopes": ["read"], "rate": 10, "owner": ""}, "owner"),
    ],
)
async def test_bad_key_settings_name_the_field_and_write_nothing(
    conn: asyncpg.Connection, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await keydb.create_key(conn, PEPPER, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert await conn.fetchval("SELECT count(*) FROM api_keys") == 0


async def test_scopes_and_origins_are_normalised(conn: asyncpg.Connection) -> None:
    row, _ = await keydb.create_key(
        conn,
        PEPPER,
        name="browser",
        scopes=[" Write", "read", "read"],
        rate=5,
        origins=["https://App.Example.org/", "http://localhost:5173", "https://app.example.org"],
    )
    assert row.scopes == ("read", "write")
    assert row.origins == ("https://app.example.org", "http://localhost:5173")
    assert await keydb.active_origins(conn) == {"https://app.example.org", "http://localhost:5173"}


async def test_rotation_keeps_id_and_settings_and_refuses_the_old_secret(conn: asyncpg.Connection) -> None:
    row, old = await keydb.create_key(conn, PEPPER, name="r", scopes=["read", "write"], rate=7, origins=["https://a.b"])
    rotated, new = await keydb.rotate_key(conn, PEPPER, row.id)
    assert new != old
    assert (rotated.id, rotated.scopes, rotated.rate, rotated.origins) == (row.id, row.scopes, row.rate, row.origins)
    stored = await keydb.find_key(conn, row.id)
    assert stored is not None
    for token, works in ((old, False), (new, True)):
        parsed = keydb.parse_token(token)
        assert parsed is not None
        assert keydb.secret_matches(PEPPER, parsed[0], parsed[1], stored.secret_hash) is works


async def test_revocation_is_kept_and_a_revoked_key_cannot_be_rotated(conn: asyncpg.Connection) -> None:
    row, _ = await keydb.create_key(conn, PEPPER, name="gone", scopes=["read"], rate=5)
    first = await keydb.revoke_key(conn, row.id)
    assert first.state(datetime.now(UTC)) == "revoked"
    again = await keydb.revoke_key(conn, row.id)
    assert again.revoked_at == first.revoked_at
    with pytest.raises(Conflict):
        await keydb.rotate_key(conn, PEPPER, row.id)
    with pytest.raises(NotFound):
        await keydb.revoke_key(conn, "zzzzzzzzzzzz")
    with pytest.raises(NotFound):
        await keydb.rotate_key(conn, PEPPER, "zzzzzzzzzzzz")
    assert await keydb.active_origins(conn) == frozenset()


async def test_expiry_is_a_state(conn: asyncpg.Connection) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    row, _ = await keydb.create_key(conn, PEPPER, name="e", scopes=["read"], rate=5, expires_at=soon)
    assert row.state(datetime.now(UTC)) == "active"
    assert row.state(soon + timedelta(seconds=1)) == "expired"


async def test_every_change_is_announced_at_commit(conn: asyncpg.Connection, db_dsn: str) -> None:
    from db.pool import connect

    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await connect(db_dsn)
    try:
        await listener.add_listener(keydb.CHANNEL, lambda *args: heard.put_nowait(args[3]))
        row, _ = await keydb.create_key(conn, PEPPER, name="n", scopes=["read"], rate=5)
        await keydb.rotate_key(conn, PEPPER, row.id)
        await keydb.revoke_key(conn, row.id)
        got = [await asyncio.wait_for(heard.get(), 2) for _ in range(3)]
        assert got == [row.id] * 3
    finally:
        await listener.close()


async def test_last_used_is_written_at_most_once_a_minute(conn: asyncpg.Connection) -> None:
    row, _ = await keydb.create_key(conn, PEPPER, name="t", scopes=["read"], rate=5)
    await keydb.touch_last_used(conn, row.id)
    first = (await keydb.get_key(conn, row.id)).last_used_at
    assert first is not None
    await keydb.touch_last_used(conn, row.id)
    assert (await keydb.get_key(conn, row.id)).last_used_at == first
    await conn.execute("UPDATE api_keys SET last_used_at = now() - interval '61 seconds' WHERE id = $1", row.id)
    await keydb.touch_last_used(conn, row.id)
    later = (await keydb.get_key(conn, row.id)).last_used_at
    assert later is not None
    assert later > first - timedelta(seconds=1)


async def test_usage_batches_add_up_per_day_and_ignore_deleted_keys(conn: asyncpg.Connection) -> None:
    row, _ = await keydb.create_key(conn, PEPPER, name="u", scopes=["read"], rate=5)
    today = await conn.fetchval("SELECT current_date")
    yesterday = today - timedelta(days=1)
    await keydb.add_usage(conn, {(row.id, today): (3, 1), (row.id, yesterday): (2, 0), ("nosuchkey000", today): (9, 9)})
    await keydb.add_usage(conn, {(row.id, today): (4, 2)})
    days = await keydb.daily_usage(conn, row.id, 30)
    assert [(d.day, d.requests, d.limited) for d in days] == [(today, 7, 3), (yesterday, 2, 0)]
    assert [d.day for d in await keydb.daily_usage(conn, row.id, 1)] == [today]
    assert isinstance(days[0].day, date)
