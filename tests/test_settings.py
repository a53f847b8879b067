"""Production settings: `check --deploy` is clean, a missing SECRET_KEY stops the start, and
only the suite hashes passwords fast."""

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import global_settings
from django.contrib.auth.hashers import get_hasher

import cxcore.settings

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_SET_BY_TESTS = ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS")


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_SET_BY_TESTS}
    env.update(
        DJANGO_SETTINGS_MODULE="cxcore.settings",
        COMEBACK_VAR_DIR=str(tmp_path / "var"),
        DEBUG="false",
        ALLOWED_HOSTS="example.com",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def random_secret_key(length: int = 50) -> str:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = production_env(tmp_path, SECRET_KEY=random_secret_key())
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_a_weak_secret_key(tmp_path):
    """The check above is meaningful: a short key is reported at WARNING level."""
    env = production_env(tmp_path, SECRET_KEY="too-short")
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W009" in result.stderr


@pytest.mark.parametrize("secret", [None, ""])
def test_debug_off_without_a_secret_key_refuses_to_start(tmp_path, secret):
    env = production_env(tmp_path)
    if secret is not None:
        env["SECRET_KEY"] = secret
    result = manage(env, "check")
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_the_debug_default_starts_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    del env["DEBUG"]
    del env["ALLOWED_HOSTS"]
    result = manage(env, "check")
    assert result.returncode == 0, result.stderr


def test_healthz_answers_before_host_validation(client, settings):
    settings.ALLOWED_HOSTS = ["cafe.example.com"]
    assert client.get("/healthz", HTTP_HOST="172.18.0.3:8000").json() == {"status": "ok"}
    assert client.get("/accounts/login/", HTTP_HOST="172.18.0.3:8000").status_code == 400


def test_only_the_suite_hashes_passwords_fast():
    assert get_hasher().algorithm == "md5"  # tests/conftest.py
    production = getattr(cxcore.settings, "PASSWORD_HASHERS", global_settings.PASSWORD_HASHERS)
    assert "MD5" not in production[0]
