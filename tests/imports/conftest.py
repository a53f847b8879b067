# A real Redis and Celery worker, as the recovery worker tests start them (process groups,
# stopped even when a test fails).
import pytest

from tests.recovery.test_worker import publish_to, redis, worker  # noqa: F401


@pytest.fixture(autouse=True)
def _upload_dir_of_the_test(settings, tmp_path):
    """Every import test keeps its uploads and rejected rows in its own temporary directory."""
    settings.IMPORT_UPLOAD_DIR = str(tmp_path / "imports")
