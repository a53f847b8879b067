"""No API key secret at rest outside its hash: keys made every way there is, then a full pg_dump
of the database and every log line are searched for them.

Every way: the API keys page (accounts/views.py), `manage.py create_api_key`, and the service
itself (what both call). The demo seeding writes its till key to var/demo-credentials.txt on
purpose (`make run` prints it) and is left out. There is no API to create keys.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import subprocess
from io import StringIO

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings

from accounts.services import create_api_key
from tests.conftest import key_client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which("pg_dump"), reason="needs pg_dump"),
]
# The embedded default's cache is a database table: whatever the page keeps there is dumped too.
DATABASE_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "comeback_cache",
    }
}


def pg_dump() -> str:
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    command = ["pg_dump", "--no-owner", "--dbname", db["NAME"]]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if db.get(key):
            command += [flag, str(db[key])]
    dump = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
    return dump.stdout


def key_from_page(client: Client, name: str) -> str:
    page = client.get("/accounts/api-keys/").content.decode()
    form_id = re.search(r'name="form_id" value="([^"]+)"', page)
    assert form_id
    data = {"name": name, "location": "", "form_id": form_id[1]}
    created = client.post("/accounts/api-keys/", data).content.decode()
    raw = re.search(r'<code id="new-key">([^<]+)</code>', created)
    assert raw
    client.post("/accounts/api-keys/", data)  # a reload of that answer re-posts the form
    client.get("/accounts/api-keys/")
    return raw[1]


@override_settings(CACHES=DATABASE_CACHE)
def test_no_new_keys_secret_is_in_a_dump_of_the_database_or_in_the_logs(
    owner, org, main_st, caplog
):
    call_command("createcachetable", verbosity=0)
    # Every statement with its parameters goes to the log too.
    connection.force_debug_cursor = True
    try:
        with (
            caplog.at_level(logging.DEBUG),
            caplog.at_level(logging.DEBUG, logger="django.db.backends"),
        ):
            client = Client()
            client.force_login(owner)
            raws = [key_from_page(client, "From the page")]
            out = StringIO()
            call_command(
                "create_api_key", "--org", org.slug, "--name", "From the command", stdout=out
            )
            raws.append(out.getvalue().strip())
            raws.append(create_api_key(organization=org, name="From code", location=main_st)[1])
            for raw in raws:  # each works, so each was really made
                assert key_client(raw).get("/api/v1/locations/").status_code == 200
    finally:
        connection.force_debug_cursor = False

    dump = pg_dump()
    # Sessions and cache entries are encoded: what they hold, decoded, is searched too.
    sessions = [str(SessionStore().decode(row.session_data)) for row in Session.objects.all()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT value FROM comeback_cache")
        cached = [str(base64.b64decode(value)) for (value,) in cursor.fetchall()]
    decoded = "\n".join(sessions + cached)
    assert sessions and cached  # the owner's session, the form's one-time claim
    assert "COPY public.accounts_apikey" in dump and "COPY public.django_session" in dump
    assert "comeback_cache" in dump
    logs = caplog.text
    assert "accounts_apikey" in logs  # the statements were logged
    for raw in raws:
        secret = raw.split("_", 2)[2]
        prefix = raw.split("_", 2)[1]
        assert prefix in dump  # the key's row is in the dump…
        assert secret not in dump  # …and its secret is not, anywhere
        assert secret not in logs
        assert secret not in decoded
