"""With no configured tokens, the first start prints an admin token once (Jupyter-style); a
busy port stops it before that token (or the database) exists."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import httpx
from support import TASKLENS, Stack, free_port


def test_first_start_prints_a_token_once_and_the_demo_command_works(tmp_path: Path) -> None:
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/t.db",
            "TASKLENS_REDIS_URL": "",
            "TASKLENS_API_TOKENS": "",
        },
    )
    try:
        api = stack.start_api()
        match = re.search(r"/monitoring\?token=(\S+)", api.process.log())
        assert match, api.process.log()
        token = match.group(1)
        me = httpx.get(api.base_url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json() == {"name": "admin", "role": "operator"}

        port = api.base_url.rsplit(":", 1)[1]
        demo = stack._spawn("demo", ["demo", "--count", "5"], {"TASKLENS_PORT": port})
        assert demo.popen.wait(60) == 0, demo.log()
        assert "enqueued 5 demo tasks" in demo.log()
        assert token not in demo.log()

        api.process.stop()
        again = stack.start_api("api-again")
        assert "/monitoring?token=" not in again.process.log()  # printed once only
    finally:
        stack.stop_all()
    assert token not in (tmp_path / "t.db").read_bytes().decode(errors="replace")


def test_a_busy_port_stops_serve_before_the_admin_token_is_created(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", port))
        other_program.listen()
        serve = subprocess.run(
            [TASKLENS, "serve"],
            cwd=tmp_path,
            env={
                **os.environ,
                "TASKLENS_PORT": str(port),
                "TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/tasklens.db",
                "TASKLENS_DATA_DIR": str(tmp_path / "data"),
                "TASKLENS_REDIS_URL": "",
                "TASKLENS_API_TOKENS": "",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert serve.returncode == 2, serve.stdout + serve.stderr
    assert serve.stderr.strip().splitlines() == [
        f"tasklens: port {port} on 127.0.0.1 is in use by another program: set TASKLENS_PORT "
        "to a free port (or stop that program)"
    ]
    assert "token" not in serve.stdout
    assert not (tmp_path / "data").exists()  # no database file, so no token row either
