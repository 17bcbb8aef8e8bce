"""Write tests/durations.json (seconds per test file) from a pytest JUnit XML report, for the scheduling order in
conftest.py: ``python tests/update_durations.py report.xml``. ``make durations`` runs the suite and calls it."""
from __future__ import annotations

import collections
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def per_file(report: Path) -> dict[str, int]:
    total: collections.Counter = collections.Counter()
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").split(".")
        # classname is "tests.test_x" or "tests.test_x.TestClass": the file is the first two parts
        total["/".join(module[:2]) + ".py"] += float(case.get("time") or 0)
    return {f: round(s) for f, s in total.most_common() if s >= 1}


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        sys.exit("usage: python tests/update_durations.py REPORT.xml (a pytest --junitxml report)")
    out = Path(__file__).with_name("durations.json")
    out.write_text(json.dumps(per_file(Path(sys.argv[1])), indent=1) + "\n")
    print(f"wrote {out}")
