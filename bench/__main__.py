"""`make bench`: every hot path at scale, beside its raw-SQL floor, in one run.

    .venv/bin/python -m bench [--scale full|small|tiny] [--only sidebar,queue,…] [--out DIR]

Prints a table and writes bench/results/<scale>-<time>.json (machine, versions, scale, figures,
ratios). The ratio is ours ÷ floor for times and floor ÷ ours for rates: 1.0 is the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.environment import ROOT, configure

STEPS = (
    "sidebar", "queue", "insights", "bulk", "http", "sweep", "reconcile", "webhooks", "imports",
)  # fmt: skip


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    import django
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        postgres = cur.fetchone()[0]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": postgres,
        "commit": commit,
    }


def cell(figures: dict | None) -> str:
    if not figures:
        return "—"
    shown = []
    for key, value in figures.items():
        if key in ("requests", "how") or isinstance(value, str):
            continue
        label = key.replace("_ms", "").replace("_per_s", "/s").replace("_", " ")
        unit = " ms" if key.endswith("_ms") else ""
        shown.append(
            f"{label} {value:,}{unit}" if isinstance(value, int) else f"{label} {value}{unit}"
        )
    return ", ".join(shown)


def table(rows: list[dict]) -> str:
    lines = [
        "| what | ours | floor | ours ÷ floor | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row['ratio']}×" if row.get("ratio") is not None else "—"
        if row.get("p99_ratio") is not None:
            ratio += f" (p99 {row['p99_ratio']}×)"
        met = {True: "yes", False: "no", None: "—"}[row.get("met")]
        lines.append(
            f"| {row['what']} | {cell(row.get('ours'))} | {cell(row.get('floor'))} | {ratio} "
            f"| {row.get('target', '—')} | {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full", choices=("full", "small", "tiny"))
    parser.add_argument(
        "--only", default=",".join(STEPS), help="comma-separated: " + ", ".join(STEPS)
    )
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = parser.parse_args()
    steps = [step.strip() for step in args.only.split(",") if step.strip()]
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"--only: unknown step(s) {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    url = configure(args.scale)
    from django.core.management import call_command

    from bench import imports as bench_imports
    from bench import paths
    from bench.generate import SCALES, prepare
    from bench.webhooks import deliveries as webhook_deliveries

    scale = SCALES[args.scale]
    # DEBUG is off, so pages link hashed static files: collect them as a deployment would.
    call_command("collectstatic", "--noinput", verbosity=0)
    generation = prepare(scale, url, log)
    bench = paths.Bench(scale)
    paths.reset_due(bench)
    data = paths.counts()
    log(f"data: {data}")
    rows: list[dict] = []
    measure: dict[str, Callable[[paths.Bench], list[dict] | dict]] = {
        "sidebar": paths.sidebar_in_process,
        "queue": paths.queue,
        "insights": paths.insights,
        "bulk": paths.bulk_write,
        "http": paths.http,
        "sweep": paths.sweep,
        "reconcile": paths.full_reconcile,
        "webhooks": webhook_deliveries,
        # Customers (bench/imports.py), then history (bench/imports_history.py).
        "imports": lambda bench: bench_imports.measure(bench, log),
    }
    for step in STEPS:
        if step not in steps:
            continue
        log(f"measuring {step}")
        result = measure[step](bench)
        rows.extend(result if isinstance(result, list) else [result])
    report = {
        "scale": args.scale,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "data": data,
        "generation": generation,
        "seconds": round(time.perf_counter() - started, 1),
        "figures": rows,
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{args.scale}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as out:
        json.dump(report, out, indent=2, default=str)
    print(
        f"\nScale {args.scale}: {data['customers']:,} customers, {data['episodes']:,} episodes, "
        f"{data['open_cases']:,} open cases; {report['seconds']:.0f} s in all "
        f"(generation {generation['seconds']:.0f} s)\n"
    )
    print(table(rows))
    print(f"\n{path}")


if __name__ == "__main__":
    main()
