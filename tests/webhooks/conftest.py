import pytest

# Fixtures: the receiver, and the suite's own Redis server and Celery worker.
from tests.recovery.test_worker import publish_to, redis, worker  # noqa: F401
from tests.webhooks.receiver import receiver  # noqa: F401


@pytest.fixture(autouse=True)
def _private_targets(settings):
    """The receivers are on loopback: allowed here, as in development. The SSRF tests turn it
    off again."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    # Tests run deliveries themselves (deliver_due); the worker test turns the kick back on.
    settings.WEBHOOK_DELIVER_ON_COMMIT = False
