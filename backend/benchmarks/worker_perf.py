"""Where a worker's CPU goes a task, down to C functions and syscalls, in a steady window:
`python -m benchmarks.worker_perf [--tasks 60000 --rounds 2 --arms raw,middleware --seconds 6]`

`benchmarks.worker_cpu` times TaskLens's own Python pieces; this samples the whole worker
process with Linux `perf` (its software clock: these hosts expose no hardware counters), so
that what the middleware costs outside its own functions shows too: the interpreter, the
allocator, the kernel. Each run is a long `throughput.one_run`; sampling starts once the
busiest worker process has spent WARM_CPU_SECONDS of CPU (past start-up: imports,
connections, the first collector passes) and lasts `--seconds`. A task's share is the
window's samples over the tasks the run did in that time (its rate, steady mid-run).
Printed per arm, µs a task (median of the rounds): all, kernel, user, the collector's C
functions, and the kernel's time under each syscall; then the C functions whose µs a task
differ most from the first arm's. Needs `perf` on PATH and leave to sample (root, or
`kernel.perf_event_paranoid` ≤ 1).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks import throughput
from benchmarks.bench_database import REDIS_URL, fresh_database
from tasklens import migrate

ARMS = ("raw", "middleware")
FREQUENCY = 2999  # samples a second: not a multiple of the kernel's tick
WARM_CPU_SECONDS = 3.0
# CPython's cyclic garbage collector, by its C functions (gcmodule.c)
COLLECTOR = re.compile(
    r"^(gc_collect_main|visit_decref|visit_reachable|move_unreachable|update_refs|"
    r"subtract_refs|deduce_unreachable|untrack_tuples|untrack_dicts|gc_collect_\w+)$"
)
# the kernel's entry of a syscall as it appears in a call chain, innermost first
_SYSCALL = re.compile(r"^(ksys_\w+|__x64_sys_\w+|__sys_\w+)")

Figures = dict[str, float]  # "all", "kernel", "user", "collector", "syscall: …", "C: …"


def symbol_counts(report: str) -> Counter[tuple[str, str]]:
    """Samples per (kernel or user, symbol) from `perf report --no-children --sort sym -n
    --stdio -g none`, whose lines read `  12.34%  5014  [.] _PyEval_EvalFrameDefault`."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in report.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or line.lstrip().startswith("#") or not parts[1].isdigit():
            continue
        kind = "kernel" if parts[2] == "[k]" else "user"
        counts[kind, parts[3].strip()] += int(parts[1])
    return counts


def syscall_counts(script: str) -> Counter[str]:
    """Kernel samples per syscall, from `perf script -F ip,sym` with call chains: a blank
    line between samples, a frame a line (`ffffffff81234567 ksys_write`), innermost first."""
    counts: Counter[str] = Counter()
    for sample in script.split("\n\n"):
        frames = [line.split(None, 1)[-1].strip() for line in sample.strip().splitlines()]
        if not any(frame.startswith("entry_SYSCALL") for frame in frames):
            continue
        called = next((m[1] for f in frames if (m := _SYSCALL.match(f))), "other")
        counts[called] += 1
    return counts


def per_task(
    symbols: Counter[tuple[str, str]], syscalls: Counter[str], tasks: float, frequency: int
) -> Figures:
    """µs a task of each figure, from a window's samples and the tasks done in it."""

    def us(samples: float) -> float:
        return samples / frequency * 1e6 / tasks

    figures: Figures = {
        "all": us(sum(symbols.values())),
        "kernel": us(sum(n for (kind, _), n in symbols.items() if kind == "kernel")),
        "user": us(sum(n for (kind, _), n in symbols.items() if kind == "user")),
        "collector": us(sum(n for (_, sym), n in symbols.items() if COLLECTOR.match(sym))),
    }
    figures |= {f"syscall: {name}": us(n) for name, n in syscalls.items()}
    figures |= {f"C: {sym} ({kind})": us(n) for (kind, sym), n in symbols.items()}
    return figures


def _worker_pids() -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", "taskiq worker|tasklens worker"], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def _cpu_seconds(pid: int) -> float:
    try:
        _, _, user, system = throughput.process_times(Path(f"/proc/{pid}/stat").read_text())
    except OSError:  # gone meanwhile
        return 0.0
    return user + system


async def _sample_when_warm(data: Path, seconds: float) -> None:
    while True:
        await asyncio.sleep(0.2)
        busiest = max(((_cpu_seconds(pid), pid) for pid in _worker_pids()), default=(0.0, 0))
        if busiest[0] >= WARM_CPU_SECONDS:
            break
    command = ["perf", "record", "-g", "-F", str(FREQUENCY), "-p", str(busiest[1])]
    recording = await asyncio.create_subprocess_exec(
        *command, "-o", str(data), "--", "sleep", str(seconds), stderr=subprocess.DEVNULL
    )
    if await recording.wait() != 0:
        raise RuntimeError(f"{' '.join(command)} failed: is perf allowed to sample here?")


async def sampled_run(
    tasks: int, arm: str, database_url: str, seconds: float, folder: Path
) -> Figures:
    data = folder / f"{arm}.data"
    sampler = asyncio.create_task(_sample_when_warm(data, seconds))
    run = await throughput.one_run(tasks, arm, REDIS_URL, database_url, 1)
    if not sampler.done():
        sampler.cancel()
        raise RuntimeError(f"the {arm} run ended before its window: raise --tasks")
    await sampler
    report = ["perf", "report", "-i", str(data), "--no-children", "--sort", "sym", "-n"]
    symbols = subprocess.run([*report, "--stdio", "-g", "none"], capture_output=True, text=True)
    script = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "ip,sym"], capture_output=True, text=True
    )
    return per_task(
        symbol_counts(symbols.stdout), syscall_counts(script.stdout), run.rate * seconds, FREQUENCY
    )


async def main(tasks: int, rounds: int, arms: Sequence[str], seconds: float) -> None:
    url = await fresh_database()
    await asyncio.to_thread(migrate.upgrade, url)
    figures: dict[str, list[Figures]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as folder:
        for i in range(rounds):
            for arm in [*arms[i % len(arms) :], *arms[: i % len(arms)]]:
                sampled = await sampled_run(tasks, arm, url, seconds, Path(folder))
                figures[arm].append(sampled)
                print(f"  round {i + 1} {arm:10}: {sampled['all']:4.0f} µs a task", flush=True)

    def median(arm: str, name: str) -> float:
        return statistics.median(run.get(name, 0.0) for run in figures[arm])

    names = {name for runs in figures.values() for run in runs for name in run}
    print(f"µs a task, median of {rounds} windows of {seconds:g} s: " + " / ".join(arms))
    shown = ["all", "kernel", "user", "collector"]
    shown += sorted(
        (n for n in names if n.startswith("syscall:")), key=lambda n: -median(arms[-1], n)
    )[:6]
    for name in shown:
        print(f"  {name:50} " + " ".join(f"{median(arm, name):7.2f}" for arm in arms))
    for arm in arms[1:]:
        print(f"C functions, {arm} against {arms[0]} (the largest differences):")
        diffs = sorted(
            (median(arm, n) - median(arms[0], n), n) for n in names if n.startswith("C: ")
        )
        for diff, name in [*reversed(diffs[-20:]), *diffs[:5]]:
            before, after = median(arms[0], name), median(arm, name)
            print(f"  {diff:+6.2f}  {name[3:]:60} {before:7.2f} {after:7.2f}")


if __name__ == "__main__":
    parser = throughput.runs_parser(__doc__, tasks=60_000, rounds=2, arms=ARMS)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    arms = throughput.chosen_arms(parser, args.arms)
    if shutil.which("perf") is None:
        parser.error("needs Linux `perf` on PATH (Debian: apt-get install linux-perf)")
    asyncio.run(main(args.tasks, args.rounds, arms, args.seconds))
