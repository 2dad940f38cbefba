"""Metrics and history on a known data set, in both databases: exact numbers, filters,
pagination, and 400s that name the parameter."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import STACKS
from support import Api, KnownRows

from tasklens import rollups
from tasklens.tracking.models import TaskStatus

NOW = datetime.now(UTC)
P95_ERROR = rollups.RELATIVE_ERROR  # the p95 comes from log-scale duration histograms


def _ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def _known_rows() -> KnownRows:
    data = KnownRows()
    alpha, beta = "alpha", "beta"
    for i in range(10):  # alpha, last 24 h: durations 10, 20, … 100 ms
        data.add(alpha, TaskStatus.SUCCESS, _ago(1 + i), 10.0 * (i + 1))
    data.add(alpha, TaskStatus.FAILED, _ago(2), 999, error_message="boom one")
    data.add(alpha, TaskStatus.FAILED, _ago(3), 999, error_message="boom two")
    data.add(alpha, TaskStatus.CANCELLED, _ago(4))
    data.add(alpha, TaskStatus.RUNNING, _ago(0.1))
    data.add(alpha, TaskStatus.PENDING, _ago(0.05))
    for i in range(5):  # alpha, 30 h ago: outside 24 h, inside 48 h
        data.add(alpha, TaskStatus.SUCCESS, _ago(30 + i), 1000.0)
    for duration in (5.0, 5.0, 50.0):
        data.add(beta, TaskStatus.SUCCESS, _ago(5), duration)
    return data


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir: Path = tmp_path_factory.mktemp(f"known-{request.param}")
    stack = STACKS[request.param](workdir)
    # The data set's `running` row is minutes old: a day-long task timeout keeps the reaper
    # (which closes rows older than the longest a task may run) off it while the module runs.
    stack.env["TASKLENS_TASK_TIMEOUT_SECONDS"] = "86400"
    try:
        running = stack.start_api()  # migrates the SQLite file in the embedded mode
        _known_rows().write_to(stack.env["TASKLENS_DATABASE_URL"])
        yield running
    finally:
        stack.stop_all()


def _get(api: Api, path: str, **params: Any) -> httpx.Response:
    with api.client() as client:
        return client.get(path, params=params)


def test_metrics_over_24_hours(api: Api) -> None:
    body = _get(api, "/api/v1/monitoring/metrics", time_window=24).json()
    assert body["time_window_hours"] == 24
    alpha, beta = body["metrics"]
    assert alpha == {
        "task_name": "alpha",
        "total_executions": 15,
        "pending": 1,
        "running": 1,
        "success": 10,
        "failed": 2,
        "cancelled": 1,
        "avg_duration_ms": 55.0,
        "p95_duration_ms": pytest.approx(100.0, rel=P95_ERROR),
        "success_rate": pytest.approx(10 / 13),
    }
    assert beta["avg_duration_ms"] == pytest.approx(20.0)
    assert beta["p95_duration_ms"] == pytest.approx(50.0, rel=P95_ERROR)
    assert beta["success_rate"] == 1.0


def test_metrics_over_48_hours_include_older_runs(api: Api) -> None:
    alpha = _get(api, "/api/v1/monitoring/metrics", time_window=48).json()["metrics"][0]
    assert alpha["total_executions"] == 20
    assert alpha["success"] == 15
    assert alpha["avg_duration_ms"] == pytest.approx((550 + 5000) / 15)
    assert alpha["p95_duration_ms"] == pytest.approx(1000.0, rel=P95_ERROR)
    assert alpha["success_rate"] == pytest.approx(15 / 18)


def test_history_filters_by_name_and_status(api: Api) -> None:
    body = _get(api, "/api/v1/monitoring/history", task_name="alpha", status="failed").json()
    assert body["total_count"] == 2
    assert [i["error_message"] for i in body["items"]] == ["boom one", "boom two"]  # newest 1st


def test_history_filters_by_dates(api: Api) -> None:
    start = (NOW - timedelta(hours=6, minutes=1)).isoformat()
    end = (NOW - timedelta(hours=4, minutes=30)).isoformat()
    body = _get(api, "/api/v1/monitoring/history", start_date=start, end_date=end).json()
    # alpha's successes 5 h and 6 h ago, beta's three 5 h ago
    assert body["total_count"] == 5
    assert {i["task_name"] for i in body["items"]} == {"alpha", "beta"}


def test_history_pages_newest_first(api: Api) -> None:
    first = _get(api, "/api/v1/monitoring/history", page_size=10).json()
    last = _get(api, "/api/v1/monitoring/history", page_size=10, page=3).json()
    assert (first["total_count"], first["total_pages"]) == (23, 3)
    assert first["total_is_estimate"] is False  # the hourly counts are exact
    assert len(first["items"]) == 10 and len(last["items"]) == 3
    stamps = [i["created_at"] for i in first["items"] + last["items"]]
    assert stamps == sorted(stamps, reverse=True)
    everything = {
        i["task_id"]
        for p in (1, 2, 3)
        for i in _get(api, "/api/v1/monitoring/history", page_size=10, page=p).json()["items"]
    }
    assert len(everything) == 23


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2026-13-45"}, "end_date"),
        ({"status": "exploded"}, "status"),
        ({"page": 0}, "page"),
        ({"page": 99}, "page"),
        ({"page_size": 201}, "page_size"),
        ({"page_size": "many"}, "page_size"),
        ({"start_date": "2026-02-01", "end_date": "2026-01-01"}, "start_date"),
    ],
)
def test_bad_history_parameters_are_400s_naming_them(
    api: Api, params: dict[str, object], named: str
) -> None:
    response = _get(api, "/api/v1/monitoring/history", **params)
    assert response.status_code == 400
    assert list(response.json()) == ["error"]
    assert response.json()["error"].startswith(f"invalid {named}:")


@pytest.mark.parametrize("window", [0, 721, "day"])
def test_bad_metrics_window_is_a_400(api: Api, window: object) -> None:
    response = _get(api, "/api/v1/monitoring/metrics", time_window=window)
    assert response.status_code == 400
    assert response.json()["error"].startswith("invalid time_window:")


def test_timeseries_has_every_hour_of_the_window_and_all_rows(api: Api) -> None:
    asked = datetime.now(UTC)
    body = _get(api, "/api/v1/monitoring/timeseries", time_window=48).json()
    answered = datetime.now(UTC)
    assert (body["time_window_hours"], body["bucket_seconds"]) == (48, 3600)
    series = body["series"]
    starts = [datetime.fromisoformat(b["bucket_start"]) for b in series]
    assert len(series) in (49, 50)  # the hour the window starts in through the current one
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(starts))
    # The server's clock read falls between asked and answered, which may straddle an hour
    # boundary (a CI run once crossed midnight here), so bound the buckets by both.
    window = timedelta(hours=48)
    assert asked - window - timedelta(hours=1) < starts[0] <= answered - window
    assert asked - timedelta(hours=1) < starts[-1] <= answered
    assert starts[0].utcoffset() == timedelta(0)
    totals = {k: sum(b[k] for b in series) for k in ("total", "success", "failed", "cancelled")}
    assert totals == {"total": 23, "success": 18, "failed": 2, "cancelled": 1}


def test_timeseries_for_one_task_carries_its_p95(api: Api) -> None:
    series = _get(api, "/api/v1/monitoring/timeseries", time_window=24, task_name="beta").json()[
        "series"
    ]
    busy = [b for b in series if b["total"]]
    assert len(busy) == 1 and busy[0]["success"] == 3
    assert busy[0]["p95_duration_ms"] == pytest.approx(50.0, rel=P95_ERROR)
    assert all(b["p95_duration_ms"] is None for b in series if not b["success"])


@pytest.mark.parametrize("window", [0, 721, "day"])
def test_bad_timeseries_window_is_a_400(api: Api, window: object) -> None:
    response = _get(api, "/api/v1/monitoring/timeseries", time_window=window)
    assert response.status_code == 400
    assert response.json()["error"].startswith("invalid time_window:")


@pytest.mark.parametrize(
    "params",
    [
        {"start_date": "0001-01-01T00:00:00+05:00"},  # before year 1 in UTC
        {"end_date": "9999-12-31T23:59:59-05:00"},  # after year 9999 in UTC
        {"start_date": "10000-01-01T00:00:00Z"},
        {"end_date": "99999999999999999999"},
        {"start_date": "2024-05-01T12:00:00+24:00"},
    ],
    ids=["year-0", "year-10000-by-offset", "year-10000", "huge-epoch", "offset-24h"],
)
def test_a_date_outside_the_supported_range_is_a_400(api: Api, params: dict[str, str]) -> None:
    response = _get(api, "/api/v1/monitoring/history", **params)
    assert response.status_code == 400, response.text
    [(named, _value)] = params.items()
    assert response.json()["error"].startswith(f"invalid {named}:"), response.text


@pytest.mark.parametrize(
    ("params", "rows"),
    [
        ({"start_date": "0001-01-01T00:00:00Z"}, 23),
        ({"start_date": "0001-01-01T00:00:00"}, 23),
        ({"end_date": "9999-12-31T23:59:59"}, 23),
        ({"end_date": "9999-12-31T23:59:59.999999Z"}, 23),
        ({"start_date": "0001-01-01T00:00:00Z", "end_date": "9999-12-31T23:59:59Z"}, 23),
        ({"end_date": "0001-01-01T23:59:59+05:00"}, 0),
        ({"start_date": "9999-12-31T00:00:00+05:00"}, 0),
    ],
)
def test_the_extremes_of_the_range_are_answered(
    api: Api, params: dict[str, str], rows: int
) -> None:
    response = _get(api, "/api/v1/monitoring/history", page_size=1, **params)
    assert response.status_code == 200, response.text
    assert response.json()["total_count"] == rows
