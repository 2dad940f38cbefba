"""The capacity model of `bench fleet` (specs/scaling.md): the fit gets back the unit costs
that made two runs, and the prediction takes the lowest bound."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from benchmarks.fleet import PARTS, Costs, Drain, fit, predict

pytestmark = pytest.mark.unit

COSTS = {
    "workers": Costs(per_task=400.0, per_write=2_000.0),
    "postgres": Costs(per_task=120.0, per_write=800.0),
    "redis": Costs(per_task=40.0, per_write=100.0),
}
WRITES_PER_WORKER = 10.0  # a busy worker's flushes per second


def _drain(workers: int, rate: float, seconds: float = 10.0) -> Drain:
    """The run these costs would make at `rate` tasks/s, every worker writing 10 times a
    second (one XACK per write)."""
    writes = workers * WRITES_PER_WORKER
    cpu = {
        p: (COSTS[p].per_task * rate + COSTS[p].per_write * writes) * seconds / 1e6 for p in PARTS
    }
    return Drain(workers, int(rate * seconds), seconds, cpu, {"xack": (int(writes * seconds), 0)})


def test_two_runs_give_back_the_unit_costs() -> None:
    costs = fit(_drain(1, 2_000), _drain(8, 3_000))
    for part in PARTS:
        assert costs[part].per_task == pytest.approx(COSTS[part].per_task)
        assert costs[part].per_write == pytest.approx(COSTS[part].per_write)


def test_a_negative_per_write_cost_is_noise_taken_as_zero() -> None:
    one, other = _drain(1, 2_000), _drain(8, 3_000)
    other.cpu["redis"] = one.cpu["redis"] * 0.5  # less CPU with more writes: noise
    costs = fit(one, other)
    assert costs["redis"].per_write == 0
    assert costs["redis"].per_task == pytest.approx(
        (one.us_per_task("redis") + other.us_per_task("redis")) / 2
    )


def test_one_worker_is_held_to_its_core_and_a_fleet_to_the_shared_cores() -> None:
    one = predict(COSTS, 1, 2, WRITES_PER_WORKER)
    assert one.limit == "one core per worker process"
    assert one.rate == pytest.approx((1e6 - 2_000 * 10) / 400)
    fleet = predict(COSTS, 20, 2, WRITES_PER_WORKER)
    assert fleet.limit == "2 shared cores"
    assert fleet.rate == pytest.approx((2e6 - 2_900 * 200) / 560)


def test_measured_writes_replace_the_busy_workers_interval() -> None:
    assert predict(COSTS, 20, 2, WRITES_PER_WORKER, writes=50).rate == pytest.approx(
        (2e6 - 2_900 * 50) / 560
    )


def test_never_more_writes_than_tasks() -> None:
    """Tiny rates: a write carries at least one row, so writes fall with the tasks."""
    costs = {p: Costs(c.per_task, 200_000.0) for p, c in COSTS.items()}
    fleet = predict(costs, 20, 2, WRITES_PER_WORKER)
    assert fleet.rate == pytest.approx(2e6 / (560 + 600_000))


def test_redis_is_one_core_whatever_the_cores() -> None:
    assert predict(COSTS, 20, 64, WRITES_PER_WORKER).limit == "one Redis core"
