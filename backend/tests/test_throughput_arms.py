"""`bench throughput --arms`: the arms a run compares are checked before anything starts, and
a wrong list stops the command with an error naming the option."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from benchmarks import __main__ as bench_cli

pytestmark = pytest.mark.unit


def _bench(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int | str | None, str, str]:
    """`python -m benchmarks throughput ARGS`, in this process: its exit code and output."""
    monkeypatch.setattr(sys, "argv", ["benchmarks", "throughput", *args])
    with pytest.raises(SystemExit) as exit_:
        bench_cli.main()
    printed = capsys.readouterr()
    return exit_.value.code, printed.out, printed.err


@pytest.mark.parametrize(
    ("arms", "error"),
    [
        ("raw,hookz", "--arms: unknown hookz (known: raw, empty, stamp, idle, hooks, beside, "),
        (
            "hooks,middleware",
            "--arms: raw (stock taskiq-redis, the baseline of every ratio) is missing",
        ),
        ("raw,hooks,hooks", "--arms: hooks named more than once"),
    ],
)
def test_a_wrong_list_of_arms_stops_the_bench_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], arms: str, error: str
) -> None:
    code, out, err = _bench(monkeypatch, capsys, "--arms", arms)

    assert code == 2
    assert error in err
    assert out == ""  # nothing ran


def test_the_help_lists_every_arm_it_knows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _bench(monkeypatch, capsys, "--help")

    assert code == 0
    assert "raw, empty, stamp, idle, hooks, beside, middleware, tasklens" in " ".join(out.split())
