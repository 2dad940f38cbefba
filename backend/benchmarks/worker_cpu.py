"""Where a worker's CPU goes a task, piece by piece, at full speed:
`python -m benchmarks.worker_cpu [--tasks 20000 --rounds 3 --arms raw,middleware]`

`benchmarks.instructions` counts instructions under valgrind; this measures the worker as the
target's command runs it. Stock taskiq-redis and the same worker with TaskLensMiddleware
(`throughput.one_run`'s arms, alternating) run with `worker_probe/` first on their
PYTHONPATH. Its `sitecustomize` sums the thread CPU time spent in TaskLens's hooks, its
recorder's steps, its background tasks and each garbage collector pass, from the first
delivered message on. Printed: each piece's median µs a task, and the whole worker's, and
how many passes of each collector generation a run made. `--arms` adds the splitting arms
of `benchmarks.throughput` (`empty`, `stamp`, `idle`, `hooks`).
The probe's own clock reads (two a hook, two a coroutine step) are inside its figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import throughput
from benchmarks.bench_database import REDIS_URL, fresh_database
from tasklens import migrate

PROBE = Path(__file__).resolve().parent / "worker_probe"
ARMS = ("raw", "middleware")
WHOLE = "the whole worker (user and system)"


async def probed_run(
    tasks: int, arm: str, redis_url: str, database_url: str, out: Path
) -> dict[str, float]:
    """One run of `arm` with the probe: µs a task per piece, and the whole worker's."""
    for old in out.parent.glob(f"{out.name}.*"):
        old.unlink()
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "TASKLENS_WORKER_PROBE")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), saved["PYTHONPATH"]]))
    os.environ["TASKLENS_WORKER_PROBE"] = str(out)
    try:
        run = await throughput.one_run(tasks, arm, redis_url, database_url, 1)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    written = [
        json.loads(path.read_text())
        for path in out.parent.glob(f"{out.name}.*")
        if path.suffix != ".partial"
    ]
    if not written:
        raise RuntimeError(f"the {arm} worker wrote no probe figures")
    child = max(written, key=lambda figures: figures["cpu_ns"])  # the process that ran tasks
    pieces = {piece: ns / tasks / 1000 for piece, (_, ns) in child["pieces"].items()}
    pieces.pop("messages", None)
    for piece, (steps, _) in child["pieces"].items():
        if piece.startswith("collector"):
            pieces[f"{piece}, passes a run"] = steps
    return pieces | {WHOLE: run.cpu_us_per_task}


async def main(tasks: int, rounds: int, arms: Sequence[str] = ARMS) -> None:
    url = await fresh_database()
    await asyncio.to_thread(migrate.upgrade, url)
    figures: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "probe"
        for i in range(rounds):
            for arm in [*arms[i % len(arms) :], *arms[: i % len(arms)]]:
                pieces = await probed_run(tasks, arm, REDIS_URL, url, out)
                figures[arm].append(pieces)
                whole = pieces[WHOLE]
                print(f"  round {i + 1} {arm:10}: worker {whole:4.0f} µs a task", flush=True)
    names = sorted({name for runs in figures.values() for run in runs for name in run})
    print(
        f"µs a task (passes: a run), median of {rounds} runs of {tasks:,} tasks: "
        + " / ".join(arms)
    )
    for name in names:
        cells = [
            f"{statistics.median(run.get(name, 0.0) for run in figures[arm]):7.2f}" for arm in arms
        ]
        print(f"  {name:45} {' '.join(cells)}")


if __name__ == "__main__":
    parser = throughput.runs_parser(__doc__, tasks=20_000, rounds=3, arms=ARMS)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.rounds, throughput.chosen_arms(parser, args.arms)))
