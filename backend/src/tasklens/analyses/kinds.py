"""What can be analysed: each kind's task, subject check and default period."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tasklens.analyses import github, repository
from tasklens.analyses.periods import Period


class AnalysisKind(StrEnum):
    REPOSITORY = "repository"
    GITHUB_USER = "github_user"


def _check_repository(subject: str, roots: list[Path]) -> str:
    return repository.parse_subject(subject, roots).url


def _check_login(subject: str, _roots: list[Path]) -> str:
    return github.validate_login(subject)


@dataclass(frozen=True, slots=True)
class KindSpec:
    task_name: str
    default_period: Period
    check_subject: Callable[[str, list[Path]], str]


KINDS = {
    AnalysisKind.REPOSITORY: KindSpec("analysis.repository", Period.ALL, _check_repository),
    AnalysisKind.GITHUB_USER: KindSpec("analysis.github_user", Period.ONE_YEAR, _check_login),
}
TASK_KINDS = {spec.task_name: kind for kind, spec in KINDS.items()}


def analysis_key(kind: AnalysisKind, subject: str, period: Period) -> str:
    """Identical analyses (same kind, subject and params) share this key."""
    canonical = json.dumps([kind.value, subject, {"period": period.value}], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
