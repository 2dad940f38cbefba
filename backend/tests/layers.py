"""The three layers of tests (tests/README.md), marked at collection and enforced at run time.

- `unit`: no service and no subprocess: pure logic, in memory (a SQLite file is fine).
- `integration`: in-process against real PostgreSQL/Redis (or a local stand-in served from a
  thread); may run `git`, as the product's repository analysis does, but starts no TaskLens,
  taskiq or Python process.
- `system`: starts processes: `tasklens serve`/`worker`/CLI, `taskiq worker`, private
  database servers, builds.

`./dev test-fast` runs `-m "not system"`; `./dev test` runs all three. A test's layer is, in
this order: its own marker (`@pytest.mark.system`, …), `system` when it uses a fixture that
starts processes, its file's entry below, else `integration`. The guard below fails a
`unit` or `integration` test the moment it starts a process it may not (or a `unit` test
that opens a network connection), naming the layer to move it to: a test that needs processes
cannot sit silently in the fast layer and slow it down.

By file name rather than folders: other branches edit these files all the time, and a
table here merges where moving fifty files would not.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

LAYERS = ("unit", "integration", "system")

# Whole files whose tests start processes (every test, or most: their module fixtures do).
SYSTEM_FILES = frozenset(
    {
        "test_alerts_system.py",
        "test_analyses_api.py",
        "test_auth.py",
        "test_auth_throttle.py",
        "test_bad_input.py",
        "test_cli_errors.py",
        "test_cli_help.py",
        "test_crash.py",
        "test_dedup_race.py",
        "test_distributed.py",
        "test_duration_numbers.py",
        "test_durable.py",
        "test_embedded_file.py",
        "test_failures_api.py",
        "test_faults.py",
        "test_first_run.py",
        "test_first_start.py",
        "test_fuzz_api.py",
        "test_gc_pauses.py",
        "test_history_metrics.py",
        "test_history_search.py",
        "test_hostile.py",
        "test_library_boundary.py",
        "test_lifecycle.py",
        "test_live_abuse.py",
        "test_live_resume.py",
        "test_live_stall.py",
        "test_logging.py",
        "test_metrics.py",
        "test_outages.py",
        "test_probes.py",
        "test_queue_control.py",
        "test_readme_commands.py",
        "test_repository_reach.py",
        "test_repository_sandbox.py",
        "test_schedules.py",
        "test_schedules_api.py",
        "test_secrets.py",
        "test_third_party.py",
        "test_wheel.py",
        "test_worker_stop.py",
        "test_workers_view.py",
    }
)
# Single tests that start processes in files that otherwise do not (by function name, all
# their parameters): if one is renamed, the guard says so at its next run.
SYSTEM_TESTS = frozenset(
    {
        "test_coordination.py::test_100_concurrent_claims_from_two_processes_have_one_winner",
        "test_migrations.py::test_tasklens_joins_an_app_with_its_own_alembic_history_and_leaves_it_as_it_was",
        "test_migrations.py::test_a_database_of_the_old_layout_moves_into_the_schema_with_every_row",
        "test_migrations.py::test_an_invalid_schema_stops_startup_naming_the_variable",
        "test_tokens.py::test_a_revoked_token_is_refused_by_every_api_process_within_5_s",
    }
)
# Files with no service at all.
UNIT_FILES = frozenset(
    {"test_alert_rules.py", "test_contract.py", "test_fingerprint.py", "test_live_hub.py"}
)
# Fixtures that start processes: a test using one is `system` wherever it is.
PROCESS_FIXTURES = frozenset({"distributed", "embedded", "foreign"})
# What an integration test may start: the product runs git for its repository analysis.
INTEGRATION_MAY_RUN = frozenset({"git"})


def layer_of(item: pytest.Item) -> str:
    own = [name for name in LAYERS if item.get_closest_marker(name) is not None]
    if len(own) > 1:
        raise pytest.UsageError(f"{item.nodeid} is marked {' and '.join(own)}: pick one layer")
    if own:
        return own[0]
    if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
        return "system"
    name = Path(str(item.fspath)).name
    function = getattr(item, "originalname", item.name)
    if name in SYSTEM_FILES or f"{name}::{function}" in SYSTEM_TESTS:
        return "system"
    return "unit" if name in UNIT_FILES else "integration"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unit: no service, no subprocess (tests/layers.py)")
    config.addinivalue_line(
        "markers", "integration: real PostgreSQL/Redis, in-process (tests/layers.py)"
    )
    config.addinivalue_line(
        "markers", "system: starts processes: servers, workers, the CLI (tests/layers.py)"
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """`-m "not system"` (test-fast) does not even import the system files: their imports
    (schemathesis, the server) cost seconds of a run meant to take few."""
    if config.getoption("markexpr", "") == "not system" and collection_path.name in SYSTEM_FILES:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = layer_of(item)
        if item.get_closest_marker(layer) is None:
            item.add_marker(layer)


class LayerViolation(AssertionError):
    pass


def _program(args: Any) -> str:
    """The program's file name, whether Popen got a list or a command line."""
    first = args if isinstance(args, str | bytes | os.PathLike) else next(iter(args), "")
    text = os.fsdecode(first)
    return os.path.basename(text.split()[0] if isinstance(args, str) and text else text)


@contextlib.contextmanager
def _guarded(layer: str, nodeid: str) -> Iterator[None]:
    """Refuses what `layer` may not do, for the length of one setup or call phase."""
    if layer == "system":
        yield
        return
    real_popen, real_connect = subprocess.Popen, socket.socket.connect

    class GuardedPopen(real_popen):  # type: ignore[valid-type,misc]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            program = _program(args)
            if layer == "unit" or program not in INTEGRATION_MAY_RUN:
                raise LayerViolation(
                    f"{nodeid} is a {layer} test but starts a process ({program}): mark it "
                    "system (tests/layers.py: SYSTEM_FILES or @pytest.mark.system)"
                )
            super().__init__(args, *rest, **kwargs)

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise LayerViolation(
                f"{nodeid} is a unit test but connects to {address}: mark it integration "
                "(tests/layers.py)"
            )
        real_connect(sock, address)

    subprocess.Popen = GuardedPopen  # type: ignore[misc]
    if layer == "unit":
        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        subprocess.Popen = real_popen  # type: ignore[misc]
        socket.socket.connect = real_connect  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    # The setup phase too: a module-scoped fixture starts its server there.
    with _guarded(layer_of(item), item.nodeid):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _guarded(layer_of(item), item.nodeid):
        return (yield)
