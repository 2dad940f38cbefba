"""The repository analysis on a real git repository built here, with exact expected numbers,
and the subjects it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from git_repo import NOW, make_repository

from tasklens.analyses.periods import Period
from tasklens.analyses.repository import InvalidSubject, analyse, parse_subject


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repository(tmp_path_factory.mktemp("repos") / "project")


async def test_a_repository_over_all_time(repo: Path) -> None:
    stages: list[tuple[float, str]] = []
    source = parse_subject(str(repo), [repo.parent])
    result = await analyse(source, Period.ALL, lambda f, note: stages.append((f, note)), NOW)

    assert result["commit_count"] == 6
    assert result["top_contributors"] == [
        {"author": "Ada <ada@example.com>", "commits": 3},
        {"author": "Bob <bob@example.com>", "commits": 2},
        {"author": "Cy <cy@example.com>", "commits": 1},
    ]
    assert sum(w["commits"] for w in result["commits_per_week"]) == 6
    assert len(result["commits_per_week"]) == 6  # every commit in a week of its own
    langs = result["languages"]
    assert langs["Python"] == 5 and langs["TypeScript"] == 2 and langs["Go"] == 2
    assert langs["JavaScript"] == 1  # node_modules/ is not counted
    assert langs["TOML"] == 3 and langs["JSON"] == 1
    assert langs["Markdown"] == 4 + 3 + 1 + 1 + 1 + 3 + 1  # headings and checkbox lines
    assert result["technologies"] == [
        "FastAPI",
        "Go",
        "Node.js",
        "Python",
        "React",
        "TaskIQ",
        "Vite",
    ]
    plans = result["plan_progress"]
    assert [(f["path"], f["done"], f["total"]) for f in plans["files"]] == [
        ("README.md", 1, 2),
        ("TASKS.md", 3, 4),
        ("docs/guide.md", 0, 1),
        ("docs/tasks-phase2.md", 1, 3),
        ("notes/todo.md", 0, 1),
    ]
    assert (plans["done"], plans["total"], plans["percentage"]) == (5, 11, 45.5)
    assert plans["files_read"] == [
        "CHANGELOG.md",
        "README.md",
        "TASKS.md",
        "docs/guide.md",
        "docs/tasks-phase2.md",
        "notes/todo.md",
    ]
    assert plans["files_read_count"] == 6
    assert [note for _, note in stages] == [
        "cloning",
        "reading history",
        "counting lines of code",
        "detecting technologies",
        "reading plan files",
    ]


@pytest.mark.parametrize(
    ("period", "commits"),
    [
        (Period.ONE_MONTH, 3),
        (Period.THREE_MONTHS, 4),
        (Period.SIX_MONTHS, 4),
        (Period.ONE_YEAR, 5),
        (Period.ALL, 6),
    ],
)
async def test_periods_count_the_commits_in_their_window(
    repo: Path, period: Period, commits: int
) -> None:
    result = await analyse(parse_subject(str(repo), [repo.parent]), period, lambda *_: None, NOW)
    assert result["commit_count"] == commits


async def test_the_clone_is_always_removed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    await analyse(parse_subject(str(repo), [repo.parent]), Period.ALL, lambda *_: None, NOW)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("subject", "says"),
    [
        ("file:///etc", "file:// transport is refused"),
        ("ext::sh -c touch% /tmp/pwned", "not a git URL"),
        ("git://example.com/repo.git", "git:// transport is refused"),
        ("https://user:secret@example.com/repo.git", "credentials in the URL are refused"),
        ("ssh://-oProxyCommand/x", "characters TaskLens does not accept"),
        ("--upload-pack=touch /tmp/x", "not a git URL"),
        ("relative/path", "must be absolute"),
        ("/etc", "must be under TASKLENS_REPO_ROOTS"),
        ("", "a git URL"),
    ],
)
def test_subjects_that_are_refused(subject: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidSubject) as refused:
        parse_subject(subject, [tmp_path])
    assert says in str(refused.value)


def test_accepted_remote_subjects() -> None:
    for subject in (
        "https://github.com/taskiq-python/taskiq.git",
        "ssh://git@github.com/taskiq-python/taskiq.git",
        "git@github.com:taskiq-python/taskiq.git",
    ):
        assert parse_subject(subject, []).url == subject
