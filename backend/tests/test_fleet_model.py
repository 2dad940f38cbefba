"""The capacity model of `bench fleet` (specs/scaling.md): the fit gets back the unit costs
that made two runs, the prediction is the model's arithmetic and takes the lowest bound, and
the share of a crowded machine follows from the calibration's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from benchmarks.fleet import PARTS, Costs, Drain, fit, predict, share

pytestmark = pytest.mark.unit

COSTS = {
    "workers": Costs(per_task=100.0, per_task_per_worker=3.0, per_worker=6_000.0),
    "postgres": Costs(per_task=40.0, per_task_per_worker=1.0, per_worker=15_000.0),
    "redis": Costs(per_task=4.0, per_worker=1_000.0, per_second=6_000.0),
    "load": Costs(per_task=2.0, per_second=25_000.0),
    "system": Costs(per_task=5.0),
}


def _drain(workers: int, rate: float, seconds: float = 10.0) -> Drain:
    """The run these costs would make at `rate` tasks/s, with its paused window."""
    cpu = {p: COSTS[p].rate(rate, workers) * seconds / 1e6 for p in PARTS}
    periodic = {p: COSTS[p].fixed(workers) for p in PARTS}
    return Drain(workers, int(rate * seconds), seconds, cpu, periodic=periodic)


def test_two_runs_give_back_the_unit_costs() -> None:
    costs = fit(_drain(1, 4_000), _drain(8, 7_000))
    for part in PARTS:
        assert costs[part].per_task == pytest.approx(COSTS[part].per_task)
        assert costs[part].per_task_per_worker == pytest.approx(COSTS[part].per_task_per_worker)
        assert costs[part].per_worker == pytest.approx(COSTS[part].per_worker)
        assert costs[part].per_second == pytest.approx(COSTS[part].per_second)


def test_less_cpu_per_task_with_more_workers_is_noise_taken_as_no_growth() -> None:
    one, other = _drain(1, 4_000), _drain(8, 7_000)
    other.cpu["workers"] = one.cpu["workers"] * 0.5  # fewer µs per task with 8: noise
    costs = fit(one, other)
    spent = [
        (d.us_per_second("workers") - COSTS["workers"].fixed(d.workers)) / d.rate
        for d in (one, other)
    ]
    assert costs["workers"].per_task_per_worker == 0
    assert costs["workers"].per_task == pytest.approx(sum(spent) / 2)


def test_periodic_costs_falling_with_more_workers_are_noise_taken_as_per_second() -> None:
    one, other = _drain(1, 4_000), _drain(8, 7_000)
    one.periodic["workers"] = 60_000.0  # one worker costs more per second than eight: noise
    costs = fit(one, other)
    assert costs["workers"].per_worker == 0
    assert costs["workers"].per_second == pytest.approx((60_000 + 8 * 6_000) / 2)


def test_the_machine_bound_is_the_cpu_left_over_the_cpu_per_task() -> None:
    fleet = predict(COSTS, 20, 2.0)
    assert fleet.limit == "2.00 shared cores"
    fixed = 20 * (6_000 + 15_000 + 1_000) + 6_000 + 25_000
    per_task = (100 + 3 * 20) + (40 + 20) + 4 + 2 + 5
    assert fleet.rate == pytest.approx((2e6 - fixed) / per_task)
    # every part's CPU at that rate adds up to the cores
    assert sum(fleet.cpu_per_task(COSTS, 20).values()) * fleet.rate == pytest.approx(2e6)
    assert fleet.cpu_per_task(COSTS, 20)["postgres"] == pytest.approx(60 + 20 * 15_000 / fleet.rate)


def test_one_worker_is_held_to_its_core() -> None:
    one = predict(COSTS, 1, 8.0)
    assert one.limit == "one core per worker process"
    assert one.rate == pytest.approx((1e6 - 6_000) / 103)


def test_redis_is_one_core_whatever_the_cores() -> None:
    costs = {**COSTS, "redis": Costs(per_task=200.0, per_worker=1_000.0)}
    fleet = predict(costs, 20, 64.0)
    assert fleet.limit == "one Redis core"
    assert fleet.rate == pytest.approx((1e6 - 20_000) / 200)


def test_no_cpu_left_for_tasks_is_a_rate_of_zero() -> None:
    assert predict(COSTS, 200, 2.0).rate == 0


def _calibration(available: float, workers: int = 8, seconds: float = 10.0) -> Drain:
    """A run whose parts got `available` cores, the machine never idle."""
    cpu = dict.fromkeys(PARTS, 0.0)
    cpu["workers"] = available * seconds
    return Drain(workers, 1_000, seconds, cpu, machine=(2.0 * seconds, 0.0))


def test_a_quiet_machine_gives_every_run_all_its_cores() -> None:
    assert share(_calibration(2.0), 20, 2.0) == pytest.approx(2.0)
    assert share(_calibration(2.0), 1, 2.0) == pytest.approx(2.0)


def test_idle_time_counts_as_the_runs_own() -> None:
    calibration = _calibration(1.5)
    calibration.machine = (1.5 * calibration.seconds, 0.5 * calibration.seconds)
    assert share(calibration, 20, 2.0) == pytest.approx(2.0)


def test_on_a_crowded_machine_more_workers_get_a_larger_share() -> None:
    # 8 workers + 2 sessions of ours got half of 2 cores: the rest wanted 10 sessions' worth
    calibration = _calibration(1.0)
    assert share(calibration, 8, 2.0) == pytest.approx(1.0)
    assert share(calibration, 20, 2.0) == pytest.approx(2.0 * 22 / 32)
    assert share(calibration, 20, 2.0) < share(calibration, 200, 2.0) < 2.0
