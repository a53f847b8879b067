"""Where a hot path's time goes: `python -m bench.profiles [--scale small] [--only a,b]`.

Runs each path of `make bench` in-process on the benchmark's data set (generate it first with
`make bench SCALE=<scale>`) under cProfile, and prints per path: the time a run takes (inflated
by the profiler, so compare shares, not milliseconds), its queries, the share spent waiting on
SQL, and the functions with the most time of their own and the most time in all. Not a
benchmark: it writes episodes into the data set like the bench's write steps do.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bench.environment import configure

# Our code and the layers of the framework a request goes through.
OURS = r"comeback|cxcore|recovery|accounts|imports|rest_framework|django/(db/models/sql|template)"


class _SQL:
    """A connection.execute_wrapper adding up the queries and their time."""

    def __init__(self) -> None:
        self.queries = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1


def _top(profile: cProfile.Profile, sort: str, restrict: str | None, count: int) -> list[str]:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).sort_stats(sort)
    stats.print_stats(*([restrict] if restrict else []), count)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), len(lines))
    return [line.rstrip() for line in lines[start + 1 :] if line.strip()][:count]


def profile(
    name: str, fn: Callable[[], object], runs: int, before: Callable[[], object] | None = None
) -> None:
    """`before` (not profiled, not timed) runs ahead of each run: the sweep's due customers."""
    from django.db import connection

    if runs > 1:  # warm: plans, caches, lazily built things (a one-run path is a long one)
        if before is not None:
            before()
        fn()
    sql = _SQL()
    profiler = cProfile.Profile()
    seconds = 0.0
    with connection.execute_wrapper(sql):
        for _ in range(runs):
            if before is not None:
                before()
            started = time.perf_counter()
            profiler.enable()
            fn()
            profiler.disable()
            seconds += time.perf_counter() - started
    print(
        f"\n=== {name}: {seconds / runs * 1000:.1f} ms a run under cProfile, "
        f"{sql.queries / runs:.1f} queries, SQL {sql.seconds / runs * 1000:.1f} ms "
        f"({100 * sql.seconds / seconds:.0f}%)"
    )
    print("  -- own time:")
    for line in _top(profiler, "tottime", None, 12):
        print("   ", line[:170])
    print("  -- in all (ours and the framework's layers):")
    for line in _top(profiler, "cumulative", OURS, 16):
        print("   ", line[:170])


HotPath = tuple[Callable[[], object], int, Callable[[], object] | None]


def paths(scale: str) -> dict[str, HotPath]:
    from django.utils import timezone

    from bench.generate import SCALES
    from bench.paths import Bench, ok, phone, reset_due
    from cxcore.selectors import customer_id_for
    from recovery.reconcile import reconcile
    from recovery.sidebar import customer_sidebar
    from recovery.sweep import sweep_recovery

    b = Bench(SCALES[scale])
    number = phone(2)  # the customer with 100 episodes
    today = timezone.localdate()
    month = {"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat()}
    written = [0]

    def episode() -> dict[str, Any]:
        written[0] += 1
        return {
            "customer": {"phone": phone(b.ordinary_seq())},
            "kind": "visit",
            "items": [{"name": "Flat white", "price": "3.40"}],
        }

    def sidebar() -> None:
        customer_id = customer_id_for(organization=b.org, identifiers={"phone": number})
        customer_sidebar(tenant=b.tenant, customer_id=customer_id, location=b.location)

    def single_write() -> None:
        body = {**episode(), "source": "pos"}
        key = f"profile-{time.time()}-{written[0]}"
        ok(
            b.api.post(
                "/api/v1/episodes/", json.dumps(body), "application/json", HTTP_IDEMPOTENCY_KEY=key
            ),
            201,
        )

    def bulk_write() -> None:
        stamp = time.time()
        episodes = [
            {**episode(), "source": "import", "external_id": f"profile-{stamp}-{n}"}
            for n in range(1000)
        ]
        body = json.dumps({"episodes": episodes})
        ok(b.api.post("/api/v1/episodes/bulk/", body, "application/json"))

    def sweep() -> None:
        sweep_recovery(now=timezone.now())

    return {
        "sidebar": (sidebar, 100, None),
        "sidebar_api": (lambda: ok(b.api.get("/api/v1/sidebar/", {"phone": number})), 100, None),
        "queue_api": (lambda: ok(b.api.get("/api/v1/cases/", {"page_size": 50})), 50, None),
        "queue_html": (lambda: ok(b.web.get("/recovery/")), 30, None),
        "insights_location": (
            lambda: ok(
                b.api.get("/api/v1/insights/summary/", {**month, "location": b.location.slug})
            ),
            30,
            None,
        ),
        "insights_chain": (lambda: ok(b.api.get("/api/v1/insights/summary/", month)), 10, None),
        "single_write": (single_write, 100, None),
        "bulk_write": (bulk_write, 2, None),
        # In-process, not in a fresh worker as the bench does: the time, not the memory.
        "sweep": (sweep, 1, lambda: reset_due(b)),
        "reconcile": (reconcile, 1, None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small", choices=("full", "small", "tiny"))
    parser.add_argument("--only", default="", help="comma-separated path names")
    args = parser.parse_args()
    configure(args.scale)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    for name, (fn, runs, before) in paths(args.scale).items():
        if not wanted or name in wanted:
            profile(name, fn, runs, before)


if __name__ == "__main__":
    main()
