"""What `tasklens --help` and `tasklens COMMAND --help` show besides the options: the
version, each option's default, and the TASKLENS_* settings a command reads, with their
defaults taken from the `Settings` model so the help cannot drift from it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from tasklens.settings import Settings

ENV_PREFIX = "TASKLENS_"


def version() -> str:
    """The installed distribution's version (pyproject.toml), not a copy of it."""
    try:
        return package_version("tasklens")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: X)" to an option's help, as `ArgumentDefaultsHelpFormatter` does,
    but not for the options whose default is nothing (flags, unset values); keeps the
    epilog's lines as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.option_strings
            and action.default not in (None, False, argparse.SUPPRESS)
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: object = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None or value == []:
        return "unset"
    return str(value)


def settings_epilog(reads: Sequence[str] | None) -> str:
    """The settings a command reads (`None`: every one), one per line with its default."""
    fields = Settings.model_fields
    names = list(fields) if reads is None else list(reads)
    if not names:
        return "Reads no TASKLENS_* setting."
    width = max(len(env_name(name)) for name in names)
    lines = [f"  {env_name(name):<{width}}  {_default(fields[name])}" for name in names]
    header = "settings read (environment or ./.env), with their defaults:"
    return "\n".join([header, *lines])
