"""Every command the README and the quickstart show works as written on a fresh clone: each
`./dev X` is a recipe, each `tasklens X --flag` a subcommand with that flag, and a bare
`tasklens` never starts a shell line (it is not on PATH after `./dev up`)."""

from __future__ import annotations

import re
import shlex

from dev_launcher import REPO, recipes
from test_cli_help import subcommands

DOCUMENTS = ("README.md", "specs/quickstart.md")
SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`((?:\./dev|tasklens) [^`]*)`")


def placeholder(word: str) -> bool:
    """`./dev tasklens <command>`, `tasklens …`: prose about commands, not one."""
    return word in ("…", "...") or word.startswith("<")


def shell_lines(text: str) -> list[str]:
    lines = []
    for block in SHELL_BLOCK.findall(text):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                lines.append(command)
    return lines


def tasklens_problems(words: list[str], where: str) -> list[str]:
    """`words` follow `tasklens`: a known subcommand, then only its own flags."""
    commands = subcommands()
    if words and placeholder(words[0]):
        return []
    if not words or words[0].startswith("-"):
        return [] if not words or words[0] in ("--help", "-h", "--version") else [where]
    parser = commands.get(words[0])
    if parser is None:
        return [f"{where}: no subcommand `tasklens {words[0]}`"]
    flags = {w.strip("[]()").split("=", 1)[0] for w in words[1:] if w.lstrip("[(").startswith("-")}
    return [
        f"{where}: `tasklens {words[0]}` has no option {flag}"
        for flag in sorted(flags)
        if flag not in parser._option_string_actions
    ]


def dev_problems(words: list[str], where: str, known: set[str]) -> list[str]:
    if not words or placeholder(words[0]):
        return []
    if words[0] not in known:
        return [f"{where}: `./dev {words[0]}` is no recipe (./dev lists them)"]
    if words[0] == "tasklens":
        return tasklens_problems(words[1:], where)
    return []


def test_every_documented_command_exists() -> None:
    known = recipes()
    problems: list[str] = []
    checked = 0
    for document in DOCUMENTS:
        text = (REPO / document).read_text()
        for line in shell_lines(text):
            words = shlex.split(line)
            where = f"{document}: {line}"
            if words[0] == "tasklens":
                problems.append(f"{where}: `tasklens` is not on PATH; write `./dev tasklens …`")
            elif words[0] == "./dev":
                problems += dev_problems(words[1:], where, known)
                checked += 1
        for span in INLINE.findall(text):
            words = span.replace("\\|", "|").split()
            where = f"{document}: `{span}`"
            if words[0] == "./dev":
                problems += dev_problems(words[1:], where, known)
            else:
                problems += tasklens_problems(words[1:], where)
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked > 20  # the parsing found the commands: a test that finds none proves nothing


def test_the_check_catches_what_went_wrong_before() -> None:
    """The check itself: the README's old distributed lines, a typo'd flag and recipe."""
    known = recipes()
    old = "```bash\ntasklens migrate          # Alembic upgrade head\n```\n"
    assert shell_lines(old) == ["tasklens migrate"]
    assert tasklens_problems(["worker", "--workerz", "2"], "x") == [
        "x: `tasklens worker` has no option --workerz"
    ]
    assert tasklens_problems(["serv"], "x") == ["x: no subcommand `tasklens serv`"]
    assert dev_problems(["migrate"], "x", known) == [
        "x: `./dev migrate` is no recipe (./dev lists them)"
    ]
    assert dev_problems(["tasklens", "migrate", "--downgrade", "base"], "x", known) == []
