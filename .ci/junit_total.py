"""Prints one closing line for the whole suite from the JUnit XML reports of every runner:
`tests: N passed, N failed, N skipped`. Exits 1 if any report is missing or has failures."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

passed = failed = skipped = 0
for report in sys.argv[1:]:
    path = Path(report)
    if not path.is_file():
        print(f"tests: report {report} is missing")
        sys.exit(1)
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    for suite in suites:
        total = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        failed += bad
        skipped += skip
        passed += total - bad - skip
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
