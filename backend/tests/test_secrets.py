"""Secrets are never stored, served, broadcast or logged: the rules of redaction.py, in
process, and through TaskLens's embedded runtime (its own broker, recorder and SQLite log)
with its settings. The same rules through real worker processes: tests/test_hostile.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from support import OPERATOR_TOKEN, TASKLENS, Stack

from tasklens.api.app import create_app
from tasklens.api.spa import mount_spa
from tasklens.log_setup import redact_query
from tasklens.process import serve_runtime, settings_redactor
from tasklens.runtime import Runtime
from tasklens.settings import load_settings
from tasklens.tracking.database import own_name
from tasklens.tracking.redaction import (
    REDACTED,
    Redactor,
    looks_like_secret,
    redact,
)

NEW_WORDS = ["passwd", "pwd", "dsn", "cookie", "session", "credential", "private", "signature"]


@pytest.mark.parametrize("word", NEW_WORDS)
def test_the_new_sensitive_key_words_are_redacted(word: str) -> None:
    params = {f"db_{word}": "s3cr3t-value", word.upper(): "s3cr3t-value", "plain": "kept"}
    assert redact(params) == {f"db_{word}": REDACTED, word.upper(): REDACTED, "plain": "kept"}


@pytest.mark.parametrize(
    "value",
    [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "Bearer abc123def456",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "postgresql://app:hunter22@db/prod",
        "kQ7vN2xR9pL4mZ8tW3yB6cJ1",  # 24 mixed-case letters and digits
        "9f86d081884c7d659a2feaa0c55ad015",  # 32 hex digits
    ],
)
def test_secret_shaped_values_are_recognised(value: str) -> None:
    assert looks_like_secret(value)


@pytest.mark.parametrize(
    "value",
    ["inv-1", "hello world", "550e8400-e29b-41d4-a716-446655440000", "reports/2024/summary", 42],
)
def test_ordinary_values_are_not_taken_for_secrets(value: Any) -> None:
    assert not looks_like_secret(value)


def test_positional_args_are_redacted_by_name_else_by_shape() -> None:
    redactor = Redactor()

    async def send_invoice(invoice_id: str, api_key: str, *rest: Any) -> None: ...

    task = SimpleNamespace(original_func=send_invoice)  # as taskiq's decorated task has it
    known = redactor.positions("billing.send", lambda _: task)
    assert known == (False, True)
    args = ["inv-1", "short", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "more"]
    assert redactor.params(args, {}, known) == {"_args": ["inv-1", REDACTED, REDACTED, "more"]}
    unknown = redactor.positions("billing.elsewhere", lambda _: None)
    assert unknown is None
    assert redactor.params(args, {"token": "x"}, unknown) == {
        "token": REDACTED,
        "_args": ["inv-1", "short", REDACTED, "more"],
    }


def test_error_text_loses_param_secrets_configured_secrets_and_credentials() -> None:
    redactor = Redactor(secrets=["configured-secret-1", "tiny"])
    secrets = redactor.secret_values(
        ["inv-1", "positional-secret"], {"nested": {"password": ["pass-word-1"]}}, (False, True)
    )
    assert secrets == ["configured-secret-1", "positional-secret", "pass-word-1"]
    text = (
        "refused positional-secret and pass-word-1 (configured-secret-1); tiny; "
        "Authorization: Bearer abc123def456; redis://:p4ssw0rd@cache:6379/0; "
        "GET /x?api_key=zzz&page=2; basic usage; token expired"
    )
    assert redactor.scrub_text(text, secrets) == (
        "refused *** and *** (***); tiny; Authorization: Bearer ***; redis://:***@cache:6379/0; "
        "GET /x?api_key=***&page=2; basic usage; token expired"
    )


def test_results_lose_secret_keys_and_secret_values_as_deep_as_they_go() -> None:
    redactor = Redactor()
    nested: Any = {"api_key": "k", "note": "paid with the-card-secret"}
    for _ in range(100):
        nested = {"d": nested}
    scrubbed = redactor.scrub_result(nested, lambda: ["the-card-secret"])
    for _ in range(100):
        scrubbed = scrubbed["d"]
    assert scrubbed == {"api_key": REDACTED, "note": "paid with ***"}
    preview = {"truncated": True, "preview": '{"session_id": "abc", "x": "the-card-secret'}
    assert redactor.scrub_result(preview, lambda: ["the-card-secret"]) == {
        "truncated": True,
        "preview": '{"session_id": "***", "x": "***',
    }


def test_the_settings_name_the_process_secrets_and_extra_key_words() -> None:
    settings = load_settings(
        database_url="postgresql+asyncpg://app:db-pass-123@db/tasklens",
        redis_url="redis://:redis-pass-456@cache:6379/0",
        api_tokens=f"ops:operator:{OPERATOR_TOKEN}",
        github_token="ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        redact_keys="Tenant, account_no",
    )
    redactor = settings_redactor(settings)
    assert set(redactor.secrets) == {
        OPERATOR_TOKEN,
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "db-pass-123",
        "redis-pass-456",
    }
    assert redactor.redact({"tenant_id": 7, "account_no": "x", "user": "y"}) == {
        "tenant_id": REDACTED,
        "account_no": REDACTED,
        "user": "y",
    }


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        ("/monitoring?token=abcdef123456", "/monitoring?token=***"),
        ("/monitoring?%74oken=abcdef123456", "/monitoring?token=***"),
        ("/monitoring?TOKEN=abcdef123456", "/monitoring?TOKEN=***"),
        ("/monitoring?token%3Dabcdef123456", "/monitoring?token=***"),
        ("/monitoring?x=1;token=abcdef123456", "/monitoring?x=1;token=***"),
        ("/monitoring;token=abcdef123456", "/monitoring;token=***"),
        ("/monitoring%3Btoken%3Dabcdef123456", "/monitoring%3Btoken=***"),  # as uvicorn logs it
        ("/m?token=abcdef123456&token=abcdef123456", "/m?token=***&token=***"),
        ("/m?%2574oken=abcdef123456", "/m?token=***"),
        ("/m?x=a%26token%3Dabcdef123456", "/m?x=a&token=***"),
        ("/api/v1/tasks?limit=5&status=failed", "/api/v1/tasks?limit=5&status=failed"),
    ],
)
def test_every_spelling_of_a_token_in_a_url_is_redacted(logged: str, shown: str) -> None:
    assert redact_query(logged) == shown
    assert "abcdef123456" not in redact_query(f'GET {logged} HTTP/1.1" referer "{logged}"')


async def _row(runtime: Runtime, task_id: str, status: str) -> dict[str, Any]:
    log = own_name("task_execution_logs", runtime.engine.dialect)
    query = sa.text(
        f"SELECT params, result, error_message, error_traceback FROM {log} "
        "WHERE task_id = :task_id AND status = :status"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await runtime.recorder.flush()
        async with runtime.engine.connect() as conn:
            row = (await conn.execute(query, {"task_id": task_id, "status": status})).first()
        if row is not None:
            return {
                "params": json.loads(row.params) if row.params else None,
                "result": json.loads(row.result) if row.result else None,
                "error_message": row.error_message,
                "error_traceback": row.error_traceback,
            }
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} never reached {status}")


async def test_the_embedded_runtime_applies_its_settings_to_params_errors_and_results(
    tmp_path: Path,
) -> None:
    """TASKLENS_REDACT_KEYS, TASKLENS_RESULT_MAX_CHARS and the API tokens as secrets, through
    TaskLens's own broker, middleware and recorder into its SQLite log."""
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/log.db",
        api_tokens=f"ops:operator:{OPERATOR_TOKEN}",
        redact_keys="tenant",
        result_max_chars=1_000,
    )
    runtime = serve_runtime(settings)

    @runtime.broker.task(task_name="test.report")
    async def report(tenant_ref: str, size: int) -> dict[str, Any]:
        if size < 0:
            raise RuntimeError(f"tenant {tenant_ref} refused; operator token {OPERATOR_TOKEN}")
        return {"tenant_name": "acme", "body": "z" * size, "ref": tenant_ref}

    await runtime.start()
    try:
        small = await report.kiq("acme-ref-0001", 10)
        big = await report.kiq("acme-ref-0001", 5_000)
        failed = await report.kiq("acme-ref-0001", -1)
        row = await _row(runtime, small.task_id, "success")
        assert row["params"] == {"_args": [REDACTED, 10]}
        assert row["result"] == {"tenant_name": REDACTED, "body": "z" * 10, "ref": REDACTED}
        row = await _row(runtime, big.task_id, "success")
        assert row["result"]["truncated"] is True
        assert len(row["result"]["preview"]) <= 1_000
        assert '"tenant_name":"***"' in row["result"]["preview"]
        row = await _row(runtime, failed.task_id, "failed")
        assert row["error_message"] == "RuntimeError: tenant *** refused; operator token ***"
        assert "acme-ref-0001" not in row["error_traceback"]
        assert OPERATOR_TOKEN not in row["error_traceback"]
    finally:
        await runtime.stop()


def test_a_token_minted_with_the_cli_never_reaches_a_task_error(distributed: Stack) -> None:
    """The worker sees only the stored digests: it finds the token in the error's text by
    hashing each token-sized run of characters (here glued to `record-`)."""
    minted = subprocess.run(
        [TASKLENS, "token", "--name", "auditor", "--role", "viewer"],
        cwd=distributed.workdir,
        env={**os.environ, **distributed.env},
        capture_output=True,
        text=True,
        check=True,
    )
    token = minted.stdout.strip().splitlines()[-1]
    api = distributed.start_api()
    distributed.start_worker()
    [task_id] = api.enqueue("demo.flaky", record_id=token, failure_rate=1.0)
    attempt = api.wait_task(task_id, "failed")["attempts"][0]
    assert attempt["error_message"] == "DemoFailure: could not import record ***"
    assert "invalid literal for int() with base 10: 'record-***'" in attempt["error_traceback"]


def test_a_static_asset_of_the_dashboard_sends_no_referrer(tmp_path: Path) -> None:
    """The built SPA's files (absent in this checkout, so a made-up build here) go through
    the same middleware stack as the API: no lifespan needed to serve a file."""
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.js").write_text("console.log('dashboard')")
    (tmp_path / "index.html").write_text("<!doctype html><title>TaskLens</title>")
    app = create_app(load_settings(database_url="sqlite+aiosqlite:///:memory:"))
    routes = app.router.routes
    before = len(routes)
    mount_spa(app, tmp_path)  # ahead of the routes create_app mounted for the missing build
    routes[0:0], routes[before:] = routes[before:], []
    client = TestClient(app)
    for path in ("/assets/app.js", "/assets/missing.js"):
        response = client.get(path)
        assert response.headers["Referrer-Policy"] == "no-referrer", path
    assert client.get("/assets/app.js").text == "console.log('dashboard')"
