"""Schemathesis against a real distributed stack: every operation of the published OpenAPI
document, with an operator token, fed generated valid and invalid input.

Asserts what the API promises: no 5xx, every 4xx is `{"error": "<non-empty>"}` (FastAPI's
`{"detail": ...}` never leaks), and every response matches the schema (status codes, content
types, bodies). Examples are bounded and derandomized so CI is stable; raise
`TASKLENS_FUZZ_EXAMPLES` to search harder locally.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from conftest import distributed_stack
from hypothesis import HealthCheck, settings
from support import OPERATOR_TOKEN, Api, free_port

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openapi.json"
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis's default
MAX_EXAMPLES = int(os.environ.get("TASKLENS_FUZZ_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    stack = distributed_stack(tmp_path_factory.mktemp("fuzz"))
    stack.env.update(
        {
            # Nothing listens there: generated github_user analyses fail at once, offline.
            "TASKLENS_GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",
            "TASKLENS_MAX_RETRIES": "0",
            "TASKLENS_TASK_TIMEOUT_SECONDS": "5",
            # Schemathesis sends wrong tokens on purpose, from one address, many a minute.
            "TASKLENS_AUTH_FAILURE_LIMIT": "100000/60",
        }
    )
    try:
        api = stack.start_api()
        stack.start_worker()
        yield api
    finally:
        stack.stop_all()


# The checked-in contract, which tests/test_contract.py holds equal to what the app serves.
# Schemathesis applies the token itself, so it knows which requests it sent without one.
schema = schemathesis.openapi.from_path(
    SPEC,
    config=schemathesis.Config.from_dict(
        {
            "auth": {"openapi": {"HTTPBearer": {"bearer": OPERATOR_TOKEN}}},
            "operations": [
                {
                    # Schema-valid yet refused on purpose, naming the field: a subject that is
                    # neither a git URL nor a GitHub login, a page past the last one, a start
                    # date after the end date, a NUL byte in a free-text parameter (`?actor=`).
                    "include-path-regex": "^/api/v1/(analyses|monitoring/history|failures|audit)",
                    "checks": {
                        "positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}
                    },
                },
                {
                    # The documented 504 (with the task id to poll) past `?timeout=`.
                    "include-path": "/api/v1/analyses/sync",
                    "checks": {
                        "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "504"]}
                    },
                },
            ],
        }
    ),
)


@schemathesis.check
def errors_are_json_with_an_error_field(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every 4xx is `{"error": "<non-empty string>"}` (a 5xx fails `not_a_server_error`)."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
    assert "detail" not in body, f"FastAPI's default error leaked: {body!r}"
    error = body.get("error")
    assert isinstance(error, str) and error.strip(), f"no error message: {body!r}"
    return True


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_survives_generated_input(
    fuzzed_api: Api, case: schemathesis.Case[Any]
) -> None:
    case.call_and_validate(
        base_url=fuzzed_api.base_url,
        additional_checks=[errors_are_json_with_an_error_field],
        timeout=60,
    )
