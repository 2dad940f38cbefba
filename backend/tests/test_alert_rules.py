"""The alerts file: the issue's example works as written, every bad entry is named, a
webhook URL is never shown in full, and the webhook body keeps its shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tasklens.alerts.rules import AlertsFileError, parse_alerts, shown_url
from tasklens.alerts.webhooks import Notification
from tasklens.settings import SettingsError, load_settings

EXAMPLE: dict[str, Any] = {
    "webhooks": {"ops": "https://hooks.example/T0/B0/very-secret"},
    "rules": [
        {
            "name": "flaky-failing",
            "kind": "failure_rate",
            "task_name": "demo.flaky",
            "window_minutes": 5,
            "threshold": 0.5,
            "min_runs": 5,
            "notify": ["ops"],
            "cooldown_minutes": 10,
        }
    ],
}


def test_the_issues_example_is_read_as_written() -> None:
    config = parse_alerts(json.dumps(EXAMPLE))
    [rule] = config.rules
    assert rule.kind == "failure_rate" and rule.name == "flaky-failing"
    assert (rule.window_minutes, rule.threshold, rule.min_runs) == (5, 0.5, 5)
    assert (rule.notify, rule.cooldown_minutes) == (("ops",), 10)


def test_every_kind_is_accepted_with_its_own_fields() -> None:
    rules = [
        {"name": "a", "kind": "failure_rate", "threshold": 0.2},
        {"name": "b", "kind": "new_failure", "threshold": 3},
        {"name": "c", "kind": "queue_age", "queue": "low", "threshold": 300},
        {"name": "d", "kind": "no_workers", "threshold": 60},
        {"name": "e", "kind": "slow", "task_name": "demo.slow", "threshold": 2000},
        {"name": "f", "kind": "log_loss", "threshold": 30},
    ]
    assert [r.kind for r in parse_alerts(json.dumps({"rules": rules})).rules] == [
        "failure_rate", "new_failure", "queue_age", "no_workers", "slow", "log_loss"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"threshold": 2}, "rules[0].threshold: Input should be less than or equal to 1"),
        ({"threshold": "high"}, "rules[0].threshold: Input should be a valid number"),
        ({"notify": ["pager"]}, "rules[0].notify: no webhook named 'pager'"),
        ({"window_minutes": 0}, "rules[0].window_minutes: Input should be greater than 0"),
        ({"kind": "cpu"}, "rules[0]: Input tag 'cpu' found using 'kind' does not match"),
        ({"colour": "red"}, "rules[0].colour: Extra inputs are not permitted"),
        ({"name": "a b"}, "rules[0].name: String should match pattern"),
    ],
)
def test_a_bad_entry_is_named(change: dict[str, object], message: str) -> None:
    data = {**EXAMPLE, "rules": [EXAMPLE["rules"][0] | change]}
    with pytest.raises(AlertsFileError) as refused:
        parse_alerts(json.dumps(data))
    assert str(refused.value).startswith(message)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://hooks.example/x", "javascript:alert(1)", "https://"]
)
def test_only_http_webhooks_are_accepted_and_the_refusal_does_not_repeat_the_url(
    url: str,
) -> None:
    with pytest.raises(AlertsFileError) as refused:
        parse_alerts(json.dumps({**EXAMPLE, "webhooks": {"ops": url}}))
    assert str(refused.value) == "webhooks.ops: must be an http:// or https:// URL"


def test_two_rules_may_not_share_a_name() -> None:
    rule = EXAMPLE["rules"][0]
    with pytest.raises(AlertsFileError, match=r"rules\[1\].name: 'flaky-failing' is used twice"):
        parse_alerts(json.dumps({**EXAMPLE, "rules": [rule, rule]}))


def test_startup_stops_naming_the_variable_and_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({**EXAMPLE, "rules": [EXAMPLE["rules"][0] | {"threshold": 2}]}))
    with pytest.raises(SettingsError):
        load_settings(database_url="sqlite+aiosqlite:///:memory:", alerts_file=path)
    assert capsys.readouterr().err.strip() == (
        "tasklens: invalid setting TASKLENS_ALERTS_FILE: "
        "rules[0].threshold: Input should be less than or equal to 1"
    )


def test_a_webhook_url_is_shown_as_its_scheme_and_host_only() -> None:
    assert shown_url("https://hooks.example/T0/B0/very-secret?x=1") == "https://hooks.example/…"
    assert shown_url("http://user:pw@10.0.0.5:9000/p") == "http://10.0.0.5:9000/…"


def test_the_webhook_body_is_stable_and_has_a_text_for_slack() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = Notification(
        rule="flaky-failing", kind="failure_rate", state="firing", value=0.6, threshold=0.5,
        unit="share", since=moment, at=moment, link="http://d/monitoring", firing_id=7,
    ).body()  # fmt: skip
    assert set(body) == {
        "rule", "kind", "state", "value", "threshold", "unit", "since", "at", "url",
        "firing_id", "text",
    }  # fmt: skip
    assert body["since"] == "2026-01-02T03:04:05+00:00"
    assert "flaky-failing is firing" in body["text"] and "http://d/monitoring" in body["text"]
