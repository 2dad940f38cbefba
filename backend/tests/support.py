"""Real TaskLens processes for tests: `tasklens serve` and `tasklens worker` subprocesses,
an HTTP client with a token, and a WebSocket listener that collects live events."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import websockets

from tasklens.tracking.database import connect_postgres
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import build_recorder

BACKEND = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
TASKLENS = str(Path(sys.executable).with_name("tasklens"))
OPERATOR_TOKEN = "operator-token-0123456789abcdef"
VIEWER_TOKEN = "viewer-token-0123456789abcdef"
API_TOKENS = f"ops:operator:{OPERATOR_TOKEN},watcher:viewer:{VIEWER_TOKEN}"


@dataclass
class KnownRows:
    """A data set of lifecycle rows for the tests of the numbers (metrics, history): one
    attempt per task, started and finished when it was created as far as its status says."""

    rows: list[LifecycleChange] = field(default_factory=list)

    def add(
        self,
        name: str,
        status: TaskStatus,
        created: datetime,
        duration_ms: float | None = None,
        **extra: Any,
    ) -> None:
        self.rows.append(
            LifecycleChange(
                task_id=f"{name}-{len(self.rows)}",
                task_name=name,
                status=status,
                timestamp=as_time(created),
                created_at=as_time(created),
                duration_ms=duration_ms,
                started_at=as_time(created) if status is not TaskStatus.PENDING else None,
                completed_at=as_time(created) if status.is_terminal else None,
                **extra,
            )
        )

    def write_to(self, database_url: str) -> None:
        """Writes the rows as the recorder does (one upsert, its merge rule), no task run."""

        async def write() -> None:
            recorder = build_recorder(database_url, None)
            await recorder.store.upsert(self.rows)
            await recorder.store.close()

        asyncio.run(write())


async def query(
    database_url: str, sql: str, *args: Any, timeout: float = 10
) -> list[dict[str, Any]]:
    """The rows of one statement, on a connection of its own (closed even when it fails)."""
    conn = await connect_postgres(database_url, timeout=timeout)
    try:
        return [dict(row) for row in await conn.fetch(sql, *args)]
    finally:
        await conn.close()


async def fetch_log_rows(
    database_url: str, columns: str, timeout: float = 10
) -> list[dict[str, Any]]:
    """`columns` of every row of the lifecycle log, by task id, then attempt."""
    return await query(
        database_url,
        f"SELECT {columns} FROM task_execution_logs ORDER BY task_id, attempt",
        timeout=timeout,
    )


@contextlib.contextmanager
def app_module(name: str, env: Mapping[str, str]) -> Iterator[ModuleType]:
    """Imports the test app tests/`name`.py, which reads `env` from os.environ as it loads,
    and undoes all of it afterwards: the variables as they were before, the module and this
    folder gone from sys.modules and sys.path. Its worker processes started meanwhile with
    os.environ see `env` too."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    sys.path.insert(0, str(TESTS))
    sys.modules.pop(name, None)  # built anew from these variables
    try:
        yield importlib.import_module(name)
    finally:
        sys.modules.pop(name, None)
        sys.path.remove(str(TESTS))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def seen_live(*lifecycle: str) -> list[list[str]]:
    """The live statuses a task going through `lifecycle` may be seen with: all of them, or
    all but `running` when it started and ended within one tick of its worker's recorder
    (25 ms): its outcome is then published alone, carrying its start."""
    return [list(lifecycle), [status for status in lifecycle if status != "running"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_hard(self) -> None:
        """SIGKILL to the whole process group, as if the machine under it died."""
        os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:  # its children too: none outlives the test
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


@dataclass
class Stack:
    """The processes of one TaskLens deployment, stopped together at the end of a test."""

    workdir: Path
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str]) -> Process:
        log_path = self.workdir / f"{name}.log"
        env = {**os.environ, **self.env, **extra_env, "PYTHONUNBUFFERED": "1"}
        popen = subprocess.Popen(
            [TASKLENS, *args],
            cwd=self.workdir,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill_hard() takes its children too
        )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def start_api(self, name: str = "api", port: int | None = None) -> Api:
        api = self.launch_api(name, port)
        api.wait_healthy()
        return api

    def launch_api(self, name: str = "api", port: int | None = None, *args: str) -> Api:
        """`tasklens serve [args]`, without waiting for it (it may be meant to refuse)."""
        port = port or free_port()
        process = self._spawn(name, ["serve", *args], {"TASKLENS_PORT": str(port)})
        return Api(f"http://127.0.0.1:{port}", process)

    def start_worker(
        self,
        name: str = "worker",
        workers: int = 1,
        extra_args: Sequence[str] = (),
        timeout: float = 30,
    ) -> Process:
        process = self._spawn(
            name, ["worker", "--workers", str(workers), "--log-level", "INFO", *extra_args], {}
        )
        wait_for(
            lambda: "Listening started" in process.log() or process.popen.poll() is not None,
            timeout=timeout,
            what=f"{name} to listen",
        )
        assert process.popen.poll() is None, process.log()
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@dataclass
class Api:
    base_url: str
    process: Process

    def client(self, token: str | None = OPERATOR_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def ws_url(self, token: str | None = OPERATOR_TOKEN) -> str:
        url = self.base_url.replace("http://", "ws://") + "/api/v1/ws"
        return f"{url}?token={token}" if token else url

    def wait_healthy(self, timeout: float = 30) -> None:
        def healthy() -> bool:
            if self.process.popen.poll() is not None:
                raise AssertionError(f"{self.process.name} exited:\n{self.process.log()}")
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(self.base_url + "/health", timeout=2).status_code == 200
            return False

        wait_for(healthy, timeout=timeout, what=f"{self.process.name} to be healthy")

    def enqueue(self, task: str, count: int = 1, **params: Any) -> list[str]:
        with self.client() as client:
            response = client.post(
                "/api/v1/demo", json={"task": task, "count": count, "params": params}
            )
        assert response.status_code == 202, response.text
        task_ids: list[str] = response.json()["task_ids"]
        return task_ids

    def task(self, task_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code in (200, 404), response.text
        return response.json() if response.status_code == 200 else {}

    def wait_task(self, task_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def reached() -> bool:
            found.update(self.task(task_id))
            return found.get("status") == status

        wait_for(reached, timeout=timeout, what=f"task {task_id} to be {status} ({found})")
        return found


def wait_for(
    predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class LiveEvents:
    """A WebSocket client that keeps every frame it receives, in a background task."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.frames: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def __aenter__(self) -> LiveEvents:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._connected.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _listen(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):  # its server may be killed
            async with websockets.connect(self.url) as socket_:
                async for raw in socket_:
                    frame = json.loads(raw)
                    self.frames.append(frame)
                    if frame.get("type") == "hello":
                        self._connected.set()

    @property
    def closed(self) -> bool:
        return self._task is not None and self._task.done()

    def event_ids(self) -> list[str]:
        return [f["id"] for f in self.frames if f.get("type") == "task_event"]

    def statuses(self, task_id: str, attempt: int | None = None) -> list[str]:
        return [
            f["status"]
            for f in self.frames
            if f.get("type") == "task_event"
            and f["data"]["task_id"] == task_id
            and (attempt is None or f["data"]["attempt"] == attempt)
        ]

    async def wait_status(
        self, task_id: str, status: str, timeout: float = 30, attempt: int | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        while status not in self.statuses(task_id, attempt):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {status} event for {task_id}: {self.statuses(task_id)}")
            await asyncio.sleep(0.05)


def outage_stack(tmp_path: Path, database_url: str, redis_url: str, **env: str) -> Stack:
    """A distributed stack on these (private, pausable) services, migrated, nothing started."""
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": database_url,
            "TASKLENS_REDIS_URL": redis_url,
            "TASKLENS_API_TOKENS": API_TOKENS,
            **env,
        },
    )
    assert stack._spawn("migrate", ["migrate"], {}).popen.wait(60) == 0
    return stack
