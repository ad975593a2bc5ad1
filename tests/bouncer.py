"""A throwaway PgBouncer (Debian's package, 1.18) on a spare loopback port, for tests and benchmarks.

Its own config, auth file, log and pid file in a temporary folder; `auth_type = trust` (the user
must still be listed in the auth file); the pool mode and server-side pool size are the caller's.
Debian's package may run a system PgBouncer on 6432: this one never touches that port or
/etc/pgbouncer. As root, PgBouncer refuses to start, so it runs as the `postgres` user.

    with PgBouncer(upstream="postgresql://postgres@127.0.0.1:5432/mydb", pool_mode="transaction") as pgb:
        pgb.dsn  # postgresql://postgres@127.0.0.1:<port>/mydb
        pgb.show("POOLS")  # the admin console (simple protocol only, so through psql)
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    assert found, "pgbouncer is needed (apt-get install -y pgbouncer)"
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PgBouncer:
    def __init__(
        self,
        upstream: str,
        *,
        pool_mode: str = "transaction",
        pool_size: int = 2,
        statement_timeout_ms: int | None = 5000,
        max_client_conn: int = 200,
    ) -> None:
        parts = urlsplit(upstream)
        self.database = parts.path.lstrip("/") or "postgres"
        self.user = parts.username or "postgres"
        self.host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 5432
        self.pool_mode = pool_mode
        self.pool_size = pool_size
        self.statement_timeout_ms = statement_timeout_ms
        self.max_client_conn = max_client_conn
        self.folder = Path(tempfile.mkdtemp(prefix="sitrep-pgbouncer-"))
        self.port = _free_port()
        self.dsn = f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"
        self.process: subprocess.Popen[bytes] | None = None
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            record = pwd.getpwnam("postgres")
            os.chown(self.folder, record.pw_uid, record.pw_gid)
            self._as = {"user": record.pw_uid, "group": record.pw_gid}

    @property
    def log(self) -> Path:
        return self.folder / "pgbouncer.log"

    def config(self) -> str:
        entry = f"host={self.host} port={self.upstream_port} dbname={self.database}"
        if self.statement_timeout_ms is not None:
            # no session state survives a transaction here: the server connection carries the timeout
            entry += f" connect_query='SET statement_timeout = {int(self.statement_timeout_ms)}'"
        return (
            "[databases]\n"
            f"{self.database} = {entry}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.folder / 'userlist.txt'}\n"
            f"admin_users = {self.user}\n"
            f"pool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.pool_size}\n"
            "reserve_pool_size = 0\n"
            f"max_client_conn = {self.max_client_conn}\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.folder / 'pgbouncer.pid'}\n"
            "server_check_delay = 1\n"
        )

    def start(self) -> PgBouncer:
        (self.folder / "userlist.txt").write_text(f'"{self.user}" ""\n')
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(self.config())
        for path in (ini, self.folder / "userlist.txt"):
            if self._as:
                os.chown(path, self._as["user"], self._as["group"])
        self.process = subprocess.Popen(
            [pgbouncer_binary(), "-q", str(ini)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **self._as,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.process.returncode}: {self._log_tail()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen within 10 s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text()[-2000:]
        except OSError:
            return "(no log)"

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on the admin console: one dict a row."""
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "pgbouncer",
             "-X", "-A", "-F", "\t", "-P", "footer=off", "-c", f"SHOW {what}"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.splitlines()  # fmt: skip
        if not out:
            return []
        names = out[0].split("\t")
        return [dict(zip(names, line.split("\t"), strict=False)) for line in out[1:]]

    def pool(self) -> dict[str, str]:
        """This database's row of SHOW POOLS."""
        return next(row for row in self.show("POOLS") if row["database"] == self.database)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
