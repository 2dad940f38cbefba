"""Repository analysis: clone, then read the history and the tree of HEAD.

Subjects are https/ssh git URLs to hosts `reach` allows, or local paths under
`TASKLENS_REPO_ROOTS` whose git data (git dir, common dir, objects, alternates) is under them
too. Git runs with every transport refused but the one the subject needs (`file://`, `ext::`
and friends can run commands or read the server's disk), no prompts, no hooks, no
submodules, no redirects, and no configuration but ours: a private empty HOME per run, no
system or global config, no attributes file, and command-line settings that outrank the
analysed repository's own. The clone lives in a temporary directory that is removed whatever
happens; blocking file work runs in a thread so the worker's event loop never stalls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasklens.analyses import reach
from tasklens.analyses.periods import Period
from tasklens.analyses.reach import AllowedHosts

ProgressFn = Callable[[float, str], None]
logger = logging.getLogger(__name__)

_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/-]+$")  # git@host:o/r
_SAFE_URL = re.compile(r"^(https|ssh)://[A-Za-z0-9._~:@%-]+(/[A-Za-z0-9._~%/+-]*)?$")


class InvalidSubject(ValueError):
    """The subject is not something TaskLens will clone (said in words a user can act on)."""


@dataclass(frozen=True, slots=True)
class RepositorySource:
    url: str
    is_local: bool
    scheme: str = "file"  # https or ssh for a remote
    host: str = ""
    port: int = 0
    git_dir: str = ""  # a local subject's, checked: what git clones


def parse_subject(
    subject: str, repo_roots: Sequence[Path], allowed_hosts: AllowedHosts | None = None
) -> RepositorySource:
    subject = subject.strip()
    if not subject or len(subject) > 2000:
        raise InvalidSubject("subject: a git URL (https:// or ssh://) or a local path")
    if subject.startswith("-") or "::" in subject or any(ord(c) < 32 for c in subject):
        raise InvalidSubject("subject: not a git URL or path TaskLens accepts")
    lowered = subject.lower()
    if lowered.startswith(("https://", "ssh://")):
        scheme, rest = subject.split("://", 1)
        authority = rest.split("/", 1)[0]
        # git percent-decodes an ssh URL before splitting it: `%2F` in a user name would
        # end the host it connects to, unseen by the checks here
        if not _SAFE_URL.match(subject) or authority.startswith("-") or "%" in authority:
            raise InvalidSubject("subject: the URL has characters TaskLens does not accept")
        if scheme.lower() == "https" and "@" in authority:
            raise InvalidSubject(
                "subject: credentials in the URL are refused (they would be stored); "
                "use ssh keys or TASKLENS_GITHUB_TOKEN"
            )
        host, _, port = authority.rpartition("@")[2].partition(":")
        return _remote(subject, scheme.lower(), host, port, allowed_hosts)
    if _SCP_LIKE.match(subject):
        host = subject.split("@", 1)[1].split(":", 1)[0]
        return _remote(subject, "ssh", host, "", allowed_hosts)
    if "://" in subject:
        scheme = subject.split("://", 1)[0]
        raise InvalidSubject(f"subject: the {scheme}:// transport is refused; use https or ssh")
    path = Path(subject)
    if not path.is_absolute():
        raise InvalidSubject("subject: a local path must be absolute")
    resolved = path.resolve()
    allowed = [root.resolve() for root in repo_roots]
    where = ", ".join(map(str, allowed)) or "none are configured"
    if not _inside(resolved, allowed):
        raise InvalidSubject(f"subject: local paths must be under TASKLENS_REPO_ROOTS ({where})")
    if not (resolved / ".git").exists() and not (resolved / "HEAD").is_file():
        raise InvalidSubject(f"subject: {resolved} is not a git repository")
    dirs = _repository_dirs(resolved)
    outside = [d for d in dirs if not _inside(d, allowed)]
    if outside:
        raise InvalidSubject(
            f"subject: {resolved} keeps its git data outside TASKLENS_REPO_ROOTS ({where})"
        )
    # git is given the git dir checked here; it would try `<dir>/.git` before it and go on
    # to `<dir>.git` and `<dir>.bundle` after it, none of them checked
    git_dir = dirs[0]
    detours = [git_dir / ".git", Path(f"{git_dir}.git"), Path(f"{git_dir}.bundle")]
    if not git_dir.is_dir() or any(p.exists() or p.is_symlink() for p in detours):
        raise InvalidSubject(f"subject: {resolved} is not a git repository")
    return RepositorySource(str(resolved), is_local=True, git_dir=str(git_dir))


def _remote(
    subject: str, scheme: str, host: str, port: str, allowed_hosts: AllowedHosts | None
) -> RepositorySource:
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise InvalidSubject("subject: the URL's port is not a number from 1 to 65535")
    try:
        reach.check_literal(host, allowed_hosts or AllowedHosts())
    except reach.HostRefused as exc:
        raise InvalidSubject(str(exc)) from None
    default_port = 443 if scheme == "https" else 22
    return RepositorySource(subject, False, scheme, host, int(port or default_port))


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


_MAX_ALTERNATE_DEPTH = 5  # as deep as git itself follows alternates


def _repository_dirs(work_tree: Path) -> list[Path]:
    """Every directory git would read this repository from, resolved: the git dir (`.git`
    may be a symlink or a `gitdir:` file), its common dir, the object store and its pack and
    fan-out directories, and the stores its alternates borrow from."""
    dot_git = work_tree / ".git"
    if dot_git.is_file():
        text = dot_git.read_text(errors="replace").strip()
        if not text.startswith("gitdir:"):
            raise InvalidSubject(f"subject: {work_tree} is not a git repository")
        git_dir = (work_tree / text.removeprefix("gitdir:").strip()).resolve()
    else:
        git_dir = dot_git.resolve() if dot_git.exists() else work_tree
    found = [git_dir]
    common = git_dir
    if (git_dir / "commondir").is_file():
        relative = (git_dir / "commondir").read_text(errors="replace").strip()
        common = (git_dir / relative).resolve()
        found.append(common)
    stores = [(common / "objects").resolve()]
    for depth in range(_MAX_ALTERNATE_DEPTH + 1):
        if not stores:
            break
        found += stores
        borrowed = []
        for store in stores:
            found += _store_entries(store)
            alternates = store / "info" / "alternates"
            if depth < _MAX_ALTERNATE_DEPTH and alternates.is_file():
                lines = alternates.read_text(errors="replace").splitlines()
                borrowed += [
                    (store / line.strip()).resolve()
                    for line in lines
                    if line.strip() and not line.startswith("#")
                ]
        stores = borrowed
    return found


_FAN_OUT = re.compile(r"[0-9a-f]{2}")


def _store_entries(store: Path) -> list[Path]:
    """Where the object store's symlinked entries lead: directories, pack files and loose
    objects (the others are inside the store already)."""
    if not store.is_dir():
        return []
    entries = list(os.scandir(store))
    for entry in list(entries):
        inner = entry.name == "pack" or _FAN_OUT.fullmatch(entry.name)
        if inner and entry.is_dir(follow_symlinks=False):
            entries += os.scandir(entry.path)
    return [Path(entry.path).resolve() for entry in entries if entry.is_symlink()]


class GitError(RuntimeError):
    pass


def _git_env(run: GitRun) -> dict[str, str]:
    """Only what git needs: a private, empty HOME (no user, XDG or /tmp config, credential
    helper or attributes file), no system or global config, no prompts."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(run.home),
        "XDG_CONFIG_HOME": str(run.home / ".config"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_SYSTEM": os.devnull,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": " ".join(
            ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"]
            + [part for option in run.ssh_options for part in ("-o", option)]
        ),
        "LC_ALL": "C",
    }


# Command-line config outranks the analysed repository's own .git/config, and git passes it
# on to the upload-pack it starts for a local clone.
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    f"core.attributesFile={os.devnull}",
    "credential.helper=",
    "http.followRedirects=false",
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.ssh.allow=always",
)


async def _git(
    args: Sequence[str],
    run: GitRun,
    *,
    cwd: Path | None = None,
    allow_file: bool = False,
    timeout: float = 600,
) -> str:
    settings = [*_SAFE_CONFIG, *run.config]
    if allow_file:
        settings.append("protocol.file.allow=always")
    process = await asyncio.create_subprocess_exec(
        "git",
        *(part for setting in settings for part in ("-c", setting)),
        *args,
        cwd=cwd,
        env=_git_env(run),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:  # cancelled or timed out: never leave git running
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0:
        message = stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {message[-1] if message else process.returncode}")
    return stdout.decode(errors="replace")


@dataclass(frozen=True, slots=True)
class GitRun:
    """One analysis's git: its private HOME and how it reaches the remote."""

    home: Path
    config: tuple[str, ...] = ()
    ssh_options: tuple[str, ...] = ()


async def prepare(source: RepositorySource, home: Path, allowed_hosts: AllowedHosts) -> GitRun:
    """Check the remote's addresses again, now, and pin git to them (an https name through
    curl's resolve list, an ssh name through ssh's HostName)."""
    if source.is_local:
        return GitRun(home)
    addresses = await reach.resolve_checked(source.host, source.port, allowed_hosts)
    if reach.literal_address(source.host) is not None:
        return GitRun(home)
    if source.scheme == "https":
        pin = reach.curl_resolve(source.host, source.port, addresses)
        return GitRun(home, config=(f"http.curloptResolve={pin}",))
    return GitRun(home, ssh_options=(f"HostKeyAlias={source.host}", f"HostName={addresses[0]}"))


async def clone(source: RepositorySource, into: Path, since: datetime | None, run: GitRun) -> None:
    """A remote's failure is said without git's socket error: it would tell an open port
    from a closed one to whoever reads the task."""
    try:
        await _clone(source, into, since, run)
    except GitError as exc:
        if source.is_local:
            raise
        logger.info("cloning %s failed: %s", source.url, exc)
        raise GitError("git clone failed: could not reach the repository") from None


async def _clone(source: RepositorySource, into: Path, since: datetime | None, run: GitRun) -> None:
    # `--recurse-submodules=no` would be a pathspec (a submodule at `no` cloned from anywhere)
    args = ["clone", "--quiet", "--single-branch", "--no-tags", "--no-recurse-submodules"]
    if source.is_local:
        args.append("--no-local")  # a real copy, never hard links into the source
    if since is not None and not source.is_local:
        args.append(f"--shallow-since={since.strftime('%Y-%m-%d')}")
    url = source.git_dir or source.url
    try:
        await _git([*args, "--", url, str(into)], run, allow_file=source.is_local)
    except GitError as exc:
        if since is None or "shallow" not in str(exc):
            raise
        # Nothing in the window: one commit is enough to read the tree of HEAD.
        shutil.rmtree(into, ignore_errors=True)
        await _git(
            [*args[:-1], "--depth=1", "--", url, str(into)],
            run,
            allow_file=source.is_local,
        )


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


async def history(repo: Path, since: datetime | None, run: GitRun) -> list[tuple[str, datetime]]:
    """(author, committed at) of every commit on HEAD in the window (mailmap applied).

    Fields and records are NUL-separated (`-z`): an author name, which its author chooses,
    can hold any other control character but never a NUL. Control characters are replaced
    from names; a commit whose date Python cannot hold (past the year 9999) is skipped."""
    args = ["log", "-z", "--format=%ct%x00%aN <%aE>"]
    if since is not None:
        args.append(f"--since={int(since.timestamp())}")
    out = await _git(args, run, cwd=repo)
    fields = out.split("\0")
    commits = []
    for stamp, author in zip(fields[::2], fields[1::2], strict=False):
        try:
            moment = datetime.fromtimestamp(int(stamp), UTC)
        except (ValueError, OverflowError, OSError):
            continue
        commits.append((_CONTROL.sub("\ufffd", author), moment))
    return commits


LANGUAGES = {
    ".py": "Python",
    ".pyi": "Python",
    ".js": "JavaScript",
    ".mjs": "JavaScript",
    ".cjs": "JavaScript",
    ".jsx": "JavaScript",
    ".ts": "TypeScript",
    ".tsx": "TypeScript",
    ".go": "Go",
    ".rs": "Rust",
    ".java": "Java",
    ".kt": "Kotlin",
    ".rb": "Ruby",
    ".php": "PHP",
    ".c": "C",
    ".h": "C",
    ".cc": "C++",
    ".cpp": "C++",
    ".hpp": "C++",
    ".cs": "C#",
    ".swift": "Swift",
    ".scala": "Scala",
    ".sh": "Shell",
    ".bash": "Shell",
    ".sql": "SQL",
    ".html": "HTML",
    ".css": "CSS",
    ".scss": "SCSS",
    ".vue": "Vue",
    ".svelte": "Svelte",
    ".md": "Markdown",
    ".yml": "YAML",
    ".yaml": "YAML",
    ".toml": "TOML",
    ".json": "JSON",
    ".dart": "Dart",
    ".ex": "Elixir",
    ".exs": "Elixir",
    ".lua": "Lua",
}
SKIPPED_DIRS = {
    ".git",
    "node_modules",
    "vendor",
    "dist",
    "build",
    ".venv",
    "venv",
    "__pycache__",
    "target",
    ".tox",
    ".mypy_cache",
}
MAX_FILE_BYTES = 2_000_000


def _files(repo: Path) -> list[Path]:
    found = []
    for directory, dirs, names in os.walk(repo):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
        found += [Path(directory) / name for name in names]
    return [f for f in found if f.is_file() and not f.is_symlink()]


def languages(repo: Path) -> dict[str, int]:
    """Non-blank lines per language, largest first; binary and huge files are skipped."""
    lines: Counter[str] = Counter()
    for path in _files(repo):
        language = LANGUAGES.get(path.suffix.lower())
        if language is None or path.stat().st_size > MAX_FILE_BYTES:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        lines[language] += sum(1 for line in data.splitlines() if line.strip())
    return dict(lines.most_common())


_MANIFEST_TECH = {
    "pyproject.toml": "Python",
    "requirements.txt": "Python",
    "setup.py": "Python",
    "package.json": "Node.js",
    "Cargo.toml": "Rust",
    "go.mod": "Go",
    "Gemfile": "Ruby",
    "pom.xml": "Java (Maven)",
    "build.gradle": "Java (Gradle)",
    "build.gradle.kts": "Kotlin (Gradle)",
    "composer.json": "PHP",
    "Dockerfile": "Docker",
    "docker-compose.yml": "Docker Compose",
    "compose.yaml": "Docker Compose",
    "pubspec.yaml": "Dart",
    "mix.exs": "Elixir",
}
_DEPENDENCY_TECH = {
    "fastapi": "FastAPI",
    "django": "Django",
    "flask": "Flask",
    "taskiq": "TaskIQ",
    "celery": "Celery",
    "sqlalchemy": "SQLAlchemy",
    "sqlmodel": "SQLModel",
    "pydantic": "Pydantic",
    "pytest": "pytest",
    "react": "React",
    "vue": "Vue",
    "svelte": "Svelte",
    "next": "Next.js",
    "vite": "Vite",
    "typescript": "TypeScript",
    "express": "Express",
    "tokio": "Tokio",
    "axum": "Axum",
    "serde": "Serde",
    "gin-gonic/gin": "Gin",
    "rails": "Rails",
}


def technologies(repo: Path) -> list[str]:
    """From manifest files and the dependencies they name (a word match, no resolving)."""
    found: set[str] = set()
    for path in _files(repo):
        name = path.name
        if name.startswith("requirements") and name.endswith(".txt"):
            name = "requirements.txt"
        tech = _MANIFEST_TECH.get(name)
        if tech is None:
            if path.parent.name == "workflows" and path.parent.parent.name == ".github":
                found.add("GitHub Actions")
            continue
        found.add(tech)
        if path.stat().st_size <= MAX_FILE_BYTES:
            text = path.read_text(errors="replace").lower()
            for dependency, label in _DEPENDENCY_TECH.items():
                if re.search(rf"(?<![\w-]){re.escape(dependency)}(?![\w-])", text):
                    found.add(label)
    return sorted(found)


_CHECKBOX = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[([ xX])\]\s+")
_MARKDOWN = (".md", ".markdown")
MAX_LISTED_PLAN_FILES = 200  # files_read names at most this many (files_read_count says all)


def plan_progress(repo: Path) -> dict[str, Any]:
    """Markdown task lists (`- [ ]` open, `- [x]` done) in every markdown file, README.md
    included: a plan is where the team keeps it, not only in TODO/PLAN files. Per file with
    checkboxes and overall, plus the markdown files read (those too large are skipped)."""
    files: list[dict[str, Any]] = []
    read: list[str] = []
    for path in sorted(_files(repo)):
        relative = path.relative_to(repo)
        if not relative.name.lower().endswith(_MARKDOWN) or path.stat().st_size > MAX_FILE_BYTES:
            continue
        shown = _CONTROL.sub("\ufffd", relative.as_posix())
        read.append(shown)
        marks = [
            m.group(1)
            for line in path.read_text(errors="replace").splitlines()
            if (m := _CHECKBOX.match(line))
        ]
        if marks:
            done = sum(1 for mark in marks if mark in "xX")
            files.append(
                {
                    "path": shown,
                    "total": len(marks),
                    "done": done,
                    "percentage": round(100 * done / len(marks), 1),
                }
            )
    total = sum(int(f["total"]) for f in files)
    done = sum(int(f["done"]) for f in files)
    return {
        "total": total,
        "done": done,
        "percentage": round(100 * done / total, 1) if total else None,
        "files": files,
        "files_read": read[:MAX_LISTED_PLAN_FILES],
        "files_read_count": len(read),
    }


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


async def analyse(
    source: RepositorySource,
    period: Period,
    progress: ProgressFn,
    now: datetime | None = None,
    top: int = 10,
    allowed_hosts: AllowedHosts | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    since = period.since(now)
    workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="tasklens-repo-"))  # 0700
    try:
        home = workdir / "home"
        home.mkdir(mode=0o700)
        run = await prepare(source, home, allowed_hosts or AllowedHosts())
        progress(0.1, "cloning")
        repo = workdir / "repo"
        await clone(source, repo, since, run)
        progress(0.4, "reading history")
        commits = await history(repo, since, run)
        progress(0.6, "counting lines of code")
        lines = await asyncio.to_thread(languages, repo)
        progress(0.8, "detecting technologies")
        techs = await asyncio.to_thread(technologies, repo)
        progress(0.9, "reading plan files")
        plans = await asyncio.to_thread(plan_progress, repo)
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)
    authors = Counter(author for author, _ in commits)
    weeks = Counter(_week(moment) for _, moment in commits)
    return {
        "period": period.value,
        "since": since.isoformat() if since else None,
        "commit_count": len(commits),
        "top_contributors": [{"author": a, "commits": n} for a, n in authors.most_common(top)],
        "commits_per_week": [{"week": w, "commits": weeks[w]} for w in sorted(weeks)],
        "languages": lines,
        "technologies": techs,
        "plan_progress": plans,
    }
