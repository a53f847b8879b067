import os
from collections.abc import Iterable, Iterator

import pytest
from django.test.utils import override_settings
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from accounts.models import Location, Organization, Role, User
from accounts.services import add_member, create_api_key
from tests.factories import LocationFactory, OrganizationFactory, UserFactory


def pytest_configure(config: pytest.Config) -> None:
    """`make test` runs the suite in several processes (pytest-xdist). pytest-django gives each
    its own test database (test_comeback_gw0, _gw1); this gives each its own Redis database for
    the Celery broker (the configured one, then the ones below it), so a real worker one process
    starts never takes the other's tasks. The settings are loaded by now, so the broker is moved
    in the three places it is read: the settings, the Celery app and the environment the test's
    subprocesses inherit (a nested pytest, having no workerinput, leaves it as it finds it)."""
    worker = getattr(config, "workerinput", {}).get("workerid", "")  # "gw0", "gw1"
    broker = os.environ.get("CELERY_BROKER_URL", "")
    base, _, db = broker.rpartition("/")
    if not (worker.startswith("gw") and broker.startswith("redis://") and db.isdigit()):
        return
    number = int(db) - int(worker[2:])
    if number < 1:  # database 0 is the throttle tests' (tests/cxcore/test_api_throttling.py)
        raise pytest.UsageError(
            f"{worker} would take Redis database {number}: run fewer processes "
            f"(TEST_WORKERS) or give CELERY_BROKER_URL a higher database than {db}."
        )
    from django.conf import settings

    from cxcore.celery import app as celery_app

    moved = f"{base}/{number}"
    os.environ["CELERY_BROKER_URL"] = moved
    settings.CELERY_BROKER_URL = moved
    celery_app.conf.broker_url = moved


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the files with tests marked slow (servers, workers, the browser) first:
    each process takes a file at a time, so a four-minute file picked up last would run alone
    at the end. A stable sort by file, the same in every process, as xdist requires; in one
    process the order is left as pytest-django made it."""
    if not hasattr(config, "workerinput"):
        return
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)


# Hypothesis's per-example deadline measures the machine as much as the code: with the suite in
# two processes on two cores, a 200 ms deadline fails a test that is only waiting for a core.
hypothesis_settings.register_profile("suite", deadline=None)
hypothesis_settings.load_profile("suite")


# Test settings only: PBKDF2's deliberate slowness was a third of the suite's time. Processes a
# test boots (the smoke tests) run the production settings and their slow hasher.
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _fast_password_hasher() -> Iterator[None]:
    # override_settings, not an assignment: it clears Django's cached hasher list.
    with override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS):
        yield


@pytest.fixture(scope="session", autouse=True)
def _process_local_cache() -> Iterator[None]:
    """The suite's cache is this process's memory: the database cache would add its queries to
    every query budget, and a shared Redis database would carry counts between concurrent runs.
    The throttles' own tests (tests/cxcore/test_api_throttling.py) run on Redis and the database
    cache at low rates; elsewhere a fuzz test sends one key more bulk requests a minute than a
    till would, so the rates here are high."""
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with override_settings(
        CACHES=caches, API_THROTTLE_RATE="100000/min", API_BULK_THROTTLE_RATE="100000/min"
    ):
        yield


@pytest.fixture(scope="session", autouse=True)
def _require_postgresql(django_db_setup, django_db_blocker):
    """The suite is about the real database: refuse to pass quietly on anything else."""
    from django.db import connection

    if connection.vendor != "postgresql" and not os.environ.get("COMEBACK_TEST_ALLOW_SQLITE"):
        pytest.exit(
            f"The suite runs on PostgreSQL (got {connection.vendor}). Use `make test`, or set "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/comeback.",
            returncode=2,
        )


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Corner Cup", slug="corner-cup", country="GB")


@pytest.fixture
def main_st(org):
    return LocationFactory(organization=org, name="Main St", slug="main-st")


@pytest.fixture
def harbour(org):
    return LocationFactory(organization=org, name="Harbour Rd", slug="harbour-rd")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Rival Roasters", slug="rival", country="US")


@pytest.fixture
def other_location(other_org):
    return LocationFactory(organization=other_org, name="Elsewhere", slug="elsewhere")


def _member(org: Organization, role: Role, locations: Iterable[Location] = ()) -> User:
    user = UserFactory.create()
    add_member(organization=org, user=user, role=role, locations=list(locations))
    return user


@pytest.fixture
def owner(org, main_st, harbour):
    return _member(org, Role.OWNER)


@pytest.fixture
def manager(org, main_st, harbour):
    return _member(org, Role.MANAGER, [main_st])


@pytest.fixture
def staff(org, main_st, harbour):
    return _member(org, Role.STAFF, [main_st])


@pytest.fixture
def outsider(other_org, other_location):
    return _member(other_org, Role.OWNER)


@pytest.fixture
def org_key(org, main_st, harbour):
    """An organization-wide API key (raw string)."""
    return create_api_key(organization=org, name="HQ")[1]


@pytest.fixture
def till_key(org, main_st, harbour):
    """An API key limited to Main St (raw string)."""
    return create_api_key(organization=org, name="Main St till", location=main_st)[1]


@pytest.fixture
def outsider_key(other_org, other_location):
    return create_api_key(organization=other_org, name="Rival till", location=other_location)[1]


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    return client


@pytest.fixture
def api(org_key):
    return key_client(org_key)


@pytest.fixture
def till(till_key):
    return key_client(till_key)


@pytest.fixture
def outsider_api(outsider_key):
    return key_client(outsider_key)
