"""Duration histograms: fixed log-scale bins, so percentiles come from rollups, not raw rows.

Bin 0 holds durations under 1 ms; bin k (1 … 112) holds [2^((k-1)/4), 2^(k/4)) ms; bin 113
everything from 2^28 ms (~74 h) up. A percentile is reported as the geometric middle of its
bin, so it is within a factor 2^(1/8) of the exact nearest-rank value: at most 9.05 % above
or 8.3 % below it (bin 0: within 0.5 ms; bin 113: its lower edge), or as the mean when that
lies in the same bin above the middle (`consistent_value`). The database triggers of
migration 0005 compute the same bins; keep the two in step.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence

BINS_PER_DOUBLING = 4
TOP_BIN = 113
EDGES = tuple(float(2.0 ** (k / BINS_PER_DOUBLING)) for k in range(TOP_BIN))  # 1 ms … 2^28 ms
RELATIVE_ERROR = 2 ** (1 / (2 * BINS_PER_DOUBLING)) - 1  # 0.0905


def bin_of(duration_ms: float) -> int:
    """Same as PostgreSQL's width_bucket(duration_ms, EDGES)."""
    return bisect.bisect_right(EDGES, duration_ms)


def bin_value(index: int) -> float:
    """The value reported for a bin: its geometric middle."""
    if index <= 0:
        return 0.5
    if index >= TOP_BIN:
        return EDGES[-1]
    return float(2.0 ** ((index - 0.5) / BINS_PER_DOUBLING))


def percentile_bin(histogram: Mapping[int, int], fraction: float) -> int | None:
    """The bin holding the nearest rank (ceil(fraction * n)) of a bin → count histogram."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return index
    return max(histogram)


def consistent_value(index: int, mean: float | None) -> float:
    """A bin's reported value, raised to `mean` when the mean lies inside the bin above the
    middle. The exact percentile is somewhere in the bin, so the mean is as true an answer as
    the middle, and a p95 drawn under the average reads as a bug. A mean above the bin stays
    above: then the percentile really is lower than the mean (a few slow outliers)."""
    value = bin_value(index)
    if mean is None or mean <= value:
        return value
    upper = EDGES[index] if index < TOP_BIN else math.inf
    return mean if mean < upper else value


def exact_percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of raw values: one of them, so within their min and max."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def bin_sql(column: str, dialect: str) -> str:
    """The bin of `column` in SQL: a binary search on PostgreSQL, a CASE ladder on SQLite
    (whose math functions are an optional build flag)."""
    if dialect == "postgresql":
        edges = ",".join(repr(edge) for edge in EDGES)
        return f"width_bucket({column}, ARRAY[{edges}]::float8[])"
    ladder = " ".join(f"WHEN {column} < {edge!r} THEN {k}" for k, edge in enumerate(EDGES))
    return f"(CASE {ladder} ELSE {TOP_BIN} END)"
