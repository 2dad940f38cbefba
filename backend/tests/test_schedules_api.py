"""GET /api/v1/schedules through a real server: the empty state without a schedules file,
every entry with its next run in UTC, and the outcome of what a scheduler last sent."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pycron
from redis.asyncio import Redis
from support import VIEWER_TOKEN, Api, Stack, free_port, wait_for

from tasklens.schedule_lease import Sent, record_sent
from tasklens.schedules import REFRESH_TASK, load_schedules
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import build_recorder


def _schedules(api: Api) -> dict[str, Any]:
    with api.client(VIEWER_TOKEN) as client:  # reading them is a viewer's right
        response = client.get("/api/v1/schedules")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_without_a_schedules_file_the_answer_says_none_is_configured(embedded: Stack) -> None:
    api = embedded.start_api()
    assert _schedules(api) == {"configured": False, "error": None, "schedules": []}


def _write(path: Path) -> Path:
    path.write_text(
        json.dumps(
            {
                "schedules": [
                    {"kind": "github_user", "subject": "octocat", "cron": "30 2 * * *"},
                    {
                        "kind": "repository",
                        "subject": "https://example.com/r.git",
                        "period": "1_month",
                        "interval_seconds": 3600,
                    },
                ]
            }
        )
    )
    return path


def test_each_entry_has_its_next_run_in_utc(embedded: Stack, tmp_path: Path) -> None:
    embedded.env["TASKLENS_SCHEDULES_FILE"] = str(_write(tmp_path / "schedules.json"))
    api = embedded.start_api()
    asked = datetime.now(UTC)
    body = _schedules(api)
    assert (body["configured"], body["error"]) == (True, None)
    daily, hourly = body["schedules"]
    assert {k: daily[k] for k in ("kind", "subject", "period", "cron", "interval_seconds")} == {
        "kind": "github_user",
        "subject": "octocat",
        "period": None,
        "cron": "30 2 * * *",
        "interval_seconds": None,
    }
    next_daily = datetime.fromisoformat(daily["next_run_at"])
    assert next_daily.utcoffset() == timedelta(0)
    assert (next_daily.hour, next_daily.minute) == (2, 30)
    assert pycron.is_now("30 2 * * *", next_daily)
    assert asked < next_daily <= asked + timedelta(days=1)
    next_hourly = datetime.fromisoformat(hourly["next_run_at"])
    assert next_hourly.timestamp() % 3600 == 0 and asked < next_hourly <= asked + timedelta(hours=1)
    assert daily["last_run"] is None and hourly["last_run"] is None  # nothing sent yet


def test_the_last_run_is_what_the_scheduler_sent_as_the_log_has_it(
    distributed: Stack, tmp_path: Path
) -> None:
    path = _write(tmp_path / "schedules.json")
    distributed.env["TASKLENS_SCHEDULES_FILE"] = str(path)
    api = distributed.start_api()
    daily, hourly = load_schedules(path)
    sent_at = datetime.now(UTC) - timedelta(minutes=5)
    ended = datetime.now(UTC) - timedelta(minutes=4)

    async def plant() -> None:
        recorder = build_recorder(distributed.env["TASKLENS_DATABASE_URL"], None)
        rows = [
            (REFRESH_TASK, "refresh-1", TaskStatus.SUCCESS, {"task_id": "analysis-1"}),
            ("analysis.github_user", "analysis-1", TaskStatus.SUCCESS, {"ok": True}),
        ]
        await recorder.store.upsert(
            [
                LifecycleChange(
                    task_id=task_id,
                    task_name=name,
                    status=status,
                    timestamp=as_time(ended),
                    created_at=as_time(sent_at),
                    completed_at=as_time(ended),
                    result=result,
                )
                for name, task_id, status, result in rows
            ]
        )
        await recorder.store.close()
        redis = Redis.from_url(distributed.env["TASKLENS_REDIS_URL"])
        await record_sent(redis, "tasklens", daily.schedule_id, Sent("refresh-1", sent_at))
        await record_sent(redis, "tasklens", hourly.schedule_id, Sent("refresh-2", sent_at))
        await redis.aclose()

    asyncio.run(plant())
    first, second = _schedules(api)["schedules"]
    last = first["last_run"]
    assert datetime.fromisoformat(last.pop("at")) == ended  # when the analysis ended
    assert last == {
        "task_id": "analysis-1",
        "task_name": "analysis.github_user",
        "status": "success",
    }
    assert (second["last_run"]["task_id"], second["last_run"]["status"]) == ("refresh-2", "sent")
    # An interval sent 5 minutes ago runs next 55 minutes after that send.
    assert datetime.fromisoformat(second["next_run_at"]) == sent_at + timedelta(hours=1)


def test_a_real_scheduler_s_send_shows_as_the_analysis_it_started(
    distributed: Stack, tmp_path: Path
) -> None:
    """Scheduler, worker and API as processes: the hourly entry is sent at the scheduler's
    start, the refresh submits the analysis, which fails (GitHub unreachable, no retry), and
    that failed analysis is the schedule's last run."""
    path = tmp_path / "schedules.json"
    path.write_text(
        json.dumps(
            {"schedules": [{"kind": "github_user", "subject": "octocat", "interval_seconds": 3600}]}
        )
    )
    distributed.env.update(
        {
            "TASKLENS_SCHEDULES_FILE": str(path),
            "TASKLENS_GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",  # nobody listens
            "TASKLENS_MAX_RETRIES": "0",
        }
    )
    api = distributed.start_api()
    distributed.start_worker()
    distributed._spawn("scheduler", ["scheduler"], {})
    found: dict[str, Any] = {}

    def analysis_failed() -> bool:
        [entry] = _schedules(api)["schedules"]
        found.update(entry)
        run = entry["last_run"]
        return (
            run is not None
            and run["task_name"] == "analysis.github_user"
            and (run["status"] == "failed")
        )

    wait_for(analysis_failed, timeout=60, what="the scheduled analysis to fail")
    task = api.task(found["last_run"]["task_id"])
    assert task["status"] == "failed" and task["task_name"] == "analysis.github_user"
    # Sent within the last minute: the next send is its send time plus the hour.
    ahead = datetime.fromisoformat(found["next_run_at"]) - datetime.now(UTC)
    assert timedelta(minutes=55) < ahead <= timedelta(hours=1)
