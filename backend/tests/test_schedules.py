"""A schedules file with a mistake says where it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasklens.schedules import SchedulesFileError, load_schedules


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
