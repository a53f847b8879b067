import pytest

from tests.webhooks.receiver import receiver  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def _private_targets(settings):
    """The receivers are on loopback: allowed here, as in development. The SSRF tests turn it
    off again."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    # Tests run deliveries themselves (deliver_due); the worker test turns the kick back on.
    settings.WEBHOOK_DELIVER_ON_COMMIT = False
