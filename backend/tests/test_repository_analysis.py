"""The repository analysis on a real git repository built here, with exact expected numbers,
and the subjects it refuses."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tasklens.analyses.periods import Period
from tasklens.analyses.repository import InvalidSubject, analyse, parse_subject

NOW = datetime.now(UTC)

FILES = {
    "app/main.py": "import fastapi\n\n\ndef main():\n    return 1\n",  # 3 non-blank lines
    "app/util.py": "X = 1\nY = 2\n",  # 2
    "web/src/App.tsx": "export const App = () => null;\n\n// done\n",  # 2
    "web/index.js": "console.log(1)\n",  # 1
    "svc/main.go": "package main\n\nfunc main() {}\n",  # 2
    "pyproject.toml": '[project]\nname = "demo"\ndependencies = ["fastapi", "taskiq"]\n',  # 3
    "web/package.json": '{"dependencies": {"react": "19.0.0"}, "devDependencies": '
    '{"vite": "7.0.0"}}\n',  # 1
    "svc/go.mod": "module example.com/svc\n\ngo 1.22\n",  # not a language file
    "logo.png": "\x89PNG\x00\x00binary",
    "node_modules/lib/index.js": "ignored();\n",
    "TASKS.md": "# Tasks\n- [x] one\n- [x] two\n- [ ] three\n* [X] four\n",  # 3 of 4
    "docs/tasks-phase2.md": "1. [ ] design\n2. [x] build\n- [ ] ship\n",  # 1 of 3
    "docs/guide.md": "- [ ] not a plan file\n",
    "notes/todo.md": "- [ ] a\n",  # 0 of 1
}

# (author, email, days ago): 6 commits by 3 people over more than a year
COMMITS = [
    ("Ada", "ada@example.com", 400),
    ("Ada", "ada@example.com", 200),
    ("Bob", "bob@example.com", 80),
    ("Ada", "ada@example.com", 20),
    ("Cy", "cy@example.com", 10),
    ("Bob", "bob@example.com", 3),
]


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repos") / "project"
    root.mkdir()
    _git(root, "init", "--quiet", "--initial-branch=main")
    files = list(FILES.items())
    for i, (author, email, days_ago) in enumerate(COMMITS):
        for path, content in files[i :: len(COMMITS)]:  # spread the files over the commits
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content.encode("latin-1"))
        stamp = (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S+0000")
        _git(root, "add", "-A")
        _git(
            root,
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            f"commit {i}",
            env={
                "GIT_AUTHOR_NAME": author,
                "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": author,
                "GIT_COMMITTER_EMAIL": email,
                "GIT_AUTHOR_DATE": stamp,
                "GIT_COMMITTER_DATE": stamp,
            },
        )
    return root


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
    assert langs["Markdown"] == 4 + 3 + 1 + 1 + 1  # headings and checkbox lines
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
        ("TASKS.md", 3, 4),
        ("docs/tasks-phase2.md", 1, 3),
        ("notes/todo.md", 0, 1),
    ]
    assert (plans["done"], plans["total"], plans["percentage"]) == (4, 8, 50.0)
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
