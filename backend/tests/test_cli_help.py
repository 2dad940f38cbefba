"""`tasklens --version`, and every subcommand's `--help` shows its options' defaults and the
TASKLENS_* settings it reads."""

from __future__ import annotations

import argparse
import re
import subprocess
from importlib.metadata import version

import pytest
from support import TASKLENS

from tasklens.cli import build_parser, main
from tasklens.settings import Settings


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """The parser of each `tasklens` subcommand, by name."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("tasklens has no subcommands")


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def option_help(text: str, flag: str) -> str:
    """The lines `--help` gives one option: from its own line to the next option's."""
    options = text.split("\noptions:\n", 1)[1]
    chunks = re.split(r"\n(?=  -)", options)
    return next(c for c in chunks if re.match(rf"  (?:-\w, )?{flag}\b", c))


def test_version_comes_from_the_installed_package() -> None:
    shown = subprocess.run([TASKLENS, "--version"], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == f"tasklens {version('tasklens')}"


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_help_shows_every_default_and_only_real_settings(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(capsys, command)
    options = subcommands()[command]._actions
    for action in options:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            flag = action.option_strings[-1]
            shown = re.search(r"\(default: ([^)]*)\)", option_help(text, flag))
            assert shown and shown.group(1) == str(action.default), (flag, text)
    named = set(re.findall(r"^  (TASKLENS_\w+)", text, re.MULTILINE))
    fields = {f"TASKLENS_{name.upper()}" for name in Settings.model_fields}
    assert named <= fields, named - fields
    if command in ("serve", "worker", "scheduler"):  # they build the whole runtime
        assert named == fields
    elif command == "openapi":
        assert "Reads no TASKLENS_* setting" in text
    else:
        assert "TASKLENS_DATABASE_URL" in named


def test_settings_in_help_show_their_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, "demo")
    assert re.search(r"^  TASKLENS_PORT +8000$", text, re.MULTILINE), text
    assert re.search(r"^  TASKLENS_HOST +127\.0\.0\.1$", text, re.MULTILINE), text
    assert re.search(r"^  TASKLENS_API_TOKENS +unset$", text, re.MULTILINE), text
    assert "--count COUNT  tasks to enqueue (default: 50)" in text


def test_top_level_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in subcommands():
        assert re.search(rf"^    {command}\b", text, re.MULTILINE), (command, text)
    assert "--version" in text
