"""The embedded mode's SQLite file: one process owns it, and it stays the file it was.

Two embedded servers on one file would each take the other's rows for a dead predecessor's
and close its live tasks as lost, so `tasklens serve` holds an OS lock (flock) on
`<file>.lock` beside the database for the life of the process; the kernel drops it when the
process dies, however it dies. The lock file also remembers that a database was created
there: a start that finds the file gone refuses to create an empty one in its place (the
history and the tokens would be gone without a word) unless told to with
`tasklens serve --new-database`. While the server runs, /health checks that the file is
still there, is still the one opened at the start, and still takes a write.
The embedded mode on PostgreSQL (no Redis) has the same one-server rule, kept with a session
advisory lock on a connection of its own (`claim_postgres`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tasklens.migrate import SQLITE_VERSION_TABLE

logger = logging.getLogger(__name__)

PROBE_EVERY_SECONDS = 5.0  # /health may be called often; a write probe is a WAL commit
PROBE_TIMEOUT_SECONDS = 3.0

# What /health says about the file (its `database` field); no path: /health is public.
MISSING = "missing"
REPLACED = "replaced"
UNWRITABLE = "unwritable"


class DatabaseFileError(RuntimeError):
    """Startup refused; the message is one line that names the file."""


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and in-memory databases."""
    if not database_url.startswith("sqlite"):
        return None
    _, _, path = database_url.partition(":///")
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).absolute()


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino]


class DatabaseFile:
    """The lock on one SQLite file, held from `claim` until the last `release`."""

    def __init__(self, path: Path, lock_fd: int, record: dict[str, Any]) -> None:
        self.path = path
        self.lock_path = lock_path_of(path)
        self._fd = lock_fd
        self._record = record
        self._users = 1
        self._identity: list[int] | None = None
        self._probed_at = -PROBE_EVERY_SECONDS
        self._probe_problem: str | None = None
        self._reported: str | None = None
        self._engine: AsyncEngine | None = None

    def opened(self, engine: AsyncEngine) -> None:
        """The database exists now (migrated): remember which file it is, here for /health
        and in the lock file for the next start; /health probes writes through `engine`."""
        self._engine = engine
        stat = self.path.stat()
        self._identity = _identity(stat)
        known = self._record.get("identity")
        if known is not None and known != self._identity:
            logger.warning(
                "%s is not the file TaskLens last ran on (replaced since; a restored backup?)",
                self.path,
            )
        if known != self._identity or "created" not in self._record:
            self._record.setdefault("created", datetime.now(UTC).isoformat(timespec="seconds"))
            self._record["identity"] = self._identity
            self._write_record()

    async def problem(self) -> str | None:
        """MISSING, REPLACED or UNWRITABLE, else None. The existence and identity checks
        are one stat; the write probe runs at most every PROBE_EVERY_SECONDS."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            found: str | None = MISSING
        else:
            if self._identity is not None and _identity(stat) != self._identity:
                found = REPLACED
            else:
                found = await self._probed()
        if found != self._reported:
            if found is None:
                logger.warning("health: the database file %s is writable again", self.path)
            else:
                logger.error("health: the database file %s is %s", self.path, found)
            self._reported = found
        return found

    async def _probed(self) -> str | None:
        now = time.monotonic()
        if now - self._probed_at >= PROBE_EVERY_SECONDS and self._engine is not None:
            self._probed_at = now
            try:
                await asyncio.wait_for(self._write_probe(self._engine), PROBE_TIMEOUT_SECONDS)
            except Exception as exc:
                logger.warning("health: write probe on %s failed: %s", self.path, exc)
                self._probe_problem = UNWRITABLE
            else:
                self._probe_problem = None
        return self._probe_problem

    async def _write_probe(self, engine: AsyncEngine) -> None:
        """A committed write through the app's connections (a full disk, an I/O error),
        and the kernel's word on a new one: connections opened before a remount read-only
        or a change of permissions still write, the next start's would not. (Not a test
        open: closing a descriptor of the file would drop SQLite's locks on it.)"""
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            if path.exists() and not os.access(path, os.W_OK):
                raise PermissionError(f"{path} is not writable")
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE {SQLITE_VERSION_TABLE} SET version_num = version_num"))

    def release(self) -> None:
        self._users -= 1
        if self._users == 0:
            _HELD.pop(self.path, None)
            os.close(self._fd)  # drops the flock

    def _write_record(self) -> None:
        data = json.dumps(self._record).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)


_HELD: dict[Path, DatabaseFile] = {}  # the locks this process holds, by database file


def lock_path_of(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def claim(path: Path, *, new_database: bool = False) -> DatabaseFile:
    """Lock `path` for this process, or raise DatabaseFileError. Claiming a file this
    process holds already (the CLI, then the app it runs) shares the lock."""
    held = _HELD.get(path)
    if held is not None:
        held._users += 1
        return held
    lock_path = lock_path_of(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DatabaseFileError(f"cannot open the lock file {lock_path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_record(fd).get("pid", "unknown")
            raise DatabaseFileError(
                f"{path} is in use by another TaskLens process (pid {owner}, lock {lock_path}); "
                "one embedded server per SQLite file"
            ) from None
        record = _read_record(fd)
        if "created" in record and not path.exists():
            if not new_database:
                raise DatabaseFileError(
                    f"{path} is missing, but a TaskLens database was created there on "
                    f"{record['created']} ({lock_path} remembers it): restore the file, or start "
                    "with `tasklens serve --new-database` to begin an empty one"
                )
            logger.warning("%s is missing: starting an empty database (--new-database)", path)
            record = {}
    except BaseException:
        os.close(fd)
        raise
    record["pid"] = os.getpid()
    database = DatabaseFile(path, fd, record)
    database._write_record()
    _HELD[path] = database
    return database


def _read_record(fd: int) -> dict[str, Any]:
    """The lock file's JSON; {} when empty or unreadable (an older or damaged lock file)."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(os.pread(fd, 65_536, 0) or b"{}")
        if isinstance(record, dict):
            return record
    return {}


# pg_advisory_lock key of the embedded server: "TaskLens" in ASCII.
EMBEDDED_LOCK_KEY = 0x5461736B4C656E73


async def claim_postgres(database_url: str) -> asyncpg.Connection:
    """The lock for an embedded server on PostgreSQL, held as long as the returned
    connection is open (the server's life; a dead process's session ends with it)."""
    conn = await asyncpg.connect(
        database_url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10
    )
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", EMBEDDED_LOCK_KEY):
            raise DatabaseFileError(
                f"{make_url(database_url).render_as_string(hide_password=True)} is in use by "
                "another embedded TaskLens server; one embedded "
                "server per database (set TASKLENS_REDIS_URL to run several)"
            )
    except BaseException:
        await conn.close()
        raise
    return conn
