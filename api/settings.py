"""Settings: one frozen struct read from the environment once, then passed down."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str | None = None
    # a direct connection to the primary for what a pooler cannot carry: LISTEN (live hub, key
    # cache), migrations and the CLI, the pool watchdog's ping; None: database_url
    database_direct_url: str | None = None
    # what sits between the pool and PostgreSQL (db/pool.py): off, session or transaction
    pgbouncer: str = "off"
    data_dir: Path = Path.home() / ".local" / "share" / "sitrep"
    secret: str = ""
    redis_url: str | None = None
    # prefixes every Redis key this app writes (tests give each test its own)
    redis_prefix: str = "sitrep:"
    # HMAC key for API key hashes; defaults to `secret` (changing it invalidates every key)
    key_pepper: str = ""
    require_key: bool = False
    anonymous_rate: int = 60
    statement_timeout_ms: int = 5000
    db_connect_timeout: float = 2.0  # seconds to open a connection
    db_acquire_timeout: float = 2.0  # seconds a request waits for a pooled connection
    db_check_timeout: float = 1.0  # seconds for readiness, key lookups and the probe of a database known down
    pool_min: int = 2
    pool_max: int = 10
    # connections planned for each statement's values (plan_cache_mode = force_custom_plan), for the
    # pages whose best plan depends on them (db/where.needs_custom_plan); 0, or PgBouncer in
    # transaction mode: those pages ask for it inside a transaction of their own instead
    plan_pool_max: int = 4
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 2 * 1024 * 1024
    load_sample: bool = True
    stream_heartbeat_seconds: float = 15.0  # SSE comment lines on an idle stream
    stream_queue: int = 1000  # changes buffered per subscriber before a lagging one is cut off
    entry_cache_mb: int = 16  # rendered entries kept for JSON lists per instance (api/entry_cache.py); 0: none
    workers: int = 1  # server processes of this instance (`sitrep serve --workers`): they share entry_cache_mb
    graphql_cache_mb: int = 16  # GraphQL's entry answers kept per selection per instance, split like entry_cache_mb (schema/compiled.py); 0: none
    export_slots: int = 2  # whole-result exports running at once per instance, each on its own connection
    export_per_caller: int = 1  # of those, how many one key (or anonymous address) may run
    export_give_way: float = 0.5  # most seconds an export waits between chunks for pages in flight (api/foreground.py)
    compression: bool = True  # brotli/gzip for clients that ask (api/compression.py)
    compress_min_bytes: int = 1024  # smaller bodies go as they are
    rest_fast: bool = (
        True  # GET /v1/entries JSON pages answered without Litestar's per-request machinery (api/fast_entries.py)
    )
    shutdown_timeout_seconds: int = 10  # `sitrep serve`: how long SIGTERM waits for requests to finish
    ws_max_subscriptions: int = 100  # GraphQL subscriptions open on one WebSocket
    caller_max_subscriptions: int = 500  # ... and for one key (or anonymous address), per instance
    apq_ttl_seconds: int = 86400  # persisted GraphQL documents kept in Redis since last use (schema/persisted.py)
    # streaming replicas of database_url that reads may use (db/replicas.py, api/routing.py)
    replica_urls: tuple[str, ...] = ()
    replica_max_lag: float = 5.0  # seconds behind the primary before a replica leaves rotation
    replica_wait: float = 0.05  # seconds a read waits for a replica to replay its Sitrep-Min-Seq

    @property
    def direct_url(self) -> str | None:
        return self.database_direct_url or self.database_url


def _bool(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _data_dir(env: dict[str, str]) -> Path:
    if env.get("SITREP_DATA_DIR"):
        return Path(env["SITREP_DATA_DIR"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sitrep"


def _secret(data_dir: Path, given: str | None) -> str:
    """SITREP_SECRET, or one generated on first run and kept in the data folder."""
    if given:
        return given
    path = data_dir / "secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.write_text(value)
    path.chmod(0o600)
    return value


PGBOUNCER_MODES = ("off", "session", "transaction")


def _pgbouncer(value: str) -> str:
    mode = value.strip().lower() or "off"
    if mode == "statement":
        raise ValueError(
            "SITREP_PGBOUNCER=statement is not supported: sitrep runs multi-statement transactions"
            " (pages read in one snapshot, writes); use pool_mode = transaction"
        )
    if mode not in PGBOUNCER_MODES:
        raise ValueError(f"SITREP_PGBOUNCER must be one of {', '.join(PGBOUNCER_MODES)}, got {value!r}")
    return mode


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    data_dir = _data_dir(env)
    origins = tuple(o.strip() for o in env.get("SITREP_CORS_ORIGINS", "").split(",") if o.strip())
    return Settings(
        database_url=env.get("DATABASE_URL") or None,
        database_direct_url=env.get("DATABASE_DIRECT_URL") or None,
        pgbouncer=_pgbouncer(env.get("SITREP_PGBOUNCER", "off")),
        data_dir=data_dir,
        secret=_secret(data_dir, env.get("SITREP_SECRET")),
        redis_url=env.get("REDIS_URL") or None,
        redis_prefix=env.get("SITREP_REDIS_PREFIX", "sitrep:"),
        key_pepper=env.get("SITREP_KEY_PEPPER", ""),
        require_key=_bool(env.get("SITREP_REQUIRE_KEY", "false")),
        anonymous_rate=int(env.get("SITREP_ANONYMOUS_RATE", "60")),
        statement_timeout_ms=int(env.get("SITREP_STATEMENT_TIMEOUT_MS", "5000")),
        db_connect_timeout=float(env.get("SITREP_DB_CONNECT_TIMEOUT", "2")),
        db_acquire_timeout=float(env.get("SITREP_DB_ACQUIRE_TIMEOUT", "2")),
        db_check_timeout=float(env.get("SITREP_DB_CHECK_TIMEOUT", "1")),
        pool_min=int(env.get("SITREP_POOL_MIN", "2")),
        pool_max=int(env.get("SITREP_POOL_MAX", "10")),
        plan_pool_max=max(0, int(env.get("SITREP_PLAN_POOL_MAX", "4"))),
        cors_origins=origins,
        max_body_bytes=int(env.get("SITREP_MAX_BODY_BYTES", str(2 * 1024 * 1024))),
        load_sample=_bool(env.get("SITREP_LOAD_SAMPLE", "true")),
        stream_heartbeat_seconds=float(env.get("SITREP_HEARTBEAT_SECONDS", "15")),
        stream_queue=int(env.get("SITREP_LIVE_QUEUE", "1000")),
        entry_cache_mb=int(env.get("SITREP_ENTRY_CACHE_MB", "16")),
        workers=max(1, int(env.get("SITREP_WORKERS", "1"))),
        graphql_cache_mb=int(env.get("SITREP_GRAPHQL_CACHE_MB", "16")),
        export_slots=int(env.get("SITREP_EXPORT_SLOTS", "2")),
        export_per_caller=int(env.get("SITREP_EXPORT_PER_CALLER", "1")),
        export_give_way=float(env.get("SITREP_EXPORT_GIVE_WAY", "0.5")),
        compression=_bool(env.get("SITREP_COMPRESSION", "true")),
        compress_min_bytes=int(env.get("SITREP_COMPRESS_MIN_BYTES", "1024")),
        rest_fast=_bool(env.get("SITREP_REST_FAST", "true")),
        shutdown_timeout_seconds=int(env.get("SITREP_SHUTDOWN_TIMEOUT", "10")),
        ws_max_subscriptions=int(env.get("SITREP_WS_MAX_SUBSCRIPTIONS", "100")),
        caller_max_subscriptions=int(env.get("SITREP_KEY_MAX_SUBSCRIPTIONS", "500")),
        apq_ttl_seconds=int(env.get("SITREP_APQ_TTL", "86400")),
        replica_urls=tuple(u.strip() for u in env.get("DATABASE_REPLICA_URLS", "").split(",") if u.strip()),
        replica_max_lag=float(env.get("SITREP_REPLICA_MAX_LAG", "5")),
        replica_wait=float(env.get("SITREP_REPLICA_WAIT", "0.05")),
    )
