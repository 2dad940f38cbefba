"""The first run from a clone: `./dev` lists what it can do, `./dev up` does not rebuild an
unchanged dashboard and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from dev_launcher import DEV, REPO, dev_env, recipes
from support import free_port


def embedded(tmp_path: Path, port: int) -> dict[str, str]:
    """An embedded server of its own: port, database and data directory under tmp_path."""
    return {
        "TASKLENS_PORT": str(port),
        "TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/tasklens.db",
        "TASKLENS_DATA_DIR": str(tmp_path / "data"),
        "TASKLENS_REDIS_URL": "",
        "TASKLENS_API_TOKENS": "",
    }


def test_dev_alone_lists_every_recipe_with_a_description() -> None:
    listed = subprocess.run(
        [str(DEV)], cwd="/", env=dev_env(), capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    for recipe in recipes():
        if recipe == "default":  # private: it is what `./dev` alone runs
            continue
        line = next((x for x in listed.stdout.splitlines() if x.split()[:1] == [recipe]), None)
        assert line is not None, (recipe, listed.stdout)
        assert " # " in line and len(line.split(" # ", 1)[1]) > 10, line


def test_dev_up_skips_an_unchanged_build_and_ctrl_c_stops_it_cleanly(tmp_path: Path) -> None:
    """Ctrl-C in a terminal is SIGINT to the whole foreground process group: the same here."""
    env = dev_env(**embedded(tmp_path, free_port()))
    install = subprocess.run(
        [str(DEV), "install"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert install.returncode == 0, install.stderr  # builds the dashboard only if it must
    (REPO / "frontend" / "index.html").touch()  # a new mtime, the same content: no rebuild
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [str(DEV), "up"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a terminal's foreground job
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        url = f"http://127.0.0.1:{env['TASKLENS_PORT']}/health"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and up.poll() is None:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert up.poll() is None, log.read_text()
        assert httpx.get(url, timeout=5).status_code == 200, log.read_text()
        os.killpg(up.pid, signal.SIGINT)
        code = up.wait(60)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
    output = log.read_text()
    assert code == 0, output
    assert "terminated" not in output and "interrupted" not in output, output  # just's words
    assert "Traceback" not in output, output
    assert "Shutting down" in output and "Finished server process" in output, output
    assert "dev: dashboard up to date" in output, output  # as the install just before left it
    assert "building dashboard" not in output and "npm install" not in output, output
    assert "/monitoring?token=" in output  # it really started, on this test's empty database
