"""Production-shaped settings for the benchmark, set before Django loads.

DEBUG off (DEBUG keeps every query in memory and the test client instruments every template
render, which would measure the harness, not the app), collected static files, no TLS redirect
(requests come from loopback), and the benchmark's own database.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/comeback_bench_{scale}"


def configure(scale: str) -> str:
    """Point Django at the scale's database and load it; returns the database URL."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL).format(scale=scale)
    os.environ.update(
        DATABASE_URL=url,
        DEBUG="false",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-not-a-secret-" + "x" * 40,
        ALLOWED_HOSTS="testserver,127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        DJANGO_SETTINGS_MODULE="bench.settings",
        # Beat and the worker are not part of these figures; the sweep is called directly.
        CELERY_BROKER_URL=os.environ.get("BENCH_BROKER_URL", "memory://"),
        # One key drives 16 clients, far past any till's quota: the API throttles are off here.
        API_THROTTLE_RATE="off",
        API_BULK_THROTTLE_RATE="off",
    )
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import django

    django.setup()
    return url
