"""The one asyncio task a part runs in the background while it is started (the reaper, the
heartbeat, the cancel listener, log maintenance): started at most once, and stopped by
cancelling it and waiting until it has ended, so nothing of it runs after `stop`.

A cancel can be lost on Python 3.11: `asyncio.wait_for` returns the inner result when the
cancel lands in the turn that result arrives (fixed in 3.12), and redis-py sends every
command of a client with a socket timeout through it. A loop that sends a command then
carries on as if never cancelled, and a `stop` that waited for it hung: the worker's
shutdown then waited out taskiq's `--shutdown-timeout` (the bench's stops of more than
30 s). So the cancel is sent again until the task has ended."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

# A task still running this long after a cancel is cancelled again (its cancel was lost, or
# its cleanup is slow: cancelling that again only cuts it short).
RECANCEL_AFTER_SECONDS = 0.5
# Past this, `stop` returns and the task is left to end on its own: a part's cleanup that
# waits on a server that does not answer must not hold up a process that is stopping.
STOP_TIMEOUT_SECONDS = 5.0


class BackgroundTask:
    def __init__(self, name: str) -> None:
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Runs `run()` unless it runs already (`run` is not called then)."""
        if self._task is None:
            self._task = asyncio.create_task(run(), name=self._name)

    async def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Cancels the task (again every RECANCEL_AFTER_SECONDS) until it has ended, for at
        most `timeout`; the task's own error, if it failed, is raised here. A cancel of the
        caller is not swallowed (`asyncio.wait` does not raise the task's)."""
        task, self._task = self._task, None
        if task is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not task.done():
            left = deadline - loop.time()
            if left <= 0:
                logger.warning("%s did not stop within %gs: left to end", self._name, timeout)
                return
            task.cancel()
            await asyncio.wait({task}, timeout=min(RECANCEL_AFTER_SECONDS, left))
        if not task.cancelled():
            task.result()
