"""Invalid settings stop startup with one line that names the variable.

Each case runs the startup check (`load_settings`, what every `tasklens` command calls first)
in this process; one case starts the real `tasklens serve` to show that it is that check
which stops the server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support import TASKLENS

from tasklens.settings import SettingsError, load_settings


@pytest.mark.unit
@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("TASKLENS_PORT", "eighty", "valid integer"),
        ("TASKLENS_PORT", "70000", "less than or equal to 65535"),
        ("TASKLENS_DATABASE_URL", "mysql://db/x", "postgresql+asyncpg://"),
        ("TASKLENS_REDIS_URL", "http://localhost", "redis://"),
        ("TASKLENS_DB_SCHEMA", "public", "a schema of its own"),
        ("TASKLENS_DB_SCHEMA", "tl; DROP TABLE x", "is not a schema name"),
        ("TASKLENS_TASK_TIMEOUT_SECONDS", "0", "greater than or equal to 1"),
        ("TASKLENS_LOST_CHECK_INTERVAL_SECONDS", "0", "greater than or equal to 0.1"),
        ("TASKLENS_LOG_RETENTION_DAYS", "forever", "valid integer"),
        ("TASKLENS_FAILED_RETENTION_DAYS", "0", "greater than or equal to 1"),
        ("TASKLENS_BULK_RETRY_MAX", "0", "greater than or equal to 1"),
        ("TASKLENS_BULK_RETRY_MAX", "all", "valid integer"),
        ("TASKLENS_FAILED_RETENTION_DAYS", "7", "less than log_retention_days (30)"),
        ("TASKLENS_API_TOKENS", "short", "at least 16 characters"),
        ("TASKLENS_METRICS_TOKEN", "scraper-token-23-chars!", "at least 24 characters"),
        ("TASKLENS_API_TOKENS", "a:admin:0123456789abcdefgh", "role viewer or operator"),
        ("TASKLENS_API_TOKENS", ":0123456789abcdefgh", "entry 1: name needs 1-64 characters"),
        ("TASKLENS_API_TOKENS", "a" * 65 + ":0123456789abcdefgh", "got 65"),
        ("TASKLENS_REPO_ROOTS", "/srv/repos,relative/dir", "relative/dir is not an absolute"),
        ("TASKLENS_GITHUB_API_URL", "ftp://github.example", "https://"),
        (
            "TASKLENS_GIT_ALLOWED_HOSTS",
            "git.corp.example,10.0.0.0/8,git server",
            "'git server' is neither a host name nor an address or network",
        ),
        ("TASKLENS_SCHEDULES_FILE", "/nonexistent/schedules.json", "No such file"),
        ("TASKLENS_API_WORKERS", "2", "more than one API process needs TASKLENS_REDIS_URL"),
        ("TASKLENS_REDACT_KEYS", "tenant,account no", "a key word is"),
        ("TASKLENS_RESULT_MAX_CHARS", "10", "greater than or equal to 1000"),
        ("TASKLENS_WS_MAX_CONNECTIONS", "0", "greater than or equal to 1"),
        ("TASKLENS_WS_MAX_CONNECTIONS_PER_TOKEN", "many", "valid integer"),
        ("TASKLENS_WS_SEND_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("TASKLENS_AUTH_FAILURE_LIMIT", "10 per minute", "must look like 5/300"),
        ("TASKLENS_TRUSTED_PROXIES", "10.0.0.1,proxy.local", "proxy.local is not an IP"),
        ("TASKLENS_LOG_FORMAT", "xml", "Input should be 'text' or 'json'"),
        ("TASKLENS_LOG_LEVEL", "loud", "Input should be 'DEBUG', 'INFO'"),
    ],
)
def test_an_invalid_setting_stops_startup_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    reason: str,
) -> None:
    for name in list(os.environ):
        if name.startswith("TASKLENS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's

    with pytest.raises(SettingsError) as stopped:
        load_settings()

    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"tasklens: invalid setting {variable}: ")
    assert reason in lines[0]


@pytest.mark.system
def test_the_server_refuses_to_start_naming_the_variable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLENS_")}
    result = subprocess.run(
        [TASKLENS, "serve"],
        env={**env, "TASKLENS_PORT": "eighty"},
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "tasklens: invalid setting TASKLENS_PORT: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]
