# A real Redis and Celery worker, as the recovery worker tests start them (process groups,
# stopped even when a test fails).
from tests.recovery.test_worker import publish_to, redis, worker  # noqa: F401
