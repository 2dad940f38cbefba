"""`bench throughput`'s figure at no steal: a line through an arm's runs (worker CPU a task
against the share of the machine the hypervisor gave other guests) gives back the CPU a task
that made them, and is not drawn through runs too few or too alike in steal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from benchmarks.throughput import Cpu, Run, cpu_at_no_steal

pytestmark = pytest.mark.unit

TASKS = 20_000


def _run(steal: float, us_per_task: float, arm: str = "raw") -> Run:
    """A run of TASKS tasks whose worker spent `us_per_task` while `steal` of the machine's
    100 CPU seconds went to other guests."""
    worker = us_per_task * TASKS / 1e6
    cpu = Cpu(worker_user=worker * 0.9, worker_system=worker * 0.1, steal=steal * 100, machine=100)
    return Run(arm, TASKS, seconds=10.0, cpu=cpu, drained_seconds=10.0)


def test_the_line_meets_no_steal_at_the_cpu_a_task_of_a_quiet_run() -> None:
    # 700 µs a task with no neighbours, 12 µs more per point of steal
    runs = [_run(steal, 700 + 1200 * steal) for steal in (0.02, 0.05, 0.11, 0.26)]

    assert cpu_at_no_steal(runs) == pytest.approx(700.0)


def test_two_arms_met_by_different_spells_compare_at_no_steal() -> None:
    stock = [_run(steal, 700 + 1200 * steal) for steal in (0.20, 0.25, 0.15, 0.22)]
    logged = [_run(steal, 740 + 1500 * steal, "middleware") for steal in (0.01, 0.03, 0.05, 0.1)]
    stock_now = cpu_at_no_steal(stock)
    logged_now = cpu_at_no_steal(logged)

    # Run by run the logged arm looks cheaper (it met less steal); at no steal it is not.
    assert all(m.cpu_us_per_task < s.cpu_us_per_task for s, m in zip(stock, logged, strict=True))
    assert stock_now is not None and logged_now is not None
    assert stock_now / logged_now == pytest.approx(700 / 740)


def test_no_line_through_runs_too_few_or_bunched_at_one_steal() -> None:
    assert cpu_at_no_steal([_run(s, 700 + 1200 * s) for s in (0.02, 0.05, 0.11)]) is None
    bunched = [_run(0.020 + i * 0.001, 700 + i) for i in range(8)]
    assert cpu_at_no_steal(bunched) is None
