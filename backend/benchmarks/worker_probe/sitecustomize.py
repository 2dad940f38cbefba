"""Loaded by a bench worker whose PYTHONPATH starts with this folder (benchmarks/worker_cpu.py):
sums the thread CPU time a worker spends in each of TaskLens's per-task pieces, and in each
pass of the garbage collector, from its first delivered message on, and writes the sums to
`$TASKLENS_WORKER_PROBE.<pid>` (JSON) every half second and at the broker's shutdown.

Coroutines are timed by their own steps only (`_Steps`): the time another coroutine runs
while one waits is not counted in it. The hooks never suspend, so a call is one step."""

from __future__ import annotations

import functools
import gc
import json
import os
import threading
import time
from collections.abc import Callable, Coroutine, Generator
from typing import Any

OUT = os.environ.get("TASKLENS_WORKER_PROBE")
_clock = time.thread_time_ns
_sums: dict[str, list[int]] = {}  # piece: [steps, ns]


def _add(piece: str, ns: int) -> None:
    if (s := _sums.get(piece)) is None:
        _sums[piece] = [1, ns]
    else:
        s[0] += 1
        s[1] += ns


class _Steps:
    """Awaits `coro`, timing each of its steps (a send or throw) and nothing else."""

    def __init__(self, coro: Coroutine[Any, Any, Any], piece: str) -> None:
        self.coro, self.piece = coro, piece

    def __await__(self) -> Generator[Any, Any, Any]:
        value: Any = None
        error: BaseException | None = None
        while True:
            started = _clock()
            try:
                step = self.coro.throw(error) if error is not None else self.coro.send(value)
            except StopIteration as stop:
                _add(self.piece, _clock() - started)
                return stop.value
            except BaseException:
                _add(self.piece, _clock() - started)
                raise
            _add(self.piece, _clock() - started)
            try:
                value, error = (yield step), None
            except BaseException as thrown:
                value, error = None, thrown


def _timed(owner: Any, name: str, piece: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        return await _Steps(original(*args, **kwargs), piece)

    setattr(owner, name, timed)


def _write() -> None:
    cpu = os.times()
    # a copy first: the worker's thread may add a piece while this one writes
    pieces = {piece: list(sums) for piece, sums in list(_sums.items())}
    figures = {"cpu_ns": int((cpu.user + cpu.system) * 1e9), "pieces": pieces}
    path = f"{OUT}.{os.getpid()}"
    with open(f"{path}.partial", "w") as f:  # replaced whole: a reader never sees half
        json.dump(figures, f)
    os.replace(f"{path}.partial", path)


def _keep_writing() -> None:
    while True:
        time.sleep(0.5)
        _write()


def _on_collection(phase: str, info: dict[str, int], started: list[int] = [0]) -> None:  # noqa: B006
    if phase == "start":
        started[0] = _clock()
    else:
        _add(f"collector, generation {info['generation']}", _clock() - started[0])


def _install() -> None:
    from taskiq.abc.broker import AsyncBroker
    from taskiq.receiver.receiver import Receiver

    from tasklens.tracking import background, event_stream, log_store, middleware, recorder

    first = Receiver.callback

    @functools.wraps(first)
    async def callback(self: Receiver, *args: Any, **kwargs: Any) -> Any:
        if not _sums.get("messages"):  # the drain starts: what start-up cost is left out
            _sums.clear()
        _add("messages", 0)
        return await first(self, *args, **kwargs)

    Receiver.callback = callback  # type: ignore[method-assign]
    stop = AsyncBroker.shutdown

    async def shutdown(self: AsyncBroker) -> None:
        if self.is_worker_process:
            _write()
        await stop(self)

    AsyncBroker.shutdown = shutdown  # type: ignore[method-assign]
    pieces = (
        (middleware.TaskLensMiddleware, "pre_execute", "hook: pre_execute"),
        (middleware.TaskLensMiddleware, "post_execute", "hook: post_execute"),
        (recorder.LifecycleRecorder, "_run", "recorder: its loop, all"),
        (recorder.LifecycleRecorder, "_merge_and_publish", "recorder: merge and live events"),
        (event_stream.RedisEventStream, "publish_changes", "recorder: live events (JSON, XADD)"),
        (recorder.LifecycleRecorder, "_write_rows", "recorder: rows and acks"),
        (log_store.PostgresLogStore, "upsert", "recorder: rows (JSON, asyncpg)"),
    )
    for owner, name, piece in pieces:
        _timed(owner, name, piece)
    start = background.BackgroundTask.start

    def start_timed(
        self: background.BackgroundTask, run: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        async def timed() -> None:
            await _Steps(run(), f"background: {self._name}")

        start(self, timed)

    background.BackgroundTask.start = start_timed  # type: ignore[method-assign]
    gc.callbacks.append(_on_collection)
    os.register_at_fork(
        after_in_child=lambda: threading.Thread(target=_keep_writing, daemon=True).start()
    )


if OUT:
    _install()
