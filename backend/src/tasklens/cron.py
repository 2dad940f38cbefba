"""Cron strings checked before they are trusted: taskiq matches them with pycron, which
reads a typo such as `61 * * * *` or `a b c d e` as "never" instead of refusing it.

Accepted: exactly five space-separated fields (minute hour day-of-month month day-of-week),
each a comma list of `*`, `*/N`, `A`, `A-B` or `A-B/N` within the field's range; the day
of the week also takes English day names (`mon`, `monday`). That is the part of the syntax
pycron understands, so a string that passes here fires when it says.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

import pycron

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
_ITEM = re.compile(r"^(?:(\*)|(\w+)(?:-(\w+))?)(?:/(\d+))?$")
_DAY_NAMES = {
    name.lower(): (index + 1) % 7
    for names in (calendar.day_name, calendar.day_abbr)
    for index, name in enumerate(names)
}


class CronError(ValueError):
    pass


def _value(raw: str, field: str, low: int, high: int) -> int:
    if raw.isdecimal():
        value = int(raw)
    elif field == "day of week" and raw.lower() in _DAY_NAMES:
        value = _DAY_NAMES[raw.lower()]
    else:
        raise CronError(f"{field}: {raw!r} is not a number")
    if not low <= value <= high:
        raise CronError(f"{field}: {value} is outside {low}-{high}")
    return value


def check_cron(expression: str) -> str:
    """The expression unchanged, or a CronError naming the field that is wrong."""
    fields = expression.split(" ")
    if len(fields) != len(_FIELDS):
        raise CronError(
            "needs 5 fields separated by single spaces (minute hour day-of-month month "
            f"day-of-week), got {len(fields)}"
        )
    for raw, (field, low, high) in zip(fields, _FIELDS, strict=True):
        items = raw.split(",")
        for item in items:
            match = _ITEM.match(item)
            if match is None:
                raise CronError(f"{field}: {item!r} is not *, N, A-B or a /step of them")
            star, start, end, step = match.groups()
            if step is not None and int(step) < 1:
                raise CronError(f"{field}: a step must be at least 1")
            if star:
                if step is None and len(items) > 1:
                    raise CronError(f"{field}: * cannot be part of a list")
                continue
            if step is not None and not start.isdecimal():
                raise CronError(f"{field}: a stepped range needs numbers")
            first = _value(start, field, low, high)
            if end is not None and _value(end, field, low, high) < first:
                raise CronError(f"{field}: range {item!r} runs backwards")
            if step is not None and end is None:
                raise CronError(f"{field}: a step needs * or a range before it")
    return expression


_SEARCH_DAYS = 366 * 8 + 2  # `0 0 29 2 *` can be eight years away (no leap day in 2100)


def next_fire(expression: str, after: datetime) -> datetime | None:
    """The first minute after `after` (UTC) at which taskiq's scheduler sends `expression`,
    found with the matcher it uses (pycron): day by day, then hour by hour, then by minute,
    so a yearly cron costs a few thousand checks. None if it never fires (`0 0 31 2 *`)."""
    _minute, hour, dom, month, dow = expression.split(" ")
    start = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.replace(hour=0, minute=0)
    for offset in range(_SEARCH_DAYS):
        midnight = day + timedelta(days=offset)
        if not pycron.is_now(f"* * {dom} {month} {dow}", midnight):
            continue
        for h in range(24):
            at_hour = midnight.replace(hour=h)
            if at_hour + timedelta(minutes=59) < start:
                continue
            if not pycron.is_now(f"* {hour} {dom} {month} {dow}", at_hour):
                continue
            for m in range(60):
                moment = at_hour.replace(minute=m)
                if moment >= start and pycron.is_now(expression, moment):
                    return moment
    return None
