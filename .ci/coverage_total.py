"""Prints one line of the backend's coverage from coverage.py's JSON report: lines and
branches, each on its own and together (coverage.py's figure)."""

import json
import sys

totals = json.load(open(sys.argv[1]))["totals"]
lines = 100 * totals["covered_lines"] / max(totals["num_statements"], 1)
branches = 100 * totals["covered_branches"] / max(totals["num_branches"], 1)
print(
    f"coverage: {lines:.1f} % of lines ({totals['covered_lines']}/{totals['num_statements']}), "
    f"{branches:.1f} % of branches ({totals['covered_branches']}/{totals['num_branches']}), "
    f"{totals['percent_covered']:.1f} % together"
)
