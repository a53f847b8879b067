"""The app's own settings, plus the floor views the benchmark serves beside it."""

from cxcore.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
