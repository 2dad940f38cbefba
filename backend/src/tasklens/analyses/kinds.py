"""What can be analysed: each kind's task, subject checks and default period."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from tasklens.analyses import github, reach, repository
from tasklens.analyses.periods import Period
from tasklens.settings import Settings


class AnalysisKind(StrEnum):
    REPOSITORY = "repository"
    GITHUB_USER = "github_user"


def _check_repository(subject: str, settings: Settings) -> str:
    return repository.parse_subject(subject, settings.repo_roots, settings.allowed_git_hosts).url


async def _reach_repository(subject: str, settings: Settings) -> None:
    """A remote's host must resolve to addresses the worker may reach (a ValueError if not)."""
    source = repository.parse_subject(subject, settings.repo_roots, settings.allowed_git_hosts)
    if not source.is_local:
        await reach.resolve_checked(source.host, source.port, settings.allowed_git_hosts)


def _check_login(subject: str, _settings: Settings) -> str:
    return github.validate_login(subject)


async def _reach_nothing(_subject: str, _settings: Settings) -> None:
    return None  # the GitHub API origin is the operator's setting


@dataclass(frozen=True, slots=True)
class KindSpec:
    task_name: str
    default_period: Period
    check_subject: Callable[[str, Settings], str]
    check_reach: Callable[[str, Settings], Awaitable[None]]


KINDS = {
    AnalysisKind.REPOSITORY: KindSpec(
        "analysis.repository", Period.ALL, _check_repository, _reach_repository
    ),
    AnalysisKind.GITHUB_USER: KindSpec(
        "analysis.github_user", Period.ONE_YEAR, _check_login, _reach_nothing
    ),
}
TASK_KINDS = {spec.task_name: kind for kind, spec in KINDS.items()}


def analysis_key(kind: AnalysisKind, subject: str, period: Period) -> str:
    """Identical analyses (same kind, subject and params) share this key."""
    canonical = json.dumps([kind.value, subject, {"period": period.value}], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
