"""The repository analysis as a sandbox: git reads no configuration but ours, and a local
subject cannot lead TaskLens to a repository outside `TASKLENS_REPO_ROOTS`."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
from git_repo import NOW, make_repository
from support import Stack

from tasklens.analyses.periods import Period
from tasklens.analyses.repository import GitError, InvalidSubject, analyse, parse_subject


def _script(directory: Path, marker: Path, name: str) -> Path:
    """A program that leaves `marker-name` behind, then does what was asked of it."""
    script = directory / f"{name}.sh"
    script.write_text(f'#!/bin/sh\ntouch {marker}-{name}\nif [ $# -gt 0 ]; then exec "$@"; fi\n')
    script.chmod(0o755)
    return script


def _hostile_config(home: Path, marker: Path) -> None:
    """What a local user could leave in a shared HOME or /tmp: each entry, if git read it,
    would create `marker`-something while a repository is cloned and checked out."""
    attributes = home / "attributes"
    attributes.write_text("* filter=evil\n")
    hooks = home / "hooks"
    hooks.mkdir()
    for hook in ("post-checkout", "reference-transaction", "post-index-change"):
        _script(hooks, marker, hook).rename(hooks / hook)
    config = (
        "[uploadpack]\n"
        f"\tpackObjectsHook = {_script(home, marker, 'pack-hook')}\n"
        '[filter "evil"]\n'
        f"\tsmudge = {_script(home, marker, 'smudge')} cat\n"
        f"\tclean = {_script(home, marker, 'clean')} cat\n"
        "[core]\n"
        f"\tattributesFile = {attributes}\n"
        f"\tfsmonitor = {_script(home, marker, 'fsmonitor')}\n"
        f"\thooksPath = {hooks}\n"
    )
    (home / ".gitconfig").write_text(config)
    (home / "xdg" / "git").mkdir(parents=True)
    (home / "xdg" / "git" / "config").write_text(config)
    (home / "xdg" / "git" / "attributes").write_text("* filter=evil\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "repos" / "project")


@pytest.fixture
def hostile_home(tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME, XDG_CONFIG_HOME and TMPDIR of this process all point at a hostile config (set
    once `project` is built, so only the analysis could run it)."""
    home = tmp_path / "home"
    home.mkdir()
    _hostile_config(home, tmp_path / "ran")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    monkeypatch.setenv("TMPDIR", str(home))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return home


def _ran(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ran-"))


async def test_git_reads_no_home_xdg_or_tmp_config(
    tmp_path: Path, project: Path, hostile_home: Path
) -> None:
    source = parse_subject(str(project), [project.parent])
    result = await analyse(source, Period.ALL, lambda *_: None)
    assert result["commit_count"] == 6
    assert result["languages"]["Python"] == 5  # checked out as committed, no filter ran
    assert _ran(tmp_path) == []


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


async def test_git_runs_nothing_the_analysed_repository_configures(tmp_path: Path) -> None:
    repo = make_repository(tmp_path / "repos" / "project")
    marker = tmp_path / "ran"
    (repo / ".gitattributes").write_text("* filter=evil\n*.py diff=evil\n")
    _git(repo, "add", ".gitattributes")
    _git(repo, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "attributes")
    hooks = repo / ".git" / "hooks"
    for hook in ("pre-upload-pack", "post-checkout", "reference-transaction", "pre-push"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {marker}-{hook}\n")
        (hooks / hook).chmod(0o755)
    with (repo / ".git" / "config").open("a") as config:
        config.write(
            "[uploadpack]\n"
            f"\tpackObjectsHook = {_script(tmp_path, marker, 'pack-hook')}\n"
            '[filter "evil"]\n'
            f"\tsmudge = {_script(tmp_path, marker, 'smudge')} cat\n"
            "[core]\n"
            f"\tfsmonitor = {_script(tmp_path, marker, 'fsmonitor')}\n"
            f"\thooksPath = {hooks}\n"
            f"\tsshCommand = {_script(tmp_path, marker, 'ssh')}\n"
            f"\tpager = {_script(tmp_path, marker, 'pager')}\n"
            f"\talternateRefsCommand = {_script(tmp_path, marker, 'alternate-refs')}\n"
        )
    result = await analyse(parse_subject(str(repo), [repo.parent]), Period.ALL, lambda *_: None)
    assert result["commit_count"] == 7
    assert _ran(tmp_path) == []


def _outside_repository(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "elsewhere" / "secret")


def test_a_git_file_pointing_outside_the_roots_is_refused(tmp_path: Path) -> None:
    outside = _outside_repository(tmp_path)
    inside = tmp_path / "roots" / "innocent"
    inside.mkdir(parents=True)
    (inside / ".git").write_text(f"gitdir: {outside / '.git'}\n")
    with pytest.raises(InvalidSubject) as refused:
        parse_subject(str(inside), [tmp_path / "roots"])
    assert str(inside) in str(refused.value) and "outside TASKLENS_REPO_ROOTS" in str(refused.value)


def test_a_relative_git_file_climbing_out_is_refused(tmp_path: Path) -> None:
    _outside_repository(tmp_path)
    inside = tmp_path / "roots" / "innocent"
    inside.mkdir(parents=True)
    (inside / ".git").write_text("gitdir: ../../elsewhere/secret/.git\n")
    with pytest.raises(InvalidSubject, match="outside TASKLENS_REPO_ROOTS"):
        parse_subject(str(inside), [tmp_path / "roots"])


def test_a_git_symlink_pointing_outside_the_roots_is_refused(tmp_path: Path) -> None:
    outside = _outside_repository(tmp_path)
    inside = tmp_path / "roots" / "innocent"
    inside.mkdir(parents=True)
    (inside / ".git").symlink_to(outside / ".git")
    with pytest.raises(InvalidSubject, match="outside TASKLENS_REPO_ROOTS"):
        parse_subject(str(inside), [tmp_path / "roots"])


def test_alternates_or_a_common_dir_outside_the_roots_are_refused(tmp_path: Path) -> None:
    outside = _outside_repository(tmp_path)
    borrower = make_repository(tmp_path / "roots" / "borrower")
    alternates = borrower / ".git" / "objects" / "info" / "alternates"
    alternates.parent.mkdir(parents=True, exist_ok=True)
    alternates.write_text(f"{outside / '.git' / 'objects'}\n")
    with pytest.raises(InvalidSubject, match="outside TASKLENS_REPO_ROOTS"):
        parse_subject(str(borrower), [tmp_path / "roots"])

    worktree = make_repository(tmp_path / "roots" / "worktree")
    (worktree / ".git" / "commondir").write_text(f"{outside / '.git'}\n")
    with pytest.raises(InvalidSubject, match="outside TASKLENS_REPO_ROOTS"):
        parse_subject(str(worktree), [tmp_path / "roots"])

    linked = make_repository(tmp_path / "roots" / "linked")
    (linked / ".git" / "objects").rename(tmp_path / "elsewhere" / "objects")
    (linked / ".git" / "objects").symlink_to(tmp_path / "elsewhere" / "objects")
    with pytest.raises(InvalidSubject, match="outside TASKLENS_REPO_ROOTS"):
        parse_subject(str(linked), [tmp_path / "roots"])


async def test_a_git_file_and_a_worktree_inside_the_roots_are_still_analysed(
    tmp_path: Path,
) -> None:
    roots = tmp_path / "roots"
    repo = make_repository(roots / "main")
    _git(repo, "worktree", "add", "-q", str(roots / "feature"), "-b", "feature")
    source = parse_subject(str(roots / "feature"), [roots])
    result = await analyse(source, Period.ALL, lambda *_: None, NOW)
    assert result["commit_count"] == 6


def test_a_worker_whose_home_xdg_and_tmp_hold_a_hostile_config_runs_none_of_it(
    distributed: Stack, tmp_path: Path, project: Path
) -> None:
    distributed.env["TASKLENS_REPO_ROOTS"] = str(project.parent)
    api = distributed.start_api()
    home = tmp_path / "home"
    home.mkdir()
    _hostile_config(home, tmp_path / "ran")
    distributed.env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "xdg"), TMPDIR=str(home))
    distributed.start_worker()
    with api.client() as client:
        accepted = client.post(
            "/api/v1/analyses", json={"kind": "repository", "subject": str(project)}
        ).json()
    done = api.wait_task(accepted["task_id"], "success", timeout=90)
    assert done["result"]["commit_count"] == 6
    assert _ran(tmp_path) == []
    assert [p.name for p in home.iterdir() if p.name.startswith("tasklens-repo-")] == []


def test_the_api_refuses_a_repository_outside_the_roots_naming_the_subject(
    embedded: Stack, tmp_path: Path
) -> None:
    outside = _outside_repository(tmp_path)
    inside = tmp_path / "roots" / "innocent"
    inside.mkdir(parents=True)
    (inside / ".git").write_text(f"gitdir: {outside / '.git'}\n")
    embedded.env["TASKLENS_REPO_ROOTS"] = str(tmp_path / "roots")
    api = embedded.start_api()
    with api.client() as client:
        refused = client.post(
            "/api/v1/analyses", json={"kind": "repository", "subject": str(inside)}
        )
    assert refused.status_code == 400
    assert refused.json() == {
        "error": f"invalid subject: {inside} keeps its git data outside TASKLENS_REPO_ROOTS "
        f"({tmp_path / 'roots'})"
    }


async def test_no_submodule_is_cloned_whatever_its_path(tmp_path: Path) -> None:
    """`--recurse-submodules=no` is a pathspec, not a no: a submodule at `no` pointing
    outside the roots (or, for a remote, at any host) was cloned."""
    outside = _outside_repository(tmp_path)
    repo = make_repository(tmp_path / "roots" / "project")
    for path in ("no", "lib/sub"):
        _git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(outside), path)
    _git(repo, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "submodules")
    source = parse_subject(str(repo), [tmp_path / "roots"])
    result = await analyse(source, Period.ALL, lambda *_: None)
    assert result["languages"]["Python"] == 5  # the superproject's files: no submodule was cloned


def _commit_object(repo: Path, author: str, stamp: int) -> None:
    """A commit written as raw bytes (git's own porcelain would not take such an author)."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD", "HEAD^{tree}"], cwd=repo, capture_output=True, text=True
    ).stdout.split()
    body = (
        f"tree {head[1]}\nparent {head[0]}\nauthor {author} <a@a> {stamp} +0000\n"
        f"committer c <c@c> {stamp} +0000\n\nhostile\n"
    )
    made = subprocess.run(
        ["git", "hash-object", "-t", "commit", "-w", "--literally", "--stdin"],
        cwd=repo,
        input=body.encode(),
        capture_output=True,
        check=True,
    )
    _git(repo, "update-ref", "HEAD", made.stdout.decode().strip())


async def test_author_names_cannot_forge_commits_or_break_the_history(tmp_path: Path) -> None:
    """A hostile author's name held the log's own separators: `\\x1e` made one commit two
    (a fake author at a chosen date), `\\x1f` failed the analysis; a date past the year 9999
    failed it too. Control characters do not reach the result."""
    repo = make_repository(tmp_path / "roots" / "project")
    _commit_object(repo, "Real\x1eFake\x1f1000000000\x1eAlso real", int(NOW.timestamp()))
    _commit_object(repo, "Esc\x1b[31mRed\x1fX", int(NOW.timestamp()))
    _commit_object(repo, "Far future", 10**15)
    source = parse_subject(str(repo), [tmp_path / "roots"])
    result = await analyse(source, Period.ALL, lambda *_: None)
    assert result["commit_count"] == 8  # six, the two hostile names; the far future is skipped
    authors = {entry["author"] for entry in result["top_contributors"]}
    assert not any(ord(c) < 32 or c == "\x7f" for author in authors for c in author)
    assert not any(author.startswith("Fake") for author in authors)
    assert all(week["week"] > "2001" for week in result["commits_per_week"])


@pytest.mark.parametrize("decoy", ["empty .git", "HEAD file"])
async def test_git_clones_only_the_git_dir_that_was_checked(tmp_path: Path, decoy: str) -> None:
    """git tries `<path>/.git`, `<path>`, `<path>.git/.git` then `<path>.git`: a `.git` that
    is no repository (or a stray HEAD) passed the roots check, and git went on to a sibling
    `<path>.git`, here a git file leading outside the roots."""
    outside = _outside_repository(tmp_path)
    roots = tmp_path / "roots"
    inside = roots / "innocent"
    inside.mkdir(parents=True)
    if decoy == "empty .git":
        (inside / ".git").mkdir()
    else:
        (inside / "HEAD").write_text("ref: refs/heads/main\n")
    (roots / "innocent.git").write_text(f"gitdir: {outside / '.git'}\n")
    try:
        source = parse_subject(str(inside), [roots])
    except InvalidSubject:
        return
    with pytest.raises(GitError):
        await analyse(source, Period.ALL, lambda *_: None)


def test_loose_objects_symlinked_from_outside_the_roots_are_refused(tmp_path: Path) -> None:
    """A fan-out directory is real, but its objects are symlinks into a repository outside
    the roots: git read them (files and all) as the clone's own."""
    outside = _outside_repository(tmp_path)
    objects = subprocess.run(
        ["git", "rev-list", "--objects", "--all"], cwd=outside, capture_output=True, text=True
    ).stdout.split()
    borrower = tmp_path / "roots" / "borrower"
    borrower.mkdir(parents=True)
    _git(borrower, "init", "-q")
    store = borrower / ".git" / "objects"
    for name in (o for o in objects if len(o) == 40):
        loose = outside / ".git" / "objects" / name[:2] / name[2:]
        if loose.exists():
            (store / name[:2]).mkdir(exist_ok=True)
            (store / name[:2] / name[2:]).symlink_to(loose)
    assert any(store.glob("??/*"))
    with pytest.raises(InvalidSubject, match="outside TASKLENS_REPO_ROOTS"):
        parse_subject(str(borrower), [tmp_path / "roots"])


async def test_file_names_reach_the_result_without_control_characters(tmp_path: Path) -> None:
    """A plan file's path is the author's choice, newlines and terminal escapes included."""
    repo = make_repository(tmp_path / "roots" / "project")
    hostile = repo / "a\nb\x1b]0;pwned\x07" / "todo.md"
    hostile.parent.mkdir()
    hostile.write_text("- [x] done\n")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qm", "plan")
    source = parse_subject(str(repo), [tmp_path / "roots"])
    result = await analyse(source, Period.ALL, lambda *_: None)
    plans = result["plan_progress"]
    paths = [entry["path"] for entry in plans["files"]] + plans["files_read"]
    assert len(paths) == 6 + 7  # with checkboxes, then every markdown file read
    assert not any(ord(c) < 32 or c == "\x7f" for path in paths for c in path)
