"""specs/openapi.json is the API contract: it must match what the app serves."""

from __future__ import annotations

import json
from pathlib import Path

from tasklens.api.app import openapi_document

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openapi.json"


def test_the_checked_in_contract_matches_the_app() -> None:
    assert json.loads(SPEC.read_text()) == json.loads(openapi_document()), (
        "specs/openapi.json is stale: run `./dev openapi` and commit it"
    )
