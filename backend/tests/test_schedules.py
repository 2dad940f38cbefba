"""A schedules file with a mistake says where it is; a cluster of schedulers sends each
schedule once per period; edits apply within seconds."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path

import pytest
import redis
from support import TASKLENS, Process, Stack, wait_for

from tasklens.schedules import FileScheduleSource, SchedulesFileError, load_schedules


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            {"schedules": [{"kind": "repository", "subject": "x"}]},
            "schedules[0]: Value error, give either cron or interval_seconds",
        ),
        (
            {
                "schedules": [
                    {"kind": "github_user", "subject": "a", "interval_seconds": 60},
                    {"kind": "mainframe", "subject": "b", "cron": "* * * * *"},
                ]
            },
            "schedules[1].kind: Input should be 'repository' or 'github_user'",
        ),
        (
            {"schedules": [{"kind": "github_user", "subject": "a", "interval_seconds": 0}]},
            "schedules[0].interval_seconds: Input should be greater than or equal to 1",
        ),
        ([], 'expected {"schedules": [...]}'),
    ],
)
def test_a_bad_entry_is_named(tmp_path: Path, content: object, says: str) -> None:
    path = tmp_path / "schedules.json"
    path.write_text(json.dumps(content))
    with pytest.raises(SchedulesFileError) as error:
        load_schedules(path)
    assert str(error.value) == f"{path}: {says}"


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "schedules.json"
    path.write_text(
        json.dumps(
            {
                "schedules": [
                    {
                        "kind": "repository",
                        "subject": "https://example.com/r.git",
                        "cron": "0 * * * *",
                    }
                ]
            }
        )
    )
    [entry] = load_schedules(path)
    assert entry.cron == "0 * * * *" and len(entry.schedule_id) == 32


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("61 * * * *", "minute: 61 is outside 0-59"),
        ("a b c d e", "minute: 'a' is not a number"),
        ("0 0 * 13 *", "month: 13 is outside 1-12"),
        ("*/0 * * * *", "minute: a step must be at least 1"),
        ("0 * * *", "needs 5 fields"),
    ],
)
def test_a_cron_that_would_never_fire_is_refused(tmp_path: Path, cron: str, says: str) -> None:
    path = _write(
        tmp_path / "schedules.json", [{"kind": "github_user", "subject": "a", "cron": cron}]
    )
    with pytest.raises(SchedulesFileError) as error:
        load_schedules(path)
    assert f"schedules[0].cron: Value error, {says}" in str(error.value)


def test_a_scheduler_with_a_bad_cron_does_not_start(tmp_path: Path, redis_url: str) -> None:
    path = _write(
        tmp_path / "schedules.json",
        [{"kind": "github_user", "subject": "a", "cron": "61 * * * *"}],
    )
    done = subprocess.run(
        [TASKLENS, "scheduler"],
        env={**os.environ, **_env(tmp_path, redis_url, path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"tasklens: invalid setting TASKLENS_SCHEDULES_FILE: {path}: schedules[0].cron: "
        "Value error, minute: 61 is outside 0-59"
    ]


async def test_a_broken_edit_is_logged_once_and_the_last_good_schedule_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(
        tmp_path / "schedules.json",
        [{"kind": "github_user", "subject": "a", "interval_seconds": 60}],
    )
    source = FileScheduleSource(path, "q")
    [good] = await source.get_schedules()
    _write(
        path,
        [
            {"kind": "github_user", "subject": "a", "interval_seconds": 60},
            {"kind": "github_user", "subject": "b"},
        ],
    )
    with caplog.at_level(logging.WARNING, logger="tasklens.schedules"):
        assert await source.get_schedules() == [good]
        assert await source.get_schedules() == [good]  # the same mistake is not logged again
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert (
        "schedules[1]: Value error, give either cron" in record.getMessage()
        and str(path) in record.getMessage()
    )


def _write(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"schedules": entries}))
    return path


def _env(workdir: Path, redis_url: str, schedules: Path) -> dict[str, str]:
    return {
        "TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/tasklens.db",
        "TASKLENS_REDIS_URL": redis_url,
        "TASKLENS_SCHEDULES_FILE": str(schedules),
        "TASKLENS_QUEUE_NAME": "sched",
    }


def _start_scheduler(stack: Stack, name: str) -> Process:
    process = stack._spawn(name, ["scheduler"], {})
    wait_for(
        lambda: "Startup completed" in process.log() or process.popen.poll() is not None,
        timeout=60,
        what=f"{name} to start",
    )
    assert process.popen.poll() is None, process.log()
    return process


def _sent(redis_url: str) -> list[tuple[float, str]]:
    """(time sent, subject) of every scheduled refresh in the low-priority stream."""
    with redis.Redis.from_url(redis_url) as client:
        entries = client.xrange("sched:low")
    sent = []
    for entry_id, fields in entries:
        milliseconds = int(entry_id.split(b"-")[0])
        sent.append((milliseconds / 1000, json.loads(fields[b"data"])["kwargs"]["subject"]))
    return sent


def test_two_schedulers_send_each_period_once(tmp_path: Path, redis_url: str) -> None:
    path = _write(
        tmp_path / "schedules.json",
        [{"kind": "github_user", "subject": "every-2s", "interval_seconds": 2}],
    )
    stack = Stack(tmp_path, _env(tmp_path, redis_url, path))
    try:
        _start_scheduler(stack, "scheduler-a")
        _start_scheduler(stack, "scheduler-b")
        wait_for(lambda: len(_sent(redis_url)) >= 5, timeout=60, what="5 periods")
        time.sleep(1)  # a duplicate of the last period would be sent within this second
    finally:
        stack.stop_all()
    periods = [round(at) // 2 for at, _ in _sent(redis_url)]
    assert len(periods) == len(set(periods)), periods  # no period sent twice
    assert periods[-1] - periods[0] + 1 - len(periods) <= 1, periods  # and hardly any skipped


def test_a_restart_does_not_send_the_current_period_again(tmp_path: Path, redis_url: str) -> None:
    path = _write(
        tmp_path / "schedules.json",
        [{"kind": "github_user", "subject": "hourly", "interval_seconds": 3600}],
    )
    stack = Stack(tmp_path, _env(tmp_path, redis_url, path))
    try:
        first = _start_scheduler(stack, "scheduler-1")
        wait_for(lambda: len(_sent(redis_url)) == 1, timeout=30, what="the first send")
        started = time.time()
        first.stop()
        second = _start_scheduler(stack, "scheduler-2")
        wait_for(lambda: "Sending task" in second.log(), timeout=30, what="a send attempt")
        time.sleep(1)
    finally:
        stack.stop_all()
    expected = 1 if round(started) // 3600 == round(time.time()) // 3600 else 2
    assert len(_sent(redis_url)) == expected, _sent(redis_url)


def test_an_edit_applies_within_seconds(tmp_path: Path, redis_url: str) -> None:
    path = _write(
        tmp_path / "schedules.json",
        [{"kind": "github_user", "subject": "old", "interval_seconds": 3600}],
    )
    stack = Stack(tmp_path, _env(tmp_path, redis_url, path))
    try:
        _start_scheduler(stack, "scheduler")
        wait_for(lambda: len(_sent(redis_url)) == 1, timeout=30, what="the first send")
        _write(
            path,
            [
                {"kind": "github_user", "subject": "old", "interval_seconds": 3600},
                {"kind": "github_user", "subject": "new", "interval_seconds": 3600},
            ],
        )
        wait_for(
            lambda: "new" in {subject for _, subject in _sent(redis_url)},
            timeout=15,
            what="the edited schedule to be sent",
        )
    finally:
        stack.stop_all()
