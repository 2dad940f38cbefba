"""The time windows an analysis covers."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class Period(StrEnum):
    ONE_MONTH = "1_month"
    THREE_MONTHS = "3_months"
    SIX_MONTHS = "6_months"
    ONE_YEAR = "1_year"
    ALL = "all"

    def since(self, now: datetime) -> datetime | None:
        """The window's start, or None for all of history."""
        days = {"1_month": 30, "3_months": 91, "6_months": 182, "1_year": 365}.get(self.value)
        return None if days is None else now - timedelta(days=days)
