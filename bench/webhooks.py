"""Webhook deliveries per second to a local receiver, beside a bare HTTP client's floor.

The receiver is a separate process (its own group, stopped with it) answering 204 over
keep-alive; ours is `deliver_due` on N committed deliveries (claim, sign, send, record); the
floor is one requests.Session POSTing the same N bodies to the same receiver.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from django.test.utils import override_settings
from django.utils import timezone

from bench.measure import free_port

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""
COUNTS = {"full": 5000, "small": 5000, "tiny": 300}


@contextmanager
def receiver() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the receiver did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def deliveries(b) -> dict:
    from bench.paths import ratio
    from webhooks import outbox
    from webhooks.delivery import deliver_due, request_parts
    from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
    from webhooks.services import create_endpoint

    count = COUNTS[b.scale.name]
    with (
        override_settings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_DELIVER_ON_COMMIT=False),
        receiver() as url,
    ):
        endpoint, _ = create_endpoint(organization=b.org, url=url, events=["case.opened"])
        try:
            now = timezone.now()
            data = {
                "case": {"id": 1, "kind": "recovery", "status": "open", "severity": "high",
                         "location": b.location.slug,
                         "headline": "Daniel — the cashier forgot my salad · 3 h ago"},
                "customer": {"id": 1},
            }  # fmt: skip
            outbox.emit_many(
                [outbox.Outgoing(b.org.pk, "case.opened", now, data) for _ in range(count)]
            )
            # The floor's bodies and headers, built the same way before the clock starts.
            prepared = [
                request_parts(d, timestamp=int(time.time()), at=now)
                for d in WebhookDelivery.objects.filter(endpoint=endpoint).select_related(
                    "event", "endpoint"
                )
            ]
            started = time.perf_counter()
            run = deliver_due()
            ours = run.delivered / (time.perf_counter() - started)
            assert run.delivered == count, run
            with requests.Session() as session:
                started = time.perf_counter()
                for body, headers in prepared:
                    response = session.post(
                        url, data=body, headers={**headers, "Content-Type": "application/json"}
                    )
                    assert response.status_code == 204
                floor_rate = count / (time.perf_counter() - started)
        finally:
            events = list(
                WebhookDelivery.objects.filter(endpoint=endpoint).values_list("event", flat=True)
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
            WebhookEvent.objects.filter(pk__in=events).delete()
    return {
        "what": f"webhook deliveries to a local receiver, {count:,}",
        "ours": {"deliveries_per_s": round(ours)},
        "floor": {"deliveries_per_s": round(floor_rate), "how": "requests.Session POSTs"},
        "ratio": ratio(ours, floor_rate),
        "target": "beside the floor (issue 14)",
    }
