"""`GET /metrics`: what a Prometheus scraper sees of a real deployment running real tasks."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from support import OPERATOR_TOKEN, VIEWER_TOKEN, Api, Stack, query, wait_for
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

DASHBOARD = Path(__file__).resolve().parents[2] / "specs" / "grafana-dashboard.json"
SCRAPER_TOKEN = "scraper-token-0123456789abcdefghij"
STARTUP_SECONDS = 120  # a shared, busy test machine starts Python slowly


def start(stack: Stack, worker: bool = False) -> Api:
    api = stack.launch_api()
    api.wait_healthy(STARTUP_SECONDS)
    if worker:
        stack.start_worker(timeout=STARTUP_SECONDS)
    return api


def scrape(api: Api, token: str = VIEWER_TOKEN) -> list[Metric]:
    with api.client(token) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return list(text_string_to_metric_families(response.text))


def value(families: list[Metric], name: str, **labels: str) -> float:
    """The one sample called `name` whose labels include `labels`."""
    found = [
        s.value
        for family in families
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return float(found[0])


def samples(families: list[Metric], name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for f in families for s in f.samples if s.name == name]


def run(api: Api, failure_rate: float, count: int) -> list[str]:
    ids = []
    for _ in range(count):  # one by one: `count` > 1 would give each the same params anyway
        ids += api.enqueue("demo.flaky", failure_rate=failure_rate)
    return ids


def wait_terminal(api: Api, task_ids: list[str], status: str) -> None:
    for task_id in task_ids:
        api.wait_task(task_id, status, timeout=60)


def assert_histogram(families: list[Metric], task_name: str, status: str, count: int) -> None:
    """Cumulative buckets, `+Inf` = `_count` = the rows; the demo task sleeps at least
    10 ms, so nothing is in the buckets up to 8 ms."""
    name = "tasklens_task_duration_seconds"
    labels = {"task_name": task_name, "status": status}
    buckets = sorted(
        (float(b["le"]), v)
        for b, v in samples(families, f"{name}_bucket")
        if labels.items() <= b.items()
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), buckets
    assert buckets[-1] == (float("inf"), count)
    assert value(families, f"{name}_count", **labels) == count
    assert value(families, f"{name}_sum", **labels) >= count * 0.010
    assert all(v == 0 for le, v in buckets if le <= 0.008), buckets


def delete_every_log_row(database_url: str) -> None:
    asyncio.run(query(database_url, "DELETE FROM task_execution_logs"))


def test_distributed_metrics_follow_real_tasks(distributed: Stack) -> None:
    api = start(distributed)

    # No worker yet: what the user enqueues waits, and the scrape says so.
    waiting = api.enqueue("demo.quick", count=3)
    time.sleep(0.5)
    before = scrape(api)
    assert value(before, "tasklens_queue_depth", priority="default") == 3
    assert value(before, "tasklens_queue_depth", priority="high") == 0
    assert value(before, "tasklens_queue_oldest_waiting_age_seconds", priority="default") >= 0.5
    assert value(before, "tasklens_workers_online") == 0
    assert value(before, "tasklens_source_up", source="database") == 1
    assert value(before, "tasklens_source_up", source="redis") == 1

    distributed.start_worker(timeout=STARTUP_SECONDS)
    successes, failures = run(api, 0.0, 4), run(api, 1.0, 3)
    wait_terminal(api, waiting + successes, "success")
    wait_terminal(api, failures, "failed")

    def settled() -> bool:
        families = scrape(api)
        depths = [v for _, v in samples(families, "tasklens_queue_depth")]
        return value(families, "tasklens_workers_online") == 1 and not any(depths)

    wait_for(settled, timeout=30, what="the queue to drain with one worker online")
    after = scrape(api)
    flaky = {"task_name": "demo.flaky"}
    assert value(after, "tasklens_task_outcomes_total", status="success", **flaky) == 4
    assert value(after, "tasklens_task_outcomes_total", status="failed", **flaky) == 3
    quick = {"task_name": "demo.quick", "status": "success"}
    assert value(after, "tasklens_task_outcomes_total", **quick) == 3
    assert_histogram(after, "demo.flaky", "success", 4)
    assert_histogram(after, "demo.flaky", "failed", 3)
    assert value(after, "tasklens_queue_oldest_waiting_age_seconds", priority="default") == 0
    assert value(after, "tasklens_log_rows_dropped_total") == 0
    # The worker's own recorder, from its heartbeat, labelled by worker.
    ((worker_labels, dropped),) = samples(after, "tasklens_worker_recorder_rows_dropped_total")
    assert dropped == 0 and worker_labels["worker"]
    assert value(after, "tasklens_worker_recorder_write_failures_total") == 0
    # This API process's WebSocket clients, labelled by process.
    assert value(after, "tasklens_api_websocket_clients") == 0
    with connect(api.ws_url(VIEWER_TOKEN)) as socket_:
        assert json.loads(socket_.recv(10))["type"] == "hello"
        assert value(scrape(api), "tasklens_api_websocket_clients") == 1

    # Retention deletes the rows: the log's own counts go down, the counters do not.
    delete_every_log_row(distributed.env["TASKLENS_DATABASE_URL"])
    with api.client(VIEWER_TOKEN) as client:
        assert client.get("/api/v1/monitoring/metrics").json()["metrics"] == []
    kept = scrape(api)
    assert value(kept, "tasklens_task_outcomes_total", status="success", **flaky) == 4
    assert value(kept, "tasklens_task_outcomes_total", status="failed", **flaky) == 3
    assert_histogram(kept, "demo.flaky", "success", 4)


def test_scraper_token_reads_metrics_and_nothing_else(embedded: Stack) -> None:
    """Embedded mode (SQLite triggers, tasks run in the API process) with a scraper token."""
    embedded.env["TASKLENS_METRICS_TOKEN"] = SCRAPER_TOKEN
    api = start(embedded)
    successes, failures = run(api, 0.0, 2), run(api, 1.0, 1)
    wait_terminal(api, successes, "success")
    wait_terminal(api, failures, "failed")

    families = scrape(api, SCRAPER_TOKEN)
    flaky = {"task_name": "demo.flaky"}
    assert value(families, "tasklens_task_outcomes_total", status="success", **flaky) == 2
    assert value(families, "tasklens_task_outcomes_total", status="failed", **flaky) == 1
    assert_histogram(families, "demo.flaky", "success", 2)
    assert value(families, "tasklens_workers_online") == 1  # this process runs the tasks
    assert scrape(api, OPERATOR_TOKEN)  # any API token reads them too

    for token in (None, "not-a-token-0123456789abcdef", SCRAPER_TOKEN[:-1]):
        with api.client(token) as client:
            response = client.get("/metrics")
        assert response.status_code == 401, response.text
        assert "token" in response.json()["error"]
    with api.client(SCRAPER_TOKEN) as client:
        for path in ("/api/v1/queues", "/api/v1/monitoring/metrics", "/health/queue", "/api/v1/me"):
            response = client.get(path)
            assert response.status_code == 401, (path, response.text)
        assert client.post("/api/v1/demo", json={"task": "demo.quick"}).status_code == 401
    with pytest.raises((ConnectionClosed, InvalidStatus)), connect(api.ws_url(SCRAPER_TOKEN)) as ws:
        ws.recv(10)
        ws.recv(10)
    assert SCRAPER_TOKEN not in api.process.log()


def test_grafana_dashboard_queries_exposed_metrics(distributed: Stack) -> None:
    """Every PromQL query of specs/grafana-dashboard.json names a metric /metrics serves."""
    api = start(distributed, worker=True)
    wait_terminal(api, run(api, 0.0, 1), "success")
    wait_for(
        lambda: bool(samples(scrape(api), "tasklens_worker_recorder_buffered_rows")),
        timeout=30,
        what="the worker's heartbeat",
    )
    served = {s.name for family in scrape(api) for s in family.samples}

    dashboard = json.loads(DASHBOARD.read_text())
    variables = dashboard["templating"]["list"]
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in variables)
    panels = dashboard["panels"]
    assert len(panels) >= 7
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        exprs = [target["expr"] for target in panel["targets"]]
        assert exprs, panel["title"]
        for expr in exprs:
            names = set(re.findall(r"\btasklens_[a-z_]+", expr))
            assert names, (panel["title"], expr)
            assert names <= served, (panel["title"], names - served)
