"""The repository's `./dev` launcher and the `just` it runs, for tests that do what a newcomer
does from a clone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "dev"


def just_path() -> str:
    """`just` as `./dev` finds it: on PATH (CI runs under `./dev`), or under .tools/. Without
    it the test is skipped on a laptop, failed in CI: `./dev` would download it."""
    found = shutil.which("just") or shutil.which("just", path=str(REPO / ".tools" / "bin"))
    if found is None:
        message = "needs `just` on PATH or in .tools/bin: run the tests through ./dev"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def dev_env(**settings: str) -> dict[str, str]:
    """The caller's environment with `just` (and `uv` beside it) first on PATH, so `./dev`
    installs nothing, plus the given TASKLENS_* settings."""
    tools = str(Path(just_path()).parent)
    return {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}", **settings}


def recipes() -> set[str]:
    import subprocess

    summary = subprocess.run(
        [just_path(), "--summary"], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(summary.stdout.split())
