"""Several runs of `bench throughput` read as one: `python -m benchmarks.pooled LOG [LOG ...]`

Target 1 (issue 17) is judged by the median of three 8-round runs. On a shared host one
run's interval for its paired median spans more than the target's margin (throughput.py,
`median_interval`), so a single run rarely decides it. This reads the round lines the runs
printed (their output saved to files) and gives, for each arm against stock, each run's
figures, the median of the runs' figures (the target's reading), and every round of every
run pooled into one paired median with its interval, which narrows as rounds are added.
A round's arm tried more than once (`--tries`) counts by its least stolen try, as the
bench keeps it.
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import throughput

ROUND_LINE = re.compile(
    r"^  round (?P<round>\d+) (?P<label>.+?): +\d+ tasks/s \((?P<tasks>\d+) tasks in "
    r"(?P<seconds>[\d.]+)s\), worker CPU +(?P<cpu>\d+) µs/task .*steal (?P<steal>[\d.]+)%"
)
ARM_OF_LABEL = {label.strip(): arm for arm, label in throughput.LABELS.items()}


@dataclass(frozen=True)
class RoundRun:
    """One arm's run in one round, as its line printed it."""

    arm: str
    rate: float
    cpu_us_per_task: float
    steal: float


def rounds_of(text: str) -> dict[int, dict[str, RoundRun]]:
    """Each round's kept run of each arm (the warm-up's lines do not match). ValueError for
    an arm's label this version of the bench does not print."""
    rounds: dict[int, dict[str, RoundRun]] = {}
    for line in text.splitlines():
        if (match := ROUND_LINE.match(line)) is None:
            continue
        arm = ARM_OF_LABEL.get(label := match["label"].strip())
        if arm is None:
            raise ValueError(f"a round of an arm this bench does not know: {label!r}")
        run = RoundRun(
            arm,
            int(match["tasks"]) / float(match["seconds"]),
            float(match["cpu"]),
            float(match["steal"]),
        )
        kept = rounds.setdefault(int(match["round"]), {})
        if arm not in kept or run.steal < kept[arm].steal:
            kept[arm] = run
    return rounds


@dataclass(frozen=True)
class Ratios:
    """An arm against stock, over some rounds: paired per round, tasks/s and CPU a task."""

    rate: list[float]
    cpu: list[float]


def paired(rounds: Iterable[dict[str, RoundRun]], arm: str) -> Ratios:
    rate, cpu = throughput.paired_ratios(
        [(r["raw"], r[arm]) for r in rounds if "raw" in r and arm in r]
    )
    return Ratios(rate, cpu)


def _interval(ratios: list[float]) -> str:
    low, high, confidence = throughput.median_interval(ratios)
    return (
        f"{statistics.median(ratios):.3f} ({confidence:.0%} interval of the median "
        f"{low:.3f}-{high:.3f}, {len(ratios)} rounds)"
    )


def report(texts: list[str]) -> list[str]:
    runs = [rounds_of(text) for text in texts]
    arms = [
        arm
        for arm in throughput.LABELS
        if arm != "raw" and any(arm in r for run in runs for r in run.values())
    ]
    lines = []
    for arm in arms:
        label = throughput.LABELS[arm].strip()
        each = [paired(run.values(), arm) for run in runs]
        each = [ratios for ratios in each if ratios.cpu]
        if not each:
            continue
        for name, figure in (("worker CPU a task", "cpu"), ("tasks/s", "rate")):
            ratios = [getattr(r, figure) for r in each]
            per_run = [statistics.median(values) for values in ratios]
            lines.append(
                f"{label} against stock, {name}: each run's paired median "
                + ", ".join(f"{value:.3f}" for value in per_run)
                + f"; the median of the {len(each)} runs {statistics.median(per_run):.3f}; "
                f"pooled {_interval([x for values in ratios for x in values])}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pooled", description=__doc__)
    parser.add_argument("logs", nargs="+", type=Path, help="the saved output of each run")
    a = parser.parse_args()
    texts = []
    for path in a.logs:
        try:
            texts.append(path.read_text())
        except OSError as error:
            parser.error(f"logs: {path}: {error.strerror}")
    try:
        lines = report(texts)
    except ValueError as error:
        parser.error(f"logs: {error}")
    if not lines:
        parser.error("logs: no round of stock taskiq-redis beside another arm in these files")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
