"""Recording a batch costs a fixed number of statements, not three per failed delivery."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.webhooks.helpers import emit, make_endpoint
from webhooks.delivery import BATCH, deliver_due
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def test_a_batch_to_a_dead_endpoint_records_its_failures_in_one_statement_each(
    org, receiver, django_assert_max_num_queries
):
    receiver.always(500)
    endpoint, _ = make_endpoint(org, receiver.url)
    for n in range(BATCH):
        emit(org, n=n)
    now = timezone.now()
    # The claim (select, update), the attempts' insert, one compare-and-swap and one read of
    # the endpoints' failing spells, and one UPDATE per failed delivery; a second claim finds
    # nothing (savepoints aside: the test runs in a transaction).
    with django_assert_max_num_queries(2 + 1 + 2 + BATCH + 1 + 10) as run:
        assert deliver_due(now=now).failed == BATCH
    statements = [q["sql"] for q in run.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 2 + 1 + 2 + BATCH + 1
    endpoint.refresh_from_db()
    assert endpoint.failing_since == now
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending"}
    assert WebhookEndpoint.objects.filter(failing_since=now).count() == 1
