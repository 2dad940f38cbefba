"""Private Redis and PostgreSQL servers for tests that stop and restart them: the shared
servers on this machine belong to every test run (and other checkouts) at once."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis
from support import free_port, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivateRedis:
    """`redis-server` on its own port. Without persistence a restart loses every key, as a
    crashed Redis without AOF does; `persistent` keeps an append-only file written before
    each reply (`appendfsync always`), so a crash loses nothing it acknowledged."""

    def __init__(self, log_dir: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log_dir = log_dir
        self._persistent = persistent
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        if self._persistent:
            data = self._log_dir / f"redis-{self.port}"
            data.mkdir(exist_ok=True)
            persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data)]
        else:
            persistence = ["--appendonly", "no"]
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", *persistence],
            stdout=(self._log_dir / f"redis-{self.port}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(self.is_up, timeout=10, what="the private redis-server")
        return self

    def is_up(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_connect_timeout=0.5) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False

    def pause(self) -> None:
        """SIGSTOP: the server still accepts connections but never answers, as a hung one."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGKILL: the server vanishes mid-conversation, as in a crash."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb under /tmp, trust auth), run as the postgres
    user because PostgreSQL refuses to run as root."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tasklens-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> PrivatePostgres:
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        return self

    def ctl(self, action: str) -> None:
        options = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        extra = ["-m", "immediate"] if action in ("stop", "restart") else []
        log = str(self.dir / "postgres.log")  # without -l the server would hold our pipe
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            log,
            "-o",
            options,
            "-w",
            *extra,
            action,
        )

    def _processes(self) -> list[int]:
        """The server and its backends."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *map(int, children)]

    def pause(self) -> None:
        """SIGSTOP to the server and every backend: connections stay open and are accepted,
        and nothing is ever answered, as by a hung server."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):  # a backend that just ended
                os.kill(pid, sig)

    def destroy(self) -> None:
        with_data = self.data / "postmaster.pid"
        if with_data.exists():
            self.ctl("stop")
        shutil.rmtree(self.dir, ignore_errors=True)
