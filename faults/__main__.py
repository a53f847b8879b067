"""`make faults` (`python -m faults`): every fault scenario against a real stack, one Markdown
table each; exits 1 if anything was lost, duplicated, answered a 500 or left cases wrong.

The database is FAULTS_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/comeback_faults),
created and migrated if needed; each scenario works in an organization of its own, and the
previous run's organizations are deleted first. Redis is the stack's own, on a private port.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/comeback_faults"


def interrupted(signum: int, frame: FrameType | None) -> None:
    # `make` sends SIGTERM when it is interrupted: unwind like Ctrl-C, so every group stops.
    raise KeyboardInterrupt


def ensure_database(url: str) -> None:
    import dj_database_url
    import psycopg
    from psycopg import sql

    settings = dj_database_url.parse(url)
    name = settings["NAME"]
    params = {
        "host": settings["HOST"] or "127.0.0.1",
        "port": settings["PORT"] or 5432,
        "user": settings["USER"] or "postgres",
        "password": settings["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**params) as conn:  # type: ignore[arg-type]
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def configure(url: str) -> None:
    os.environ.update(
        DATABASE_URL=url,
        CELERY_BROKER_URL="memory://",  # this process publishes nothing
        DJANGO_SETTINGS_MODULE="cxcore.settings",
    )
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--scenario", action="append", help="run only these (repeatable)")
    parser.add_argument("--short", action="store_true", help="the suite's two scenarios, briefly")
    parser.add_argument("--seconds", type=float, help="load per scenario (default 15, short 8)")
    parser.add_argument("--rate", type=float, default=20, help="writes a second (default 20)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the stack's logs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, interrupted)

    url = os.environ.get("FAULTS_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    configure(url)
    from django.core.management import call_command

    from accounts.models import Organization
    from faults.run import Result, run_scenario, summary, table
    from faults.scenarios import SCENARIOS, SHORT
    from faults.stack import Stack

    names = args.scenario or list(SHORT if args.short else SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown}; one of {list(SCENARIOS)}")
    seconds = args.seconds or (8 if args.short else 15)

    call_command("migrate", verbosity=0, interactive=False)
    Organization.objects.filter(name__startswith="Faults ").delete()
    work = Path(tempfile.mkdtemp(prefix="comeback-faults-"))
    print(f"database {url.rsplit('/', 1)[-1]}; logs in {work}", flush=True)
    started = time.monotonic()
    failed = True
    results: list[Result] = []
    try:
        with Stack(work=work, database_url=url) as stack:
            print(f"stack up in {time.monotonic() - started:.0f}s: {stack.base_url}, "
                  f"redis on {stack.redis_port}\n", flush=True)  # fmt: skip
            for name in names:
                result = run_scenario(stack, name, seconds=seconds, rate=args.rate)
                results.append(result)
                print(table(result), flush=True)
        failed = not all(result.ok for result in results)
    finally:
        if failed or args.keep_logs:
            print(f"{'FAILED; t' if failed else 'T'}he stack's logs are in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if len(results) > 1:
        print(summary(results))
    verdicts = ", ".join(f"{r.scenario} {'ok' if r.ok else 'FAILED'}" for r in results)
    print(f"{len(results)} scenarios in {time.monotonic() - started:.0f}s: {verdicts}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the stack's groups were stopped on the way out
        print("interrupted", file=sys.stderr)
        sys.exit(130)
