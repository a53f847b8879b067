"""One recovery sweep in a fresh process, as a worker runs it: its time and its memory.

.venv/bin/python -m bench.sweep_worker <scale>   (prints one JSON line)
"""

from __future__ import annotations

import json
import sys
import time


def memory_mb() -> tuple[float, float]:
    """(resident now, resident at its highest) of this process, from Linux's /proc."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    resident, highest = (round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM"))
    return resident, highest


def main(scale: str) -> None:
    from bench.environment import configure

    configure(scale)
    from django.utils import timezone

    from recovery.sweep import sweep_recovery

    loaded, _ = memory_mb()  # Django and the app imported, nothing swept yet
    started = time.perf_counter()
    result = sweep_recovery(now=timezone.now())
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "opened": result.opened,
                "rss_loaded_mb": loaded,
                "rss_after_mb": memory_mb()[0],
                "rss_peak_mb": memory_mb()[1],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
