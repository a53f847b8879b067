"""The cost of growth: two benchmark reports side by side.

.venv/bin/python -m bench.compare bench/results/small-….json bench/results/full-….json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

# The one number per figure that says how it grew: the tail for latencies, else the rate or time.
HEADLINE = ("p99_ms", "requests_per_s", "episodes_per_s", "seconds", "ms")


def headline(figures: dict | None) -> tuple[str, float] | None:
    for key in HEADLINE:
        if figures and isinstance(figures.get(key), int | float):
            return key, figures[key]
    return None


def label(what: str) -> str:
    """The figure's name without the sizes that differ between scales."""
    return re.sub(r", [\d,]+ open cases|, [\d,]+ due", "", what)


def main(small_path: str, full_path: str) -> None:
    reports = [json.loads(Path(path).read_text()) for path in (small_path, full_path)]
    small = {label(row["what"]): row for row in reports[0]["figures"]}
    lines = [
        f"| what | {reports[0]['scale']} | {reports[1]['scale']} | growth |",
        "|---|---|---|---|",
    ]
    for row in reports[1]["figures"]:
        before = small.get(label(row["what"]))
        ours, theirs = headline(row.get("ours")), headline((before or {}).get("ours"))
        if ours is None or theirs is None:
            continue
        key = ours[0].replace("_per_s", "/s").replace("_ms", " ms").replace("_", " ")
        growth = f"{ours[1] / theirs[1]:.2f}×" if theirs[1] else "—"
        lines.append(f"| {label(row['what'])} ({key}) | {theirs[1]:,} | {ours[1]:,} | {growth} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main(*sys.argv[1:3])
