"""Timing helpers: in-process samples, and HTTP load through gunicorn driven by wrk."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager

from bench.environment import ROOT


def percentiles(samples_ms: list[float]) -> dict:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, max(0, round(len(ordered) * 0.99) - 1))]
    return {"p50_ms": round(statistics.median(ordered), 3), "p99_ms": round(p99, 3)}


def timed(fn: Callable[[], object], runs: int, warmup: int = 5) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def timed_pair(
    a: Callable[[], object],
    b: Callable[[], object],
    runs: int,
    *,
    before_a: Callable[[], object] = lambda: None,
    before_b: Callable[[], object] = lambda: None,
    warmup: int = 5,
) -> tuple[dict, dict]:
    """Two variants of one path, sampled in turn (a b, b a, …) so a slow second on the machine
    lands on both alike; the difference of their p99s is then the variants' and not the
    machine's. `before_*` switch a variant on (a setting, say) outside the timed part."""
    samples: dict[str, list[float]] = {"a": [], "b": []}
    variants = {"a": (a, before_a), "b": (b, before_b)}
    for i in range(warmup + runs):
        for name in ("a", "b") if i % 2 == 0 else ("b", "a"):
            fn, before = variants[name]
            before()
            started = time.perf_counter()
            fn()
            if i >= warmup:
                samples[name].append((time.perf_counter() - started) * 1000)
    return percentiles(samples["a"]), percentiles(samples["b"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(workers: int = 4):
    """The app as production serves it (sync workers, as in docker-compose.yml), on loopback."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "cxcore.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning"],
        cwd=ROOT,
        env=os.environ.copy(),
        start_new_session=True,  # its own group: the workers are stopped with it
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is missing for the HTTP figures: apt-get install wrk")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _search(pattern: str, text: str) -> str:
    """The first group of `pattern` in wrk's output; a missing one fails the run."""
    match = re.search(pattern, text, re.M)
    if match is None:
        raise RuntimeError(f"no {pattern!r} in wrk's output:\n{text}")
    return match.group(1)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"{text!r} is not a wrk duration")
    number, unit = match.groups()
    return round(float(number) * _UNITS[unit], 3)


def served(url: str, *, headers: dict[str, str], within: float = 120) -> float:
    """Wait until `url` answers 2xx, and return how long that took (seconds).

    gunicorn accepts connections as soon as its master has bound the port, while its workers
    may still be importing the app; on a loaded machine the first answer can take tens of
    seconds, and a timed run started before it measures the boot (or nothing: 0 requests).
    Bounded: a server that never answers 2xx fails the run, naming the last answer."""
    started = time.monotonic()
    last = "no answer"
    while True:
        try:
            request = urllib.request.Request(url, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                if 200 <= response.status < 300:
                    return time.monotonic() - started
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}: {error.read()[:300]!r}"
        except OSError as error:  # refused, reset, timed out: the server is not up yet
            last = repr(error)
        if time.monotonic() - started > within:
            raise RuntimeError(f"{url} gave no 2xx answer within {within:.0f} s: {last}")
        time.sleep(0.25)


def wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    script: str,
    env: dict,
    min_requests: int = 0,
    strict: bool = True,
) -> dict:
    """A bounded loopback load: `connections` clients for `seconds`; requests/s, p50, p99.

    Any non-2xx answer or socket error fails the run, so a figure is never of errors (unless
    not `strict`: a warm-up, whose answers are not figures). A run that completed fewer than
    `min_requests` (a loaded machine, a tiny scale's short run) is run again for twice as long,
    up to 4× `seconds`; the figure is the last run's, so its percentiles rest on enough
    answers. It may still be below `min_requests` then (the figure says how many), but never
    0: a run without one answer fails rather than record a rate of 0."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        duration, attempt = seconds, 1
        while True:
            # BENCH_ATTEMPT: a script that makes idempotency keys makes new ones each attempt.
            attempt_env = {**env, "BENCH_ATTEMPT": str(attempt)}
            out = _wrk_run(url, lua.name, connections, duration, attempt_env, strict=strict)
            requests = int(_search(r"(\d+) requests in", out))
            if requests >= min_requests or duration >= 4 * seconds:
                break
            duration, attempt = duration * 2, attempt + 1
    finally:
        os.unlink(lua.name)
    if not strict:
        return {"requests": requests}
    if requests == 0:
        raise RuntimeError(f"wrk against {url}: no answer in {duration} s\n{out}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if set(latency) != {"50", "99"}:
        raise RuntimeError(f"no latency distribution in wrk's output:\n{out}")
    return {
        "requests_per_s": round(float(_search(r"Requests/sec:\s+([\d.]+)", out))),
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "requests": requests,
    }


def _wrk_run(url: str, lua: str, connections: int, seconds: int, env: dict, *, strict: bool) -> str:
    result = subprocess.run(
        # --timeout: a request slower than wrk's 2 s default (a worker still loading the
        # app, on a loaded machine) is measured as slow, not dropped as a socket error.
        [require_wrk(), "-t", str(min(2, connections)), "-c", str(connections),
         "-d", f"{seconds}s", "--timeout", "10s", "--latency", "-s", lua, url],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=seconds + 60,
    )  # fmt: skip
    out = result.stdout
    failed = result.returncode != 0 or (strict and ("Non-2xx" in out or "Socket errors" in out))
    if failed or "requests in" not in out:
        raise RuntimeError(f"wrk against {url} failed:\n{out}\n{result.stderr}")
    return out
