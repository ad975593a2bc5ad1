"""API keys: `sk_<id>_<secret>`, stored as HMAC-SHA256(pepper, id:secret), looked up by id.

The secret exists only in the token handed out once at creation (or rotation); the table
holds its keyed hash, so a copy of the database does not let anyone call the API. Every
change a running instance may have cached (rotation, revocation) is announced on the
PostgreSQL channel `sitrep_keys` in the same transaction, so it reaches every instance
at commit.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import urlsplit

import asyncpg
import msgspec

from db.errors import Conflict, InvalidInput, NotFound
from db.page import Key, Page, Paged, paged
from db.sql import query

SCOPES = ("read", "write", "admin")
CHANNEL = "sitrep_keys"
SORT = "created_at"  # the one order of the key list (oldest first), named in its cursors
MAX_RATE = 1_000_000
_ID_ALPHABET = string.ascii_lowercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 12
_SECRET_LENGTH = 40
_TOKEN = re.compile(r"sk_([a-z0-9]{12})_([A-Za-z0-9]{40})")
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?")

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

# a plain connection or one borrowed from a pool
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
KeyState = Literal["active", "expired", "revoked"]


class KeyRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    owner: str | None
    scopes: tuple[str, ...]
    rate: int
    origins: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime) -> KeyState:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class StoredKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key as the authenticator needs it: its settings and the hash of its secret."""

    row: KeyRow
    secret_hash: bytes


class DailyUsage(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    requests: int
    limited: int


def _row(record: asyncpg.Record) -> KeyRow:
    return KeyRow(
        id=record["id"],
        name=record["name"],
        owner=record["owner"],
        scopes=tuple(record["scopes"]),
        rate=record["rate"],
        origins=tuple(record["origins"]),
        created_at=record["created_at"],
        expires_at=record["expires_at"],
        revoked_at=record["revoked_at"],
        rotated_at=record["rotated_at"],
        last_used_at=record["last_used_at"],
    )


# --- tokens -------------------------------------------------------------------------------


def format_token(key_id: str, secret: str) -> str:
    return f"sk_{key_id}_{secret}"


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    match = _TOKEN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def hash_secret(pepper: str, key_id: str, secret: str) -> bytes:
    if not pepper:
        raise RuntimeError("the key pepper is empty")
    return hmac.new(pepper.encode(), f"{key_id}:{secret}".encode(), hashlib.sha256).digest()


def secret_matches(pepper: str, key_id: str, secret: str, stored: bytes) -> bool:
    return hmac.compare_digest(hash_secret(pepper, key_id, secret), stored)


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


# --- validation ---------------------------------------------------------------------------


def normalise_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    cleaned = [s.strip().lower() for s in scopes if s.strip()]
    unknown = sorted(set(cleaned) - set(SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}; use read, write, admin", field="scopes")
    if not cleaned:
        raise InvalidInput("give at least one scope: read, write, admin", field="scopes")
    return tuple(s for s in SCOPES if s in cleaned)


def normalise_origin(origin: str) -> str:
    """`https://Example.org/` -> `https://example.org`; anything but scheme://host[:port] is refused."""
    value = origin.strip()
    parts = urlsplit(value)
    if parts.path in {"", "/"} and not parts.query and not parts.fragment:
        value = f"{parts.scheme}://{parts.netloc}".lower()
    if not _ORIGIN.fullmatch(value):
        raise InvalidInput(f"not an origin (scheme://host[:port]): {origin!r}", field="origins")
    return value


def _validate(name: str, owner: str | None, rate: int, expires_at: datetime | None) -> None:
    if not 1 <= len(name.strip()) <= 200:
        raise InvalidInput("name must be 1 to 200 characters", field="name")
    if owner is not None and not 1 <= len(owner) <= 200:
        raise InvalidInput("owner must be 1 to 200 characters", field="owner")
    if not 1 <= rate <= MAX_RATE:
        raise InvalidInput(f"rate must be 1 to {MAX_RATE} requests a minute", field="rate")
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise InvalidInput("the expiry time must carry a zone (e.g. 2027-01-01T00:00Z)", field="expires_at")
        if expires_at <= datetime.now(UTC):
            raise InvalidInput("the expiry time must be in the future", field="expires_at")


# --- queries ------------------------------------------------------------------------------


async def create_key(
    conn: Conn,
    pepper: str,
    *,
    name: str,
    scopes: list[str] | tuple[str, ...],
    rate: int,
    owner: str | None = None,
    expires_at: datetime | None = None,
    origins: list[str] | tuple[str, ...] = (),
) -> tuple[KeyRow, str]:
    """Create a key; return it and its token (the only time the secret exists)."""
    clean_scopes = normalise_scopes(scopes)
    clean_origins = tuple(dict.fromkeys(normalise_origin(o) for o in origins))
    _validate(name, owner, rate, expires_at)
    for _ in range(5):  # ids are random; a clash is astronomically rare but cheap to retry
        key_id = _random(_ID_ALPHABET, _ID_LENGTH)
        secret = _random(_SECRET_ALPHABET, _SECRET_LENGTH)
        try:
            async with conn.transaction():
                record = await conn.fetchrow(
                    query("insert_key"),
                    key_id,
                    hash_secret(pepper, key_id, secret),
                    name.strip(),
                    owner,
                    list(clean_scopes),
                    rate,
                    list(clean_origins),
                    expires_at,
                )
                await conn.execute(query("notify_key_changed"), key_id)
        except asyncpg.UniqueViolationError:
            continue
        assert record is not None
        return _row(record), format_token(key_id, secret)
    raise Conflict("could not allocate a key id", field="id")


async def list_keys(conn: Conn) -> list[KeyRow]:
    return [_row(r) for r in await conn.fetch(query("list_keys"))]


async def list_keys_page(conn: Conn, page: Page) -> Paged[KeyRow]:
    """A keyset page of keys, oldest first: (created_at, id), the id being the key's text id."""
    after: Key | None = page.after
    records = await conn.fetch(
        query("list_keys_page"),
        after[0] if after else None,
        after[1] if after else None,
        page.limit + 1,
    )
    keys: list[Key] = [(r["created_at"], r["id"]) for r in records]
    total = int(await conn.fetchval(query("count_keys"))) if page.count else None
    return paged([_row(r) for r in records], keys, page, total)


async def find_key(conn: Conn, key_id: str) -> StoredKey | None:
    record = await conn.fetchrow(query("get_key"), key_id)
    if record is None:
        return None
    return StoredKey(row=_row(record), secret_hash=bytes(record["secret_hash"]))


async def get_key(conn: Conn, key_id: str) -> KeyRow:
    found = await find_key(conn, key_id)
    if found is None:
        raise NotFound(f"no key {key_id!r}", field="id")
    return found.row


async def revoke_key(conn: Conn, key_id: str) -> KeyRow:
    """Revoke a key (revoking it again changes nothing); every instance refuses it at commit."""
    async with conn.transaction():
        record = await conn.fetchrow(query("revoke_key"), key_id)
        if record is None:
            raise NotFound(f"no key {key_id!r}", field="id")
        await conn.execute(query("notify_key_changed"), key_id)
    return _row(record)


async def rotate_key(conn: Conn, pepper: str, key_id: str) -> tuple[KeyRow, str]:
    """A new secret for a live key, same id and settings; the old secret is refused from commit."""
    secret = _random(_SECRET_ALPHABET, _SECRET_LENGTH)
    async with conn.transaction():
        record = await conn.fetchrow(query("rotate_key"), key_id, hash_secret(pepper, key_id, secret))
        if record is None:
            await get_key(conn, key_id)  # NotFound when there is no such key
            raise Conflict(f"key {key_id!r} is revoked; create a new one", field="id")
        await conn.execute(query("notify_key_changed"), key_id)
    return _row(record), format_token(key_id, secret)


async def touch_last_used(conn: Conn, key_id: str) -> None:
    await conn.execute(query("touch_last_used"), key_id)


async def add_usage(conn: Conn, counts: dict[tuple[str, date], tuple[int, int]]) -> None:
    """Add (requests, refused) per (key id, day) in one statement."""
    if not counts:
        return
    keys = list(counts)
    await conn.execute(
        query("add_usage"),
        [k for k, _ in keys],
        [d for _, d in keys],
        [counts[k][0] for k in keys],
        [counts[k][1] for k in keys],
    )


async def daily_usage(conn: Conn, key_id: str, days: int) -> list[DailyUsage]:
    rows = await conn.fetch(query("daily_usage"), key_id, days)
    return [DailyUsage(day=r["day"], requests=r["requests"], limited=r["limited"]) for r in rows]


async def active_origins(conn: Conn) -> frozenset[str]:
    return frozenset(r["origin"] for r in await conn.fetch(query("active_origins")))


async def active_key_ids(conn: Conn) -> frozenset[str]:
    return frozenset(r["id"] for r in await conn.fetch(query("active_key_ids")))
