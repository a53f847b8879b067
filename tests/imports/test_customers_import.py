"""Importing customers from a Square export (imports.services), on hand-made files with every
awkward row the issue names, against the real PostgreSQL; the plain (SQLite) path's rules are
run here too, on PostgreSQL, by switching the path."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.errors import InvalidInput
from accounts.models import TeamAction, TeamEvent
from cxcore.models import Customer, CustomerEdit, Identifier
from cxcore.services.episodes import EpisodeInput, rebuild_narrative, record_episode
from imports import services
from imports.models import ImportBatch, ImportedObject, ImportStatus
from imports.services import create_customer_batch, import_customers
from imports.undo import undo_import
from tests.factories import CustomerFactory, IdentifierFactory, UserFactory
from tests.imports.conftest import record_key_triggers

DATA = Path(__file__).parent / "data"
SQUARE = DATA / "square-customers-bom-crlf.csv"


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


@pytest.fixture(params=["postgresql", "plain"])
def path_kind(request, monkeypatch):
    """Both paths behind import_customers: COPY + set-based SQL, and the embedded one's."""
    if request.param == "plain":
        monkeypatch.setattr(services, "_is_postgresql", lambda: False)
    return request.param


def run(org, path=SQUARE, *, dry_run=False, format="square", column_map=None, user=None):
    batch = create_customer_batch(
        organization=org,
        path=path,
        file_name=Path(path).name,
        format=format,
        column_map=column_map,
        dry_run=dry_run,
        created_by=user,
    )
    return import_customers(batch=batch)


def customer_by(org, kind, value):
    return Customer.objects.get(identifiers__kind=kind, identifiers__value=value, organization=org)


def test_square_export_with_every_awkward_row(org, path_kind):
    batch = run(org)

    assert batch.status == ImportStatus.DONE, batch.error
    assert batch.counts["rows"] == 10
    assert batch.counts["new"] == 5
    assert batch.counts["matched"] == 2  # Margaret and Zoë again, in other formats
    assert batch.counts["rejected"] == 3
    assert batch.counts["phone_only"] == 1
    assert batch.counts["pos_id_only"] == 1
    assert Customer.objects.for_org(org).count() == 5

    margaret = customer_by(org, "pos_id", "SQ-MARG-1")
    assert margaret.name == "Margaret Oakes"
    assert set(margaret.identifiers.values_list("kind", "value")) == {
        ("pos_id", "SQ-MARG-1"),
        ("phone", "+447400200123"),
        ("email", "margaret@example.com"),
    }
    assert margaret.notes == "Oat flat white, no sugar"
    assert margaret.marketing_email_consent == "yes"
    assert margaret.marketing_email_consent_source == "import"
    assert margaret.marketing_email_consent_at is not None

    zoe = customer_by(org, "email", "zoe@example.com")
    assert zoe.name == "Zoë Ångström-Łukasz"
    assert zoe.notes == "Allergic to nuts — always ask"
    assert zoe.marketing_email_consent == "no"

    dan = customer_by(org, "phone", "+447400200456")
    assert dan.name == "Dan Reyes"
    assert list(dan.identifiers.values_list("kind", flat=True)) == ["phone"]
    assert dan.marketing_email_consent == "unknown"
    assert dan.marketing_email_consent_source == ""

    walk_in = customer_by(org, "pos_id", "SQ-ANON-7")
    assert walk_in.name == ""
    assert walk_in.notes == "Walk-in, paid cash"

    priya = customer_by(org, "email", "priya@example.com")
    assert priya.notes == "Prefers window seat\r\nBrings her dog"
    assert priya.marketing_email_consent == "no"

    # The header is line 1; Priya's memo spans lines 10 and 11, so Eve is on line 12.
    lines = {item["line"]: item["reason"] for item in batch.first_rejections}
    assert sorted(lines) == [7, 8, 12]
    assert "'12' is not" in lines[7]
    assert "No phone, email or customer id" in lines[8]
    assert "not an email address" in lines[12]

    with open(batch.rejected_path, encoding="utf-8", newline="") as handle:
        rejected = list(csv.reader(handle))
    assert rejected[0][:2] == ["First Name", "Last Name"]
    assert rejected[0][-2:] == ["Line", "Reason"]
    assert [row[-2] for row in rejected[1:]] == ["7", "8", "12"]
    assert rejected[1][:4] == ["Bad", "Phone", "", "12"]

    assert TeamEvent.objects.filter(organization=org, action=TeamAction.IMPORTED).count() == 1


def test_reimporting_the_same_file_creates_nothing(org, path_kind):
    first = run(org)
    before = {
        c.pk: (c.name, c.notes, c.marketing_email_consent) for c in Customer.objects.for_org(org)
    }
    identifiers = Identifier.objects.for_org(org).count()

    again = run(org)

    assert again.status == ImportStatus.DONE
    assert again.counts["new"] == 0
    assert again.counts["matched"] == first.counts["new"] + first.counts["matched"]
    after = {
        c.pk: (c.name, c.notes, c.marketing_email_consent) for c in Customer.objects.for_org(org)
    }
    assert after == before  # memos are not appended twice
    assert Identifier.objects.for_org(org).count() == identifiers
    assert not ImportedObject.objects.filter(batch=again).exists()


def test_dry_run_counts_like_the_real_run_and_writes_nothing(org, path_kind):
    dry = run(org, dry_run=True)

    assert dry.status == ImportStatus.DONE
    assert dry.counts["new"] == 5
    assert dry.counts["matched"] == 2
    assert dry.counts["rejected"] == 3
    assert [item["line"] for item in dry.first_rejections] == [7, 8, 12]
    assert not Customer.objects.for_org(org).exists()
    assert not Identifier.objects.for_org(org).exists()
    assert not ImportedObject.objects.exists()
    assert not TeamEvent.objects.filter(organization=org, action=TeamAction.IMPORTED).exists()


def test_a_known_customer_is_matched_and_a_blank_never_overwrites(org, path_kind, tmp_path):
    known = CustomerFactory.create(organization=org, name="Maggie", notes="VIP: corner table")
    IdentifierFactory.create(customer=known, kind="phone", value="+447400200123")
    user = UserFactory.create()

    batch = run(org, user=user)

    known.refresh_from_db()
    assert known.name == "Maggie"  # an existing name is kept
    assert known.notes == "VIP: corner table\nOat flat white, no sugar"
    assert known.marketing_email_consent == "yes"
    assert set(known.identifiers.values_list("kind", flat=True)) == {"phone", "email", "pos_id"}
    assert batch.counts["new"] == 4
    edit = CustomerEdit.objects.get(customer=known, kind="import")
    assert edit.by_user == user
    assert set(edit.fields) >= {"email", "pos_id", "notes", "marketing_email_consent"}
    assert edit.changes["notes"]["old"] == "VIP: corner table"

    # A later file with blank cells for her changes nothing.
    blanks = tmp_path / "blanks.csv"
    blanks.write_text(
        "Phone Number,First Name,Memo,Email Subscription Status\n07400 200123,,,\n",
        encoding="utf-8",
    )
    run(org, blanks)
    known.refresh_from_db()
    assert known.name == "Maggie"
    assert known.notes == "VIP: corner table\nOat flat white, no sugar"
    assert known.marketing_email_consent == "yes"


def test_a_generic_file_is_read_through_its_column_map(org, path_kind, tmp_path):
    path = tmp_path / "till-export.csv"
    path.write_text(
        "Full name,Mobile,E-mail,Opt-in,Allergies\n"
        "Ana Lima,07400 200321,Ana@Example.com,yes,Gluten\n"
        "Ana Lima,,ana@example.com,,\n"
        "Ben,,,no,\n",
        encoding="utf-8",
    )
    batch = run(
        org,
        path,
        format="generic",
        column_map={
            "Full name": "name",
            "Mobile": "phone",
            "E-mail": "email",
            "Opt-in": "consent",
            "Allergies": "notes",
        },
    )
    assert batch.counts == {**batch.counts, "new": 1, "matched": 1, "rejected": 1}
    ana = customer_by(org, "email", "ana@example.com")
    assert ana.name == "Ana Lima"
    assert ana.notes == "Gluten"
    assert ana.marketing_email_consent == "yes"
    assert batch.first_rejections == [
        {"line": 4, "reason": "No phone, email or customer id to know the customer by."}
    ]


def test_a_generic_map_naming_a_missing_column_is_refused(org, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("Name,Phone\nA,07400200321\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        run(org, path, format="generic", column_map={"Mobile": "phone"})
    assert "Mobile" in caught.value.message
    with pytest.raises(InvalidInput) as caught:
        run(org, path, format="generic", column_map={"Name": "name"})
    assert caught.value.field == "file"
    assert not ImportBatch.objects.exists()


def test_a_file_that_is_not_utf8_is_refused_or_fails_with_its_reason(org, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("Phone Number,First Name\n07400200321,Ren\xe9e\n".encode("latin-1"))
    with pytest.raises(InvalidInput) as caught:
        run(org, path)  # the header's block is read when the batch is made
    assert caught.value.field == "file"
    # Past the first block the batch runs, and fails naming the reason.
    good = "".join(f"0740020{n:04d},Ana\n" for n in range(40_000))
    path.write_bytes(
        ("Phone Number,First Name\n" + good).encode() + "0740020999,Ren\xe9e\n".encode("latin-1")
    )
    batch = run(org, path)
    assert batch.status == ImportStatus.FAILED
    assert "UTF-8" in batch.error


def test_the_same_person_across_chunks_is_one_customer(org, path_kind, monkeypatch, tmp_path):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    path = tmp_path / "split.csv"
    path.write_text(
        "Phone Number,Email Address,Square Customer ID,Memo\n"
        "07400200111,,,first\n"
        "07400200222,,,\n"
        ",kim@example.com,SQ-KIM,\n"
        "+447400200111,KIM@example.com,,second\n"
        "07400200111,,,first\n",
        encoding="utf-8",
    )
    batch = run(org, path)
    assert batch.counts["new"] == 2
    assert batch.counts["matched"] == 3
    # Rows 4 and 5 share Kim's email, and row 5's phone is line 2's person: all one customer,
    # found by the phone, learning Kim's email and id; the memo repeated on line 6 is not
    # appended again.
    kim = customer_by(org, "pos_id", "SQ-KIM")
    assert kim == customer_by(org, "phone", "+447400200111")
    assert kim == customer_by(org, "email", "kim@example.com")
    assert kim.notes == "first\nsecond"


def test_undo_takes_back_what_the_batch_did_and_keeps_what_was_touched(org, path_kind):
    owner_user = UserFactory.create()
    known = CustomerFactory.create(organization=org, name="", notes="VIP")
    IdentifierFactory.create(customer=known, kind="phone", value="+447400200123")
    batch = run(org, user=owner_user)
    known.refresh_from_db()
    assert known.name == "Margaret Oakes"
    # Someone served Dan since: he is touched, so he stays.
    dan = customer_by(org, "phone", "+447400200456")
    record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", customer_id=dan.pk, source="staff"),
    )

    outcome = undo_import(batch=batch, by_user=owner_user)

    assert outcome.customers_removed == 3  # the walk-in, Zoë and Priya
    assert outcome.customers_kept == 1
    assert set(Customer.objects.for_org(org).values_list("pk", flat=True)) == {known.pk, dan.pk}
    known.refresh_from_db()
    assert known.notes == "VIP"
    assert known.name == ""
    assert known.marketing_email_consent == "unknown"
    assert known.marketing_email_consent_source == ""
    assert list(known.identifiers.values_list("kind", "value")) == [("phone", "+447400200123")]
    batch.refresh_from_db()
    assert batch.status == ImportStatus.UNDONE
    assert batch.undone_by == owner_user
    event = TeamEvent.objects.get(organization=org, action=TeamAction.IMPORT_UNDONE)
    assert event.actor == owner_user
    assert event.detail["outcome"]["customers_removed"] == 3
    assert not rebuild_narrative(customer_id=dan.pk)

    with pytest.raises(InvalidInput):
        undo_import(batch=batch, by_user=owner_user)


def test_undo_is_refused_after_thirty_days(org):
    batch = run(org)
    with pytest.raises(InvalidInput):
        undo_import(batch=batch, by_user=None, now=timezone.now() + timedelta(days=31))
    assert Customer.objects.for_org(org).count() == 5


def test_narrative_state_agrees_with_the_episodes_after_an_import(org, path_kind):
    known = CustomerFactory.create(organization=org, name="")
    IdentifierFactory.create(customer=known, kind="email", value="priya@example.com")
    record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", customer_id=known.pk, source="staff", experience=-2),
    )
    run(org)
    for customer_id in Customer.objects.for_org(org).values_list("pk", flat=True):
        assert not rebuild_narrative(customer_id=customer_id), customer_id


def test_an_import_never_touches_another_organization(org, other_org):
    theirs = CustomerFactory.create(organization=other_org, name="Theirs", notes="")
    IdentifierFactory.create(customer=theirs, kind="pos_id", value="SQ-MARG-1")
    run(org)
    theirs.refresh_from_db()
    assert theirs.notes == ""
    assert Identifier.objects.for_org(other_org).count() == 1
    assert Customer.objects.for_org(org).count() == 5


def test_a_memo_is_appended_unless_it_is_already_a_line_of_the_notes(org, path_kind, tmp_path):
    known = CustomerFactory.create(organization=org, notes="Likes this table\nhi")
    IdentifierFactory.create(customer=known, kind="phone", value="+447400200999")
    other = CustomerFactory.create(organization=org, notes="this")
    IdentifierFactory.create(customer=other, kind="phone", value="+447400200998")
    path = tmp_path / "memos.csv"
    path.write_text("Phone Number,Memo\n07400200999,hi\n07400200998,hi\n", encoding="utf-8")
    run(org, path)
    known.refresh_from_db()
    other.refresh_from_db()
    assert known.notes == "Likes this table\nhi"
    assert other.notes == "this\nhi"  # "hi" is inside "this", but not a line of it


def test_a_dry_run_counts_the_changes_to_known_customers_without_making_them(org, path_kind):
    known = CustomerFactory.create(organization=org, name="", notes="VIP")
    IdentifierFactory.create(customer=known, kind="phone", value="+447400200123")
    dry = run(org, dry_run=True)
    known.refresh_from_db()
    assert (known.name, known.notes, known.marketing_email_consent) == ("", "VIP", "unknown")
    assert list(known.identifiers.values_list("kind", flat=True)) == ["phone"]
    real = run(org)
    for name in ("new", "matched", "identifiers_added", "names_set", "notes_appended",
                 "consent_set", "rejected"):  # fmt: skip
        assert dry.counts[name] == real.counts[name], name
    assert real.counts["names_set"] == real.counts["notes_appended"] == 1


def test_a_memo_that_would_overflow_the_notes_is_not_appended(org, path_kind, tmp_path):
    full = CustomerFactory.create(organization=org, notes="x" * 1990)
    IdentifierFactory.create(customer=full, kind="phone", value="+447400200997")
    path = tmp_path / "long.csv"
    path.write_text("Phone Number,Memo\n07400200997,Twelve chars\n", encoding="utf-8")
    batch = run(org, path)
    full.refresh_from_db()
    assert full.notes == "x" * 1990
    assert batch.counts["notes_appended"] == 0
    assert batch.counts["matched"] == 1


def test_an_unexpected_error_fails_the_batch_and_what_landed_can_be_undone(
    org, monkeypatch, tmp_path
):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    path = tmp_path / "many.csv"
    path.write_text(
        "Phone Number\n" + "".join(f"07400 20{n:04d}\n" for n in range(40)), encoding="utf-8"
    )
    real = services.apply_chunk_pg
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "apply_chunk_pg", failing)
    batch = create_customer_batch(organization=org, path=path, file_name="m", format="square")
    with pytest.raises(RuntimeError):
        import_customers(batch=batch)
    batch.refresh_from_db()
    assert batch.status == ImportStatus.FAILED
    assert Customer.objects.for_org(org).count() == 4  # two chunks landed
    assert undo_import(batch=batch, by_user=None).customers_removed == 4


def test_a_batch_whose_worker_died_runs_again_and_adds_nothing_twice(org, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_ROWS", 3)
    batch = create_customer_batch(organization=org, path=SQUARE, file_name="x", format="square")
    real = services.apply_chunk_pg
    calls = []

    def dies(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit  # the worker is killed: nothing marks the batch
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "apply_chunk_pg", dies)
    with pytest.raises(SystemExit):
        import_customers(batch=batch)
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.RUNNING)  # as it was
    monkeypatch.setattr(services, "apply_chunk_pg", real)

    batch.refresh_from_db()
    again = import_customers(batch=batch)  # the redelivered task: the lock is free

    assert again.status == ImportStatus.DONE
    assert (again.counts["new"], again.counts["matched"], again.counts["rejected"]) == (5, 2, 3)
    assert Customer.objects.for_org(org).count() == 5


def test_a_batch_another_worker_is_running_is_left_alone(org, transactional_db):
    from django.db import connections

    batch = create_customer_batch(organization=org, path=SQUARE, file_name="x", format="square")
    ImportBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.RUNNING)
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [0x1A8, batch.pk])
        batch.refresh_from_db()
        assert import_customers(batch=batch).status == ImportStatus.RUNNING
        assert not Customer.objects.exists()
    finally:
        other.close()


# --- outside a transaction: the part writers, and a till writing during the import ----------


@pytest.fixture
def writer_calls(monkeypatch):
    """Counts the chunks whose parts the writer threads created."""
    from imports.customer_chunks import PartWriters

    calls = []
    real = PartWriters.submit

    def submit(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(PartWriters, "submit", submit)
    return calls


@pytest.fixture(params=["skipped", "kept"])
def key_triggers(request, monkeypatch):
    """The writers as a superuser runs them (the key triggers off, a lock each chunk instead)
    and as a role that may not turn them off."""
    from imports import customer_chunks

    return request.param, record_key_triggers(monkeypatch, customer_chunks, request.param)


@pytest.mark.parametrize("chunk_rows", [2, 3])
def test_the_part_writers_import_the_awkward_file_as_one_connection_does(
    org, transactional_db, writer_calls, monkeypatch, chunk_rows, key_triggers
):
    monkeypatch.setattr(services, "CHUNK_ROWS", chunk_rows)
    mode, skipped = key_triggers
    known = CustomerFactory.create(organization=org, name="", notes="VIP")
    IdentifierFactory.create(customer=known, kind="email", value="zoe@example.com")

    batch = run(org)

    assert writer_calls
    assert batch.status == ImportStatus.DONE, batch.error
    assert skipped and set(skipped) == {mode == "skipped"}
    assert (batch.counts["new"], batch.counts["matched"], batch.counts["rejected"]) == (4, 3, 3)
    assert Customer.objects.for_org(org).count() == 5
    margaret = customer_by(org, "pos_id", "SQ-MARG-1")
    assert set(margaret.identifiers.values_list("kind", "value")) == {
        ("pos_id", "SQ-MARG-1"),
        ("phone", "+447400200123"),
        ("email", "margaret@example.com"),
    }
    known.refresh_from_db()
    assert known.name == "Zoë Ångström-Łukasz"
    assert known.notes == "VIP\nAllergic to nuts — always ask"
    assert set(known.identifiers.values_list("kind", "value")) == {
        ("email", "zoe@example.com"),
        ("pos_id", "SQ-ZOE-3"),
    }
    # The new customers are listed for undo (a row per chunk and writer), not a row each.
    lists = ImportedObject.objects.filter(batch=batch, kind="customer_list")
    listed = sorted(i for row in lists for i in (row.previous or {})["ids"])
    assert len(listed) == 4
    assert not ImportedObject.objects.filter(batch=batch, kind="customer_created").exists()
    created = Customer.objects.for_org(org).exclude(pk=known.pk)
    assert set(created.values_list("pk", flat=True)) == set(listed)

    again = run(org)
    assert again.counts["new"] == 0
    assert not ImportedObject.objects.filter(batch=again).exists()

    assert undo_import(batch=batch, by_user=None).customers_removed == 4
    assert list(Customer.objects.for_org(org).values_list("pk", flat=True)) == [known.pk]
    known.refresh_from_db()
    assert (known.name, known.notes) == ("", "VIP")


def test_a_file_of_one_chunk_is_written_by_one_connection(org, transactional_db, writer_calls):
    batch = run(org)
    assert batch.status == ImportStatus.DONE
    assert batch.counts["new"] == 5
    assert not writer_calls


def test_a_till_that_writes_a_new_persons_phone_mid_import_gets_them_matched(
    org, transactional_db, tmp_path
):
    import threading

    from django.db import connection

    path = tmp_path / "one.csv"
    path.write_text("Phone Number,Email Address\n07400 200999,ana@example.com\n", encoding="utf-8")
    till: list[Customer] = []

    def till_writes() -> None:
        # Another connection, committed: the till identifies Ana by her phone meanwhile.
        customer = CustomerFactory.create(organization=org, name="Ana")
        IdentifierFactory.create(customer=customer, kind="phone", value="+447400200999")
        till.append(customer)
        connection.close()

    def between_match_and_create(execute, sql, params, many, context):
        if sql.lstrip().startswith("WITH new AS") and not till:
            thread = threading.Thread(target=till_writes)
            thread.start()
            thread.join()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(between_match_and_create):
        batch = run(org, path)

    assert batch.status == ImportStatus.DONE, batch.error
    assert (batch.counts["new"], batch.counts["matched"]) == (0, 1)
    ana = customer_by(org, "email", "ana@example.com")
    assert ana == till[0]
    assert Customer.objects.for_org(org).count() == 1
