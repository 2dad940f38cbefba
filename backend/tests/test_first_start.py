"""With no configured tokens, the first start prints an admin token once (Jupyter-style)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from support import Stack


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
