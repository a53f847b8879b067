# A real Redis and Celery worker, as the recovery worker tests start them (process groups,
# stopped even when a test fails).
import pytest

from tests.recovery.test_worker import publish_to, redis, worker  # noqa: F401


@pytest.fixture(autouse=True)
def _upload_dir_of_the_test(settings, tmp_path):
    """Every import test keeps its uploads and rejected rows in its own temporary directory."""
    settings.IMPORT_UPLOAD_DIR = str(tmp_path / "imports")


def record_key_triggers(monkeypatch, module, mode: str) -> list[bool]:
    """What each imports.keys.key_triggers_skipped block of `module` yielded, run as a
    superuser runs it ("skipped": a lock each chunk instead of the triggers) or as a role
    that may not turn them off ("kept")."""
    from contextlib import contextmanager

    from imports import keys

    if mode == "kept":
        monkeypatch.setattr(keys, "_may_set_sql", lambda cursor: "false")
    seen: list[bool] = []
    real = module.key_triggers_skipped

    @contextmanager
    def recorded(*args, **kwargs):
        with real(*args, **kwargs) as skipped:
            seen.append(skipped)
            yield skipped

    monkeypatch.setattr(module, "key_triggers_skipped", recorded)
    return seen
