"""A real git repository with known contents, history and plan files, for the analysis tests."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    "docs/guide.md": "- [ ] checked like any plan\n",  # 0 of 1
    "README.md": "# Demo\n- [x] shipped\n- [ ] documented\n",  # 1 of 2
    "CHANGELOG.md": "# Changes\n",  # read, no task list
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


def make_repository(root: Path) -> Path:
    root.mkdir(parents=True)
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
