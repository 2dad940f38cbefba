"""Issue 17's overhead split into TaskLens's own stages, in instructions per task, with no
I/O and no worker: the two hooks, the recorder's merge (building each change), the live
events' JSON and the rows' JSON, as a worker does them per flush of 100 tasks.

`python -m benchmarks.stages`: runs itself under callgrind at two sizes per stage and
prints the difference per task (start-up cancelled out), each stage's own share being the
step from the one before. Deterministic: the messages are built before the count starts
(and their cost, stage 0, subtracted), the garbage collector's heap is frozen, hashing is
seeded. `benchmarks.instructions` measures the whole worker; this says where it goes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from taskiq import InMemoryBroker, TaskiqMessage, TaskiqResult

from tasklens.tracking.cancellation import Cancellations
from tasklens.tracking.lifecycle import json_without_nul
from tasklens.tracking.log_store import _json_row
from tasklens.tracking.middleware import ENQUEUED_AT_LABEL, TaskLensMiddleware
from tasklens.tracking.pubsub import InProcessPubSub
from tasklens.tracking.recorder import LifecycleRecorder

STAGES = ("messages", "hooks", "merge", "events", "rows")
PER_FLUSH = 100
_SUCCEEDED: TaskiqResult[None] = TaskiqResult(is_err=False, return_value=None, execution_time=0)


async def _work(tasks: int, stage: int) -> None:
    """What a worker's TaskLens does for `tasks` no-op tasks, up to `stage`."""
    recorder = LifecycleRecorder(None, None)  # type: ignore[arg-type]  # merges only, no I/O
    middleware = TaskLensMiddleware(
        recorder=recorder, cancellations=Cancellations(InProcessPubSub())
    )
    middleware.set_broker(InMemoryBroker())
    middleware.worker_id = "host:1"
    sent = time.time()
    messages = [
        TaskiqMessage(
            task_id=f"{i:032x}",
            task_name="bench.noop",
            labels={ENQUEUED_AT_LABEL: repr(sent + i * 1e-4)},
            args=[],
            kwargs={},
        )
        for i in range(tasks)
    ]
    gc.collect()
    gc.freeze()
    if stage == 0:
        return
    for start in range(0, tasks, PER_FLUSH):
        flush = messages[start : start + PER_FLUSH]
        for message in flush:
            await middleware.pre_execute(message)
        for message in flush:
            await middleware.post_execute(message, _SUCCEEDED)
        if stage == 1:  # the changes recorded, dropped unbuilt
            recorder._take_recorded()
            continue
        changes = recorder._merge_recorded()
        if stage >= 3:
            orjson.dumps([change.to_event_row() for change in changes])
        if stage >= 4:
            rows = [_json_row(change) for change in recorder._rows.values()]
            json_without_nul(orjson.dumps(rows, default=str)).decode()
        recorder._rows = {}


def _instructions(tasks: int, stage: int) -> int:
    with tempfile.TemporaryDirectory(prefix="tasklens-stages-") as out:
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}/callgrind.out",
                sys.executable,
                "-m",
                "benchmarks.stages",
                "--run",
                str(tasks),
                str(stage),
            ],
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        text = (Path(out) / "callgrind.out").read_text(errors="replace")
    return int(text.split("\ntotals: ", 1)[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.stages")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=6_000)
    parser.add_argument("--run", nargs=2, type=int, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.run:  # the counted process
        asyncio.run(_work(*a.run))
        return
    counts: list[float] = []
    for stage, name in enumerate(STAGES):
        low, high = _instructions(a.small, stage), _instructions(a.big, stage)
        counts.append((high - low) / (a.big - a.small))
        step = counts[-1] - counts[-2] if stage else counts[-1]
        print(f"stages: {name}: {step:,.0f} instructions a task", flush=True)
    print(f"stages: TaskLens's own work a task, hooks to rows: {counts[-1] - counts[0]:,.0f}")


if __name__ == "__main__":
    main()
