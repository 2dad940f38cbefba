"""The layer rule holds at run time (layers.py): a test outside the `system` layer that starts
a process, or a `unit` test that opens a connection, fails at once, saying where it belongs."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest
from layers import LayerViolation
from support import TASKLENS


@pytest.mark.unit
def test_a_unit_test_cannot_start_a_process() -> None:
    with pytest.raises(LayerViolation, match=r"is a unit test but starts a process \(git\)"):
        subprocess.run(["git", "--version"], check=True)


@pytest.mark.unit
async def test_nor_through_asyncio() -> None:
    with pytest.raises(LayerViolation, match="mark it system"):
        await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")


@pytest.mark.unit
def test_a_unit_test_cannot_connect_to_a_service() -> None:
    with socket.socket() as sock, pytest.raises(LayerViolation, match="mark it integration"):
        sock.connect(("127.0.0.1", 5432))


@pytest.mark.integration
def test_an_integration_test_may_run_git_but_not_tasklens() -> None:
    assert subprocess.run(["git", "--version"], capture_output=True, check=True).returncode == 0
    with pytest.raises(LayerViolation, match=r"integration test but starts a process \(tasklens\)"):
        subprocess.run([TASKLENS, "--help"], check=True)


@pytest.mark.system
def test_a_system_test_starts_what_it_needs() -> None:
    done = subprocess.run([sys.executable, "-c", "print('hi')"], capture_output=True, text=True)
    assert done.stdout == "hi\n"
