"""`bench throughput` gives each paired ratio with an interval for its median, and says of
target 1 whether the run puts the median below it, at or above it, or cannot tell: on a
shared host one arm's runs spread wider than the margin a target leaves."""

from __future__ import annotations

import math
import random
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from benchmarks import __main__ as bench_cli
from benchmarks import throughput

pytestmark = pytest.mark.unit


def test_eight_rounds_give_the_second_smallest_to_the_second_largest_at_93_percent() -> None:
    low, high, confidence = throughput.median_interval(
        [0.93, 0.88, 0.91, 0.97, 0.90, 0.95, 0.86, 0.92]
    )

    assert (low, high) == (0.88, 0.95)
    assert confidence == pytest.approx(1 - 2 * 9 / 256)  # at most one of 8 on a side


def test_too_few_rounds_for_the_confidence_give_the_whole_range_and_say_how_sure_it_is() -> None:
    low, high, confidence = throughput.median_interval([1.02, 0.97, 0.99, 0.95])

    assert (low, high) == (0.95, 1.02)
    assert confidence == pytest.approx(1 - 2 / 16)  # below INTERVAL_CONFIDENCE, and said so
    assert confidence < throughput.INTERVAL_CONFIDENCE


def test_the_interval_holds_the_true_median_at_least_as_often_as_it_claims() -> None:
    rng = random.Random(17)
    for rounds in (6, 8, 24):
        trials, held, claimed = 4000, 0, 0.0
        for _ in range(trials):
            # Skewed, as a host's spells of busy neighbours skew them; median 0.9 + ln 2 / 20
            ratios = [0.9 + rng.expovariate(20) for _ in range(rounds)]
            low, high, claimed = throughput.median_interval(ratios)
            held += low <= 0.9 + math.log(2) / 20 <= high
        assert claimed >= throughput.INTERVAL_CONFIDENCE
        assert held / trials >= claimed - 0.015  # the sampling error of 4,000 trials


def _target_1(paired: list[float]) -> str:
    """The tasks/s line `bench throughput` prints of target 1 for these per-round ratios."""
    low, high, confidence = throughput.median_interval(paired)
    figures = {
        "raw_tasks_per_s": 3000.0,
        "middleware_tasks_per_s": 2800.0,
        "middleware_ratio": 2800 / 3000,
        "middleware_paired_ratio": statistics.median(paired),
        "middleware_paired_ratio_low": low,
        "middleware_paired_ratio_high": high,
        "middleware_paired_ratio_confidence": confidence,
        "raw_cpu_us_per_task": 300.0,
        "middleware_cpu_us_per_task": 320.0,
        "middleware_cpu_ratio": 300 / 320,
        "middleware_paired_cpu_ratio": 0.9,
        "middleware_paired_cpu_ratio_low": 0.9,
        "middleware_paired_cpu_ratio_high": 0.9,
        "middleware_paired_cpu_ratio_confidence": 0.9,
    }
    (line, _cpu) = bench_cli._overhead(figures)
    return line


@pytest.mark.parametrize(
    ("paired", "says"),
    [
        ([0.90, 0.91, 0.92, 0.93, 0.93, 0.94, 0.945, 0.96], "below the target"),
        ([0.88, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.99], "cannot tell which side"),
        ([0.94, 0.95, 0.96, 0.96, 0.97, 0.98, 0.99, 1.00], "at or above the target"),
    ],
)
def test_target_1_says_which_side_of_the_target_the_run_puts_the_median(
    paired: list[float], says: str
) -> None:
    line = _target_1(paired)

    assert "paired per round" in line
    assert "93% interval of the median" in line
    assert says in line


def test_the_split_gives_each_arm_an_interval_and_no_verdict() -> None:
    # 8 rounds of 1,000 tasks: stock 300 µs a task in 1.0 s, the hooks 315 µs in 1.05 s
    runs = {
        "raw": [throughput.Run("raw", 1000, 1.0, throughput.Cpu(worker_user=0.3), 1.0)] * 8,
        "hooks": [throughput.Run("hooks", 1000, 1.05, throughput.Cpu(worker_user=0.315), 1.05)] * 8,
    }
    figures = {
        f"{arm}_{figure}": value
        for arm, arm_runs in runs.items()
        for figure, value in (
            ("tasks_per_s", arm_runs[0].rate),
            ("cpu_us_per_task", arm_runs[0].cpu_us_per_task),
        )
    }
    throughput._ratios(figures, runs, "", "raw", "hooks", "hooks")

    (split,) = bench_cli._cost_split(figures)

    assert "CPU 0.952, paired 0.952 (93% interval of the median 0.952-0.952)" in split
    assert "target" not in split
