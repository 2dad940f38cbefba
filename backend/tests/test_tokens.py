"""Token names are 1-64 printable characters on every backend; stored tokens can be listed
and revoked, and a revoked token is refused by every API process within 5 s."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from conftest import distributed_stack, fresh_sqlite
from support import OPERATOR_TOKEN, Stack, wait_for

from tasklens.tokens import InvalidTokenName, Role, TokenRegistry
from tasklens.tracking.database import create_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return fresh_sqlite(tmp_path / "tokens.db")


@pytest.fixture
async def registry(database_url: str) -> AsyncIterator[TokenRegistry]:
    engine = create_engine(database_url)
    yield TokenRegistry(engine, [])
    await engine.dispose()


@pytest.mark.parametrize(
    "name",
    ["", "a\x07b", "line\nbreak", "tab\there", "x" * 65, "x" * 100_000],
    ids=["empty", "bell", "newline", "tab", "65", "100000"],
)
async def test_a_bad_token_name_is_refused(registry: TokenRegistry, name: str) -> None:
    with pytest.raises(InvalidTokenName):
        await registry.create(name, Role.VIEWER)
    assert await registry.list() == []


async def test_printable_names_up_to_64_characters_are_kept(registry: TokenRegistry) -> None:
    names = ["x" * 64, "ops team: Zoë 🚀", "a"]
    for name in names:
        assert await registry.create(name, Role.VIEWER) is not None
    assert sorted(t.name for t in await registry.list()) == sorted(names)


def _cli(stack: Stack, name: str, *args: str) -> str:
    process = stack._spawn(name, ["token", *args], {})
    assert process.popen.wait(120) == 0, process.log()
    return process.log().strip()


def test_a_revoked_token_is_refused_by_every_api_process_within_5_s(tmp_path: Path) -> None:
    stack = distributed_stack(tmp_path)
    try:
        apis = [stack.start_api("api-1"), stack.start_api("api-2")]
        token = _cli(stack, "create", "--name", "ci bot", "--role", "viewer")
        headers = {"Authorization": f"Bearer {token}"}

        def status(api_url: str) -> int:
            return httpx.get(api_url + "/api/v1/me", headers=headers, timeout=10).status_code

        for api in apis:  # each process now holds the token in its cache
            assert status(api.base_url) == 200
        listed = _cli(stack, "list", "--list")
        assert listed.splitlines() == [
            "ops\toperator\tconfigured",
            "watcher\tviewer\tconfigured",
            "ci bot\tviewer\tstored",
        ]
        assert token not in listed and OPERATOR_TOKEN not in listed

        _cli(stack, "revoke", "--revoke", "ci bot")
        revoked_at = time.monotonic()
        for api in apis:
            wait_for(
                lambda url=api.base_url: status(url) == 401,  # type: ignore[misc]
                timeout=30,
                what=f"{api.base_url} to refuse the token",
            )
        took = time.monotonic() - revoked_at
        assert took < 5, f"refused after {took:.1f} s"
        with httpx.Client(headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as client:
            assert client.get(apis[0].base_url + "/api/v1/me").status_code == 200

        again = stack._spawn("revoke-again", ["token", "--revoke", "ci bot"], {})
        assert again.popen.wait(120) == 1
        assert again.log().strip() == "tasklens: no token named 'ci bot'"
        configured = stack._spawn("revoke-configured", ["token", "--revoke", "ops"], {})
        assert configured.popen.wait(120) == 1
        assert "comes from TASKLENS_API_TOKENS" in configured.log()

        with httpx.Client(headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}) as client:
            audit = client.get(apis[1].base_url + "/api/v1/audit").json()["items"]
        on_record = [(e["action"], e["target"], e["count"], e["outcome"]) for e in audit]
        assert on_record == [  # newest first; the token itself is in no entry
            ("token_revoke", "ops", 0, "refused: no stored token of that name"),
            ("token_revoke", "ci bot", 0, "refused: no stored token of that name"),
            ("token_revoke", "ci bot", 1, "ok"),
            ("token_create", "ci bot", 1, "ok"),
        ]
        assert all(e["actor"].startswith("cli") for e in audit) and token not in str(audit)
    finally:
        stack.stop_all()
