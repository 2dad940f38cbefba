"""`python -m benchmarks.pooled LOG...`: the saved output of several `bench throughput` runs
read as one, each round paired with its own stock run and the least stolen try kept."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from benchmarks import pooled, throughput

pytestmark = pytest.mark.unit


def _line(round_: int | str, arm: str, seconds: float, cpu: int, steal: float) -> str:
    """A run's line as `bench throughput` prints it, 1,000 tasks."""
    label = f"round {round_}" if isinstance(round_, int) else round_
    run = throughput.Run(
        arm,
        1000,
        seconds,
        throughput.Cpu(worker_user=cpu / 1000, steal=steal, machine=1.0),
        seconds,
    )
    return throughput._line(label, run, "")


FIRST_RUN = "\n".join(
    [
        "throughput: 1,000 no-op tasks, 1 worker process(es), 2 rounds …",
        _line("warm-up", "raw", 9.0, 900, 0.0),  # left out, as the bench leaves it out
        _line(1, "raw", 1.0, 300, 0.001),
        _line(1, "middleware", 1.25, 400, 0.05) + " (steal above 1.0%: again)",
        _line(1, "middleware", 1.10, 330, 0.001),  # the retry, less stolen: kept
        _line(2, "middleware", 1.10, 330, 0.0),
        _line(2, "raw", 1.0, 300, 0.0),
        "throughput: overhead: … (the summary lines do not count)",
    ]
)
SECOND_RUN = "\n".join(
    [
        _line(1, "raw", 1.0, 300, 0.0),
        _line(1, "middleware", 1.0, 300, 0.0),
        _line(2, "raw", 1.0, 300, 0.0),
        _line(2, "middleware", 1.0, 300, 0.0),
    ]
)


def test_each_round_pairs_its_own_runs_and_keeps_the_least_stolen_try() -> None:
    rounds = pooled.rounds_of(FIRST_RUN)

    assert sorted(rounds) == [1, 2]
    assert rounds[1]["middleware"].cpu_us_per_task == 330  # not the stolen 400
    ratios = pooled.paired(rounds.values(), "middleware")
    assert ratios.cpu == pytest.approx([300 / 330, 300 / 330])
    assert ratios.rate == pytest.approx([1 / 1.1, 1 / 1.1])


def test_the_report_gives_each_run_the_median_of_runs_and_every_round_pooled() -> None:
    lines = pooled.report([FIRST_RUN, SECOND_RUN])

    cpu, rate = lines
    assert cpu.startswith("+ TaskLensMiddleware against stock, worker CPU a task: ")
    assert "each run's paired median 0.909, 1.000; the median of the 2 runs 0.955" in cpu
    # four rounds: two at 300/330, two at 1.0; with so few, the whole range at 88 %
    assert "pooled 0.955 (88% interval of the median 0.909-1.000, 4 rounds)" in cpu
    assert "tasks/s: each run's paired median 0.909, 1.000" in rate


def test_logs_of_another_bench_version_or_missing_files_stop_it_naming_the_logs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "other.log"
    other.write_text(FIRST_RUN.replace("+ TaskLensMiddleware", "+ a middleware of old"))
    for argument, error in (
        (other, "logs: a round of an arm this bench does not know: '+ a middleware of old'"),
        (tmp_path / "missing.log", "missing.log: No such file or directory"),
    ):
        monkeypatch.setattr(sys, "argv", ["pooled", str(argument)])
        with pytest.raises(SystemExit) as exit_:
            pooled.main()
        assert exit_.value.code == 2
        assert error in capsys.readouterr().err
