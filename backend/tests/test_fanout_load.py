"""`bench fanout`'s two load generators, at a small scale against a real `tasklens serve`:
the compiled clients (fanout_clients.c) and Python's count every event each client got, and
time each one, as the target's figures assume. Counts only: the speed is the benchmark's."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from conftest import fresh_postgres, fresh_redis

from benchmarks import fanout

pytestmark = pytest.mark.system

CLIENTS, RATE, SECONDS = 24, 40.0, 1.0


@pytest.mark.parametrize("generator", ["native", "python"])
def test_every_client_counts_and_times_every_event(generator: str) -> None:
    if generator == "native" and fanout.native_clients() is None:
        pytest.skip("no C compiler on this machine: the benchmark falls back to Python's clients")
    figures = asyncio.run(
        fanout.run(
            fresh_redis(),
            fresh_postgres(),
            CLIENTS,
            RATE,
            SECONDS,
            health_rate=5.0,
            processes=2,
            load_generator=generator,
        )
    )

    events = RATE * SECONDS
    assert figures["fanout_events_sent"] == events
    assert figures["fanout_frames_received"] == events * CLIENTS
    assert figures["fanout_fewest_events_one_client"] == events
    assert figures["fanout_clients_cut_off"] == 0
    assert figures["load_processes_native"] == (generator == "native")
    # the native clients time every event at every client; Python's one client in ten
    # (clients 0 and 10 of each process's 12)
    exact_clients = CLIENTS if generator == "native" else 4
    assert figures["fanout_exact_clients"] == exact_clients
    assert figures["fanout_exact_frames"] == events * exact_clients
    # every event arrived after it was stamped, and within the run
    assert 0 < figures["fanout_exact_p50_ms"] <= figures["fanout_exact_p99_ms"] < 10_000
    if generator == "native":  # the same events, each at most its read's oldest's latency
        assert figures["fanout_exact_p99_ms"] <= figures["fanout_p99_ms"]
