"""The fault suite's own services: a PostgreSQL cluster, a redis-server and sitrep instances,
each on a spare port of 127.0.0.1 in a temporary folder, each stoppable, freezable and
restartable, and all of them killed and removed whatever happens (`Services.close`).

As root, PostgreSQL runs as the `postgres` system user (it refuses to run as root), with its
data in a folder that user owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]
SECRET = "fault-suite-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


def _signal_tree(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to a process and all its descendants (those that still exist)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(sig)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class Postgres:
    """A cluster of its own: initdb, pg_ctl start/stop/restart, SIGSTOP/SIGCONT of all its processes."""

    def __init__(self, folder: Path) -> None:
        binary = _pg_bin()
        if binary is None:
            raise RuntimeError("the fault suite needs PostgreSQL's server binaries (initdb, pg_ctl)")
        self.bin = binary
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.frozen: list[int] = []

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            record = pwd.getpwnam(self.user)
            os.chown(self.folder, record.pw_uid, record.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.folder}'\n"
                "fsync = off\nfull_page_writes = off\nmax_connections = 100\n"
            )

    def allow_replication(self) -> None:
        """Before start: let standbys stream from this cluster (initdb's pg_hba already trusts
        replication from 127.0.0.1) and keep enough WAL for one that was stopped for a while."""
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 10\nwal_keep_size = '256MB'\nhot_standby = on\n")

    def standby(self, folder: Path) -> Postgres:
        """A streaming standby of this (running) cluster: pg_basebackup -R into a folder of its
        own, on a port of its own; start it with `start()`."""
        replica = Postgres(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if replica.user is not None:
            record = pwd.getpwnam(replica.user)
            os.chown(folder, record.pw_uid, record.pw_gid)
        replica._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-D", str(replica.data),
            "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
        )  # fmt: skip
        with (replica.data / "postgresql.conf").open("a") as conf:  # later lines win over the primary's
            conf.write(
                f"port = {replica.port}\nunix_socket_directories = '{folder}'\nhot_standby_feedback = on\n"
                "max_standby_streaming_delay = 1s\n"
            )
        return replica

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self, mode: str = "fast") -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-m", mode, "-w", "-t", "30",
            "restart",
        )  # fmt: skip

    def postmaster(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: connections stay open, nothing answers."""
        pid = self.postmaster()
        assert pid is not None
        root = psutil.Process(pid)
        self.frozen = [pid, *(c.pid for c in root.children(recursive=True))]
        for each in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGSTOP)

    def thaw(self) -> None:
        for each in self.frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(each, signal.SIGCONT)
        self.frozen = []

    def close(self) -> None:
        self.thaw()
        pid = self.postmaster()
        if pid is None:
            return
        with contextlib.suppress(Exception):
            _signal_tree(pid, signal.SIGCONT)
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "10", "stop", timeout=15)
        if psutil.pid_exists(pid):
            _signal_tree(pid, signal.SIGKILL)


class Redis:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("the fault suite needs redis-server")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_port(self.port, 10):
            raise RuntimeError("redis-server did not start")

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


class Instance:
    """`sitrep serve` on a port of its own (the production entry point: migrations, then uvicorn)."""

    def __init__(self, name: str, folder: Path, env: dict[str, str]) -> None:
        self.name = name
        self.folder = folder
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_codes: list[int] = []
        self.log = folder / f"{name}.log"

    def start(self, within: float = 60) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        sitrep = Path(sys.executable).parent / "sitrep"
        environment = {
            **os.environ,
            "SITREP_DATA_DIR": str(self.folder / self.name),
            "PYTHONFAULTHANDLER": "1",  # a stuck instance told to abort leaves its stacks in its log
            **self.env,
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(sitrep), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=REPO,
                env=environment,
                stdout=log,
                stderr=log,
                start_new_session=True,  # signals from the terminal reach pytest, not the instances
            )
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"instance {self.name} exited with {self.process.returncode}; see {self.log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"instance {self.name} did not answer /health within {within} s")
            time.sleep(0.05)

    def terminate(self, within: float = 15) -> int:
        """SIGTERM, then wait for the exit (SIGKILL after `within` seconds); the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack to the log
            try:
                code = self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                _signal_tree(self.process.pid, signal.SIGKILL)
                code = self.process.wait(timeout=5)
        self.exit_codes.append(code)
        self.process = None
        return code

    def log_tail(self, lines: int = 40) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            _signal_tree(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        self.process = None


class Services:
    """Everything one run needs, under one temporary folder; `close` undoes all of it."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sitrep-faults-"))
        self.folder.chmod(0o755)
        self.postgres = Postgres(self.folder / "pg")
        self.redis = Redis(self.folder)
        self.instances: list[Instance] = []
        self.standbys: list[Postgres] = []

    def add_standby(self) -> Postgres:
        """A streaming standby of `postgres` (which must allow replication and run)."""
        standby = self.postgres.standby(self.folder / f"standby{len(self.standbys)}")
        self.standbys.append(standby)
        return standby

    def add_instance(self, name: str, env: dict[str, str]) -> Instance:
        instance = Instance(name, self.folder / "instances", env)
        self.instances.append(instance)
        return instance

    def close(self) -> None:
        for instance in self.instances:
            with contextlib.suppress(Exception):
                instance.close()
        with contextlib.suppress(Exception):
            self.redis.stop()
        for standby in self.standbys:
            with contextlib.suppress(Exception):
                standby.close()
        with contextlib.suppress(Exception):
            self.postgres.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def services() -> Iterator[Services]:
    running = Services()
    try:
        yield running
    finally:
        running.close()
