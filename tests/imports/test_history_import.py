"""Importing history from Square's transactions and item-details exports (imports.history)."""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections, transaction

from accounts.models import Organization, TeamAction, TeamEvent
from accounts.services.locations import archive_location, change_location
from accounts.services.org_settings import update_organization_settings
from cxcore.models import Customer, Episode
from cxcore.privacy import erase_customer
from cxcore.services import (
    EpisodeInput,
    correct_experience,
    narrative_from_episodes,
    rebuild_narrative,
    record_episode,
)
from cxcore.services.customers import update_customer
from imports.history import (
    create_history_batch,
    import_history,
    run_history_batch,
    write_rejected_csv,
)
from imports.history_formats import (
    BadValue,
    FileRefused,
    LocalTime,
    aware,
    parse_date,
    parse_money,
    parse_time,
    zone_named,
)
from imports.locks import ImportRunning
from imports.models import ImportBatch, ImportedObject
from imports.undo import undo_import
from partners.models import Partner
from partners.services import create_partner
from recovery.models import Playbook, RecoveryCase
from recovery.services import create_default_playbooks, create_playbook, merge_customers
from recovery.sweep import sweep_care, sweep_recovery
from tests.factories import (
    CustomerFactory,
    IdentifierFactory,
    LocationFactory,
    OrganizationFactory,
)
from tests.imports.conftest import record_key_triggers

DATA = Path(__file__).parent / "data"
TRANSACTIONS = DATA / "history-transactions.csv"
ITEMS = DATA / "history-items.csv"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


def square_customer(org, pos_id, name):
    customer = CustomerFactory.create(organization=org, name=name)
    IdentifierFactory.create(customer=customer, kind="pos_id", value=pos_id)
    return customer


@pytest.fixture(params=["copy", "plain"])
def both_paths(request, monkeypatch):
    """Runs a test through the COPY path and through the embedded database's plain path
    (which uses only the ORM, so it runs on PostgreSQL too)."""
    if request.param == "plain":
        monkeypatch.setattr("imports.history.uses_copy", lambda: False)
    return request.param


@pytest.fixture
def ann(org):
    return square_customer(org, "SQ-ANN", "Ann Lee")


@pytest.fixture
def ben(org):
    return square_customer(org, "SQ-BEN", "Ben")


def run(org, path, fmt="square-transactions", **kw):
    return import_history(organization=org, path=path, fmt=fmt, now=NOW, **kw)


def assert_narrative_agrees(*customers):
    for customer in customers:
        customer.refresh_from_db()
        fresh = narrative_from_episodes(customer.pk)
        for name, value in fresh.as_dict().items():
            assert getattr(customer, name) == value, name
        # The due times too: a rebuild finds nothing to repair.
        assert rebuild_narrative(customer_id=customer.pk, now=NOW) is False


# --- the pure parts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("$12.50", Decimal("12.50")),
        ("-$3.00", Decimal("-3.00")),
        ("$-3.00", Decimal("-3.00")),
        ("($3.00)", Decimal("-3.00")),
        ("£1,234.50", Decimal("1234.50")),
        ("1.234,50 €", Decimal("1234.50")),
        ("CA$7", Decimal("7.00")),
        ("", None),
    ],
)
def test_money_is_read_with_its_symbol_sign_and_separators(raw, value):
    assert parse_money(raw) == value


@pytest.mark.parametrize("raw", ["£2.x0", "12..5", "$", "1e9", "£999,999,999,999.00"])
def test_bad_money_is_refused(raw):
    with pytest.raises(BadValue):
        parse_money(raw)


def test_dates_read_iso_and_slashed_by_the_countrys_order():
    assert parse_date("2026-03-02", day_first=True) == datetime(2026, 3, 2).date()
    assert parse_date("03/02/2026", day_first=False) == datetime(2026, 3, 2).date()
    assert parse_date("02/03/2026", day_first=True) == datetime(2026, 3, 2).date()
    assert parse_date("25/12/26", day_first=False) == datetime(2026, 12, 25).date()
    for bad in ("2026-02-30", "1999-12-31", "2101-01-01", "tomorrow"):
        with pytest.raises(BadValue):
            parse_date(bad, day_first=True)


def test_times_and_square_zone_names_make_an_aware_time():
    assert parse_time("1:05 PM").hour == 13
    assert parse_time("12:10 am").hour == 0
    assert zone_named("Pacific Time (US & Canada)") == ZoneInfo("America/Los_Angeles")
    assert zone_named("(GMT-05:00) Eastern Time (US & Canada)") == ZoneInfo("America/New_York")
    assert zone_named("Mars/Olympus") is None
    summer = aware(LocalTime(datetime(2026, 7, 1, 9, 0), "London"), default_zone="UTC")
    assert summer.astimezone(UTC).hour == 8  # BST
    assert aware(LocalTime(datetime(2026, 1, 1, 9), ""), default_zone="Asia/Tokyo").utcoffset()
    with pytest.raises(BadValue):
        aware(LocalTime(datetime(2026, 1, 1, 9), "Nowhere"), default_zone="UTC")


# --- transactions ----------------------------------------------------------------------------


def test_payments_become_visits_with_spend_at_the_mapped_location(
    org, main_st, harbour, ann, ben, both_paths
):
    result = run(org, TRANSACTIONS)
    visits = Episode.objects.filter(kind="visit", source="import").order_by("occurred_at")
    assert [(e.external_id, e.customer_id, e.location_id) for e in visits] == [
        ("TX-1001", ann.pk, main_st.pk),
        ("TX-1002", ann.pk, main_st.pk),  # matched by slug
        ("TX-1008", ben.pk, harbour.pk),
    ]
    first = visits[0]
    assert first.occurred_at == datetime(2026, 3, 2, 8, 15, tzinfo=LONDON)
    # The spend rides on a nameless line: a payment alone is nobody's usual order.
    assert first.items == [{"name": "", "quantity": 1, "price": "3.40"}]
    ann.refresh_from_db()
    assert ann.visit_count == 2
    assert ann.total_spend == Decimal("1237.90")
    assert ann.usual_order == ""
    assert result.counts["episodes"] == 4
    assert result.counts["no_customer"] == 1  # the walk-in
    assert result.counts["not_completed"] == 1  # the pending payment
    assert result.counts["repeated_rows"] == 1  # TX-1008 twice in the file
    assert_narrative_agrees(ann, ben)


@pytest.mark.parametrize("key_triggers", ["skipped", "kept"])
def test_a_chunks_episodes_are_the_same_with_the_key_triggers_skipped_or_kept(
    org, main_st, harbour, ann, ben, monkeypatch, key_triggers
):
    """As a superuser runs it (one lock statement a chunk, imports.keys) and as a role that
    may not turn the triggers off."""
    if connection.vendor != "postgresql":
        pytest.skip("the COPY path's")
    from imports import history

    seen = record_key_triggers(monkeypatch, history, key_triggers)
    result = run(org, TRANSACTIONS)
    assert seen and set(seen) == {key_triggers == "skipped"}
    assert result.counts["episodes"] == 4
    episodes = Episode.objects.filter(source="import")
    assert sorted((e.kind, e.customer_id, e.location_id) for e in episodes) == sorted(
        [
            ("visit", ann.pk, main_st.pk),  # TX-1001
            ("visit", ann.pk, main_st.pk),  # TX-1002
            ("incident", ann.pk, main_st.pk),  # TX-1002's refund
            ("visit", ben.pk, harbour.pk),  # TX-1008
        ]
    )
    assert_narrative_agrees(ann, ben)


def test_bad_rows_are_reported_by_line_and_reason_and_do_not_sink_the_file(
    org, main_st, harbour, ann, ben, tmp_path, both_paths
):
    result = run(org, TRANSACTIONS)
    reasons = dict(result.rejections)
    assert sorted(reasons) == [7, 8, 9, 12, 13]
    assert "SQ-NOBODY" in reasons[7] and "not imported" in reasons[7]
    assert "Moon Base" in reasons[8]
    assert reasons[9] == "Total Collected '£2.x0' is not an amount"
    assert "2026-02-30" in reasons[12]
    assert "Mars/Olympus" in reasons[13]
    assert result.counts["rejected"] == 5
    assert result.first_rejections[0] == {"line": 7, "reason": reasons[7]}
    out = tmp_path / "rejected.csv"
    assert write_rejected_csv(TRANSACTIONS, result.rejections, out) == 5
    lines = out.read_text().splitlines()
    assert lines[0].startswith("Line,Reason,Date,Time")
    assert lines[1].startswith("7,") and "TX-1005" in lines[1]


def test_the_rejected_rows_download_does_not_run_as_a_spreadsheet_formula(org, main_st, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(
        "Date,Time,Total Collected,Transaction ID,Event Type,Location,Customer ID\n"
        "2026-03-09,09:00:00,-£3.40,TX-1,Refund,Moon Base,=HYPERLINK(1)\n"
    )
    result = run(org, export)
    out = tmp_path / "rejected.csv"
    write_rejected_csv(export, result.rejections, out)
    assert out.read_text().splitlines()[1].endswith(",'-£3.40,TX-1,Refund,Moon Base,'=HYPERLINK(1)")


def test_a_refund_is_a_candidate_incident_that_opens_no_case_until_staff_confirm_it(
    org, main_st, harbour, ann, ben
):
    create_default_playbooks(organization=org)
    run(org, TRANSACTIONS)
    refund = Episode.objects.get(kind="incident")
    assert refund.customer_id == ann.pk
    assert refund.experience is None and refund.items == []
    assert refund.summary.startswith("Refunded £3.40 in Square: Latte was cold")
    assert refund.external_id == "refund:TX-1002:2026-03-09 09:00:00"
    assert sweep_recovery(now=NOW).opened == 0
    correct_experience(episode=refund, experience=-1, reason="He was upset", now=NOW)
    ann.refresh_from_db()
    assert ann.recovery_due_at is not None
    assert sweep_recovery(now=NOW + timedelta(days=1)).opened == 1


def test_reimporting_the_same_file_adds_nothing(org, main_st, harbour, ann, ben, both_paths):
    run(org, TRANSACTIONS)
    before = list(Episode.objects.values_list("id", "items"))
    again = run(org, TRANSACTIONS)
    assert list(Episode.objects.values_list("id", "items")) == before
    assert again.counts["episodes"] == 0
    assert again.counts["already_imported"] == 4
    assert_narrative_agrees(ann, ben)


def test_a_dry_run_counts_the_same_and_writes_nothing(org, main_st, harbour, ann, ben, both_paths):
    dry = run(org, TRANSACTIONS, dry_run=True)
    assert Episode.objects.count() == 0
    ann.refresh_from_db()
    assert ann.visit_count == 0
    real = run(org, TRANSACTIONS)
    assert dry.counts == real.counts
    assert dry.rejections == real.rejections


def test_a_location_given_takes_every_row(org, main_st, harbour, ann, ben):
    result = run(org, TRANSACTIONS, location=harbour)
    assert set(Episode.objects.values_list("location_id", flat=True)) == {harbour.pk}
    assert 8 not in dict(result.rejections)  # "Moon Base" no longer matters


def test_a_file_with_a_byte_order_mark_and_windows_line_endings(org, main_st):
    zoe = square_customer(org, "SQ-ZOË", "Zoë Ångström")
    result = run(org, DATA / "history-bom-crlf.csv")
    assert result.rejections == []
    visits = Episode.objects.filter(customer=zoe).order_by("occurred_at")
    # Slashed dates read day first in Britain; "1:05 PM" is 13:05.
    assert [e.occurred_at for e in visits] == [
        datetime(2026, 3, 2, 8, 15, tzinfo=LONDON),
        datetime(2026, 3, 3, 13, 5, tzinfo=LONDON),
    ]


def test_a_file_that_is_not_a_transactions_export_is_refused(org, main_st, tmp_path):
    other = tmp_path / "customers.csv"
    other.write_text("First Name,Last Name,Email Address\nAnn,Lee,ann@example.com\n")
    with pytest.raises(
        FileRefused, match=r"Not a Square transactions export: it has no .*Transaction ID"
    ):
        run(org, other)


def test_the_batch_records_what_undo_removes(org, main_st, harbour, ann, ben, both_paths):
    batch = ImportBatch.objects.create(
        organization=org, kind="history", format="square-transactions", file_name="t.csv"
    )
    run(org, TRANSACTIONS, batch=batch)
    # The four episodes as one id range, not a row each (a million-row file writes one row).
    (recorded,) = ImportedObject.objects.filter(batch=batch)
    assert recorded.kind == "episode_range"
    ids = sorted(Episode.objects.values_list("id", flat=True))
    assert len(ids) == 4 and recorded.previous is not None
    assert (recorded.previous["first"], recorded.previous["last"]) == (ids[0], ids[-1])


def test_progress_is_reported_as_rows_are_read(org, main_st, harbour, ann, ben):
    seen: list[int] = []
    run(org, TRANSACTIONS, progress=seen.append)
    assert seen and seen[-1] == 12


def test_a_square_id_that_arrives_mid_file_counts_the_same_everywhere(
    org, main_st, harbour, ann, monkeypatch
):
    """Each row's customer is looked up once, as its chunk is written: a row read before its
    customer arrived is rejected, never counted as imported already."""
    monkeypatch.setattr("imports.history.CHUNK_ROWS", 5)  # staged lines 2, 3, 4, 7, 10 | 11
    ben = CustomerFactory.create(organization=org, name="Ben")

    def after_a_chunk(read: int) -> None:  # a customers import commits Ben meanwhile
        if not ben.identifiers.exists():
            IdentifierFactory.create(customer=ben, kind="pos_id", value="SQ-BEN")

    result = run(org, TRANSACTIONS, progress=after_a_chunk)

    # Line 10 (TX-1008) came before Ben: rejected; line 11 (TX-1008 again) after: imported.
    assert [line for line, _ in result.rejections] == [7, 8, 9, 10, 12, 13]
    assert "SQ-BEN" in dict(result.rejections)[10]
    assert (result.counts["episodes"], result.counts["already_imported"]) == (4, 0)
    assert result.counts["repeated_rows"] == 0  # not line 10, which was never Ben's
    assert list(Episode.objects.filter(customer=ben).values_list("external_id", flat=True)) == [
        "TX-1008"
    ]


@pytest.mark.django_db(transaction=True)
def test_a_batchs_progress_shows_to_the_page_while_its_transaction_runs(monkeypatch, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the embedded database's import is not chunked")
    monkeypatch.setattr("imports.history.CHUNK_ROWS", 3)
    org = OrganizationFactory.create(country="GB")
    LocationFactory.create(organization=org, name="Main St", slug="main-st")
    LocationFactory.create(organization=org, name="Harbour Rd", slug="harbour-rd")
    square_customer(org, "SQ-ANN", "Ann Lee")
    square_customer(org, "SQ-BEN", "Ben")
    path = copied(TRANSACTIONS, tmp_path)
    batch = create_history_batch(organization=org, path=path, file_name=path.name,
                                 fmt="square-transactions")  # fmt: skip
    page = connections.create_connection("default")  # what the progress bar's request sees
    seen: list[tuple[int, int]] = []

    def watched(done: int) -> None:
        with page.cursor() as cur:
            cur.execute("SELECT rows_done FROM imports_importbatch WHERE id = %s", [batch.pk])
            seen.append((done, cur.fetchone()[0]))
            cur.execute("SELECT count(*) FROM cxcore_episode WHERE organization_id = %s", [org.pk])
            assert cur.fetchone()[0] == 0  # nothing of the import shows before its commit

    try:
        run_history_batch(batch=batch, progress=watched, now=NOW)
    finally:
        page.close()
    assert len(seen) >= 3 and all(done == shown for done, shown in seen)
    assert seen[-1][0] == 12 and Episode.objects.filter(organization=org).count() == 4


# --- items -----------------------------------------------------------------------------------


def test_items_after_transactions_fill_the_episode_and_make_the_usual_order(
    org, main_st, harbour, ann, ben, both_paths
):
    run(org, TRANSACTIONS)
    result = run(org, ITEMS, fmt="square-items")
    second = Episode.objects.get(external_id="TX-1002")
    assert second.items == [
        {"name": "Almond-milk latte", "quantity": 2, "price": "3.40"},
        {"name": "Chicken salad (Large)", "quantity": 1, "price": "1227.70"},
    ]
    assert result.counts["items_set"] == 2  # TX-1001 and TX-1002
    assert result.counts["episodes"] == 1  # TX-2001: items first, no payment imported
    assert result.counts["refund_line"] == 1
    assert dict(result.rejections) == {8: "Gross Sales '£3.x0' is not an amount"}
    ann.refresh_from_db()
    assert ann.usual_order == "Almond-milk latte"
    assert ann.visit_count == 3
    assert_narrative_agrees(ann, ben)
    again = run(org, ITEMS, fmt="square-items")
    assert (again.counts["items_set"], again.counts["episodes"]) == (0, 0)


def test_items_before_transactions_give_the_same_episodes(
    org, main_st, harbour, ann, ben, both_paths
):
    run(org, ITEMS, fmt="square-items")
    run(org, TRANSACTIONS)
    second = Episode.objects.get(external_id="TX-1002")
    assert [item["name"] for item in second.items] == ["Almond-milk latte", "Chicken salad (Large)"]
    assert Episode.objects.filter(external_id="TX-1001").count() == 1
    ann.refresh_from_db()
    assert ann.usual_order == "Almond-milk latte"
    assert_narrative_agrees(ann, ben)


def test_items_set_on_an_episode_are_recorded_with_what_was_there(org, main_st, harbour, ann, ben):
    run(org, TRANSACTIONS)
    batch = ImportBatch.objects.create(
        organization=org, kind="history", format="square-items", file_name="i.csv"
    )
    run(org, ITEMS, fmt="square-items", batch=batch)
    first = Episode.objects.get(external_id="TX-1001")
    row = ImportedObject.objects.get(batch=batch, kind="items_set", object_id=first.pk)
    assert row.previous == {"items": [{"name": "", "quantity": 1, "price": "3.40"}]}


# --- the narrative and the sweep -------------------------------------------------------------


def test_a_regular_already_late_gets_a_care_case_at_the_next_sweep(org, main_st, tmp_path):
    create_default_playbooks(organization=org)
    grace = square_customer(org, "SQ-GRACE", "Grace Hopper")
    start = datetime(2026, 1, 5, 8, 0)
    rows = ["Date,Time,Time Zone,Total Collected,Transaction ID,Location,Customer ID"]
    for week in range(8):
        day = start + timedelta(weeks=week)
        rows.append(f"{day:%Y-%m-%d},{day:%H:%M:%S},London,£3.20,TX-G{week},Main St,SQ-GRACE")
    path = tmp_path / "export.csv"
    path.write_text("\n".join(rows) + "\n")
    run(org, path)
    grace.refresh_from_db()
    assert grace.visit_count == 8
    assert grace.care_due_at is not None and grace.care_due_at < NOW
    assert_narrative_agrees(grace)
    assert sweep_care(now=NOW).opened == 1
    assert RecoveryCase.objects.get().customer_id == grace.pk
    assert Customer.objects.get(pk=grace.pk).care_case_open


# --- the batch and the command ---------------------------------------------------------------


def test_a_batch_runs_once_records_the_team_history_and_its_rejected_rows(
    org, main_st, harbour, ann, ben, tmp_path, settings
):
    settings.IMPORT_UPLOAD_DIR = str(tmp_path / "imports")
    upload = tmp_path / "export-20260401-101500.csv"
    upload.write_bytes(TRANSACTIONS.read_bytes())
    batch = create_history_batch(
        organization=org, path=upload, file_name=upload.name, fmt="square-transactions"
    )
    assert batch.rows_total == 12
    batch = run_history_batch(batch=batch, now=NOW)
    assert (batch.status, batch.rows_done, batch.counts["episodes"]) == ("done", 12, 4)
    assert batch.first_rejections[0]["line"] == 7
    assert Path(batch.rejected_path).read_text().count("\n") == 6  # header + 5 rows
    # Under IMPORT_UPLOAD_DIR, never beside a file the command was given (the operator's).
    assert Path(batch.rejected_path).parent == tmp_path / "imports"
    assert list(tmp_path.glob("*.rejected.csv")) == []
    event = TeamEvent.objects.get(organization=org, action=TeamAction.IMPORTED)
    assert event.detail["batch"] == batch.pk and event.detail["episodes"] == 4
    assert run_history_batch(batch=batch, now=NOW).counts == batch.counts  # a repeat runs nothing
    assert Episode.objects.count() == 4


def test_a_batch_whose_worker_died_runs_again_when_its_task_comes_back(
    org, main_st, harbour, ann, ben, tmp_path
):
    """Left "running" with no one holding its lock (the lock went with the dead worker's
    connection): the redelivered task runs it from the top, which adds nothing twice."""
    upload = tmp_path / "export.csv"
    upload.write_bytes(TRANSACTIONS.read_bytes())
    batch = create_history_batch(
        organization=org, path=upload, file_name=upload.name, fmt="square-transactions"
    )
    ImportBatch.objects.filter(pk=batch.pk).update(status="running", started_at=NOW)
    batch = run_history_batch(batch=batch, now=NOW)
    assert (batch.status, batch.counts["episodes"]) == ("done", 4)
    assert Episode.objects.count() == 4


def test_a_batch_of_a_file_that_is_not_the_format_fails_with_its_reason(org, main_st, tmp_path):
    upload = tmp_path / "customers.csv"
    upload.write_text("First Name,Email Address\nAnn,ann@example.com\n")
    batch = create_history_batch(
        organization=org, path=upload, file_name=upload.name, fmt="square-items"
    )
    batch = run_history_batch(batch=batch, now=NOW)
    assert batch.status == "failed"
    assert batch.error.startswith("Not a Square item details export")


def copied(path, tmp_path):
    """The file in a temp directory: a batch writes its rejected rows beside it."""
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    return copy


def test_the_command_imports_with_a_summary(org, main_st, harbour, ann, ben, tmp_path):
    out, err = StringIO(), StringIO()
    call_command(
        "import_history", str(copied(TRANSACTIONS, tmp_path)), "--org", org.slug,
        "--format", "square-transactions", stdout=out, stderr=err,
    )  # fmt: skip
    assert "episodes created" in out.getvalue()
    assert "line 7: Customer ID 'SQ-NOBODY' is not imported" in out.getvalue()
    assert f"rejected rows, with their reasons: {tmp_path / 'imports'}" in out.getvalue()
    assert Episode.objects.count() == 4
    assert ImportBatch.objects.get().kind == "history"


def test_the_command_dry_run_writes_nothing(org, main_st, harbour, ann, ben, tmp_path):
    out = StringIO()
    call_command(
        "import_history", str(copied(TRANSACTIONS, tmp_path)), "--org", org.slug,
        "--format", "square-transactions", "--dry-run", stdout=out, stderr=StringIO(),
    )  # fmt: skip
    assert out.getvalue().startswith("Dry run: nothing was written.")
    assert Episode.objects.count() == 0
    assert not TeamEvent.objects.filter(action=TeamAction.IMPORTED).exists()


def test_the_command_refuses_an_unknown_organization_or_location(org, main_st):
    with pytest.raises(CommandError, match="No organization"):
        call_command("import_history", str(TRANSACTIONS), "--org", "nope", "--format",
                     "square-items")  # fmt: skip
    with pytest.raises(CommandError, match="No location"):
        call_command("import_history", str(TRANSACTIONS), "--org", org.slug, "--format",
                     "square-items", "--location", "moon")  # fmt: skip


def test_history_folds_into_a_customer_who_already_has_a_story(org, main_st, harbour, ann, ben):
    # Live episodes before the import (a complaint, a visit with items): the import's episodes
    # are folded in and the state still equals a rebuild from all of them.
    record_episode(
        organization=org,
        data=EpisodeInput(
            kind="complaint", customer_id=ann.pk, occurred_at=datetime(2026, 3, 5, tzinfo=UTC),
            summary="Waited forever", experience=-2, location=main_st,
        ),
        now=NOW,
    )  # fmt: skip
    record_episode(
        organization=org,
        data=EpisodeInput(
            kind="visit", customer_id=ann.pk, occurred_at=datetime(2026, 4, 1, tzinfo=UTC),
            items=[{"name": "Almond-milk latte", "quantity": 1, "price": "3.40"}],
        ),
        now=NOW,
    )  # fmt: skip
    run(org, TRANSACTIONS)
    run(org, ITEMS, fmt="square-items")
    ann.refresh_from_db()
    assert ann.last_experience == -2 and ann.visit_count == 4
    assert ann.usual_order == "Almond-milk latte"
    assert_narrative_agrees(ann, ben)


def test_an_erased_customers_history_is_not_imported(org, main_st, harbour, ann, ben):
    erase_customer(customer=ann, reason="Asked to be forgotten", now=NOW)
    result = run(org, TRANSACTIONS)
    assert not Episode.objects.filter(customer=ann).exists()
    assert "SQ-ANN" in dict(result.rejections)[2]


def test_another_organizations_customer_with_the_same_square_id_is_never_touched(
    org, main_st, harbour, ann, ben, other_org, other_location
):
    stranger = square_customer(other_org, "SQ-ANN", "Not Ann")
    run(org, TRANSACTIONS)
    assert not Episode.objects.filter(customer=stranger).exists()
    assert Episode.objects.filter(customer=ann).count() == 3
    stranger.refresh_from_db()
    assert stranger.visit_count == 0
    # And into the other organization, our locations are unknown there.
    result = import_history(organization=other_org, path=TRANSACTIONS, fmt="square-transactions",
                            now=NOW)  # fmt: skip
    assert "Main St" in dict(result.rejections)[2]
    assert not Episode.objects.filter(organization=other_org).exists()


@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_file_at_once_write_it_once():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite takes one writer at a time: the second waits or fails, by design")
    org = OrganizationFactory.create(country="GB")
    LocationFactory.create(organization=org, name="Main St", slug="main-st")
    LocationFactory.create(organization=org, name="Harbour Rd", slug="harbour-rd")
    ann = square_customer(org, "SQ-ANN", "Ann Lee")
    ben = square_customer(org, "SQ-BEN", "Ben")
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait(timeout=10)
            run(org, TRANSACTIONS)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Episode.objects.filter(organization=org).count() == 4
    assert_narrative_agrees(ann, ben)


@pytest.mark.django_db(transaction=True)
def test_an_api_write_of_the_same_external_id_mid_import_is_skipped_not_fatal():
    """The import meets a row another writer committed while it ran: it waits for that
    writer, then skips the one episode it already has."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite takes one writer at a time")
    org = OrganizationFactory.create(country="GB")
    main = LocationFactory.create(organization=org, name="Main St", slug="main-st")
    LocationFactory.create(organization=org, name="Harbour Rd", slug="harbour-rd")
    ann = square_customer(org, "SQ-ANN", "Ann Lee")
    ben = square_customer(org, "SQ-BEN", "Ben")
    other = connections.create_connection("default")
    results: list = []
    try:
        with other.cursor() as cur:  # an API client's write, uncommitted: the import waits on it
            other.set_autocommit(False)
            cur.execute(
                "INSERT INTO cxcore_episode (organization_id, customer_id, location_id, kind, "
                "occurred_at, recorded_at, source, external_id, summary, touchpoints, items, "
                "experience_source, rating_scale) VALUES (%s, %s, %s, 'visit', now(), now(), "
                "'import', 'TX-1001', '', '[]', '[]', '', '')",
                [org.pk, ann.pk, main.pk],
            )
            cur.execute("SELECT pg_backend_pid()")
            (writer,) = cur.fetchone()

        def one() -> None:
            try:
                results.append(run(org, TRANSACTIONS))
            except BaseException as exc:  # reported below, in the test's thread
                results.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=one)
        thread.start()
        watcher = connections.create_connection("default")
        with watcher.cursor() as watch:
            for _ in range(200):  # until the import's insert waits on the writer's row
                watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    [writer],
                )
                if watch.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the import never reached the writer's row")
        watcher.close()
        other.commit()
        thread.join(timeout=60)
    finally:
        other.close()
    (result,) = results
    assert not isinstance(result, BaseException), result
    assert result.counts["already_imported"] == 1
    assert Episode.objects.filter(organization=org, external_id="TX-1001").count() == 1
    assert Episode.objects.filter(organization=org).count() == 4
    rebuild_narrative(customer_id=ann.pk)  # the API's row came in without its narrative fold
    assert_narrative_agrees(ann, ben)


@pytest.mark.django_db(transaction=True)
def test_the_tills_and_owners_edits_do_not_wait_for_an_import_in_progress():
    """The import checks each chunk's foreign keys as it writes it, so its key-share locks on
    the customers, the locations and the organization last until its commit: a card edit, a
    settings save, a location renamed or archived, a playbook or a partner saved meanwhile go
    through at once (each locks FOR NO KEY UPDATE), not after the whole file. What would
    delete a customer the import holds (a merge) is refused at once, not kept waiting."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    org = OrganizationFactory.create(country="GB")
    main = LocationFactory.create(organization=org, name="Main St", slug="main-st")
    LocationFactory.create(organization=org, name="Harbour Rd", slug="harbour-rd")
    quay = LocationFactory.create(organization=org, name="Old Quay", slug="old-quay")
    ann = square_customer(org, "SQ-ANN", "Ann Lee")
    ben = square_customer(org, "SQ-BEN", "Ben")
    failed: dict[str, BaseException] = {}
    seen: dict[str, object] = {}

    def attempt(name, edit) -> None:
        try:
            edit()
        except BaseException as exc:  # reported below, in the test's thread
            failed[name] = exc

    def edits() -> None:
        try:
            with connection.cursor() as cur:
                cur.execute("SET lock_timeout = '3s'")  # a wait fails the test, not hangs it
                # The import does hold Ann's row: a FOR UPDATE (a delete's lock) cannot have it.
                try:
                    with transaction.atomic():
                        cur.execute(
                            "SELECT 1 FROM cxcore_customer WHERE id = %s FOR UPDATE NOWAIT",
                            [ann.pk],
                        )
                    seen["ann_for_update"] = "granted"
                except OperationalError:
                    seen["ann_for_update"] = "refused"
            attempt("card", lambda: update_customer(customer=ann, notes="Oat milk"))
            attempt(
                "settings",
                lambda: update_organization_settings(
                    organization=Organization.objects.get(pk=org.pk),
                    actor=None,
                    values={"recovery_grace_period": timedelta(hours=30)},
                ),
            )
            attempt(
                "rename",
                lambda: change_location(
                    location=main, actor=None, name="Main Street", time_zone=main.time_zone
                ),
            )
            attempt("archive", lambda: archive_location(location=quay, actor=None))
            attempt("playbook", lambda: create_playbook(organization=org, name="Cold coffee"))
            attempt(
                "partner",
                lambda: create_partner(
                    organization=org,
                    fields={"name": "Swift Valet", "touchpoints": ["parking_valet"]},
                ),
            )
            try:
                merge_customers(into=ann, duplicate=ben)
            except ImportRunning as refused:
                seen["merge"] = refused.code
            seen["episodes"] = Episode.objects.filter(organization=org).count()
        except BaseException as exc:
            failed["thread"] = exc
        finally:
            connection.close()

    def progress(rows: int) -> None:
        if not seen and not failed:
            thread = threading.Thread(target=edits)
            thread.start()
            thread.join(timeout=60)

    result = run(org, TRANSACTIONS, progress=progress)

    assert failed == {}
    # They ran while the import's episodes were not yet committed and its locks were held.
    assert seen == {"ann_for_update": "refused", "merge": "import_running", "episodes": 0}
    assert result.counts["episodes"] == 4
    ann.refresh_from_db()
    assert ann.notes == "Oat milk"
    main.refresh_from_db()
    assert main.name == "Main Street"
    quay.refresh_from_db()
    assert not quay.is_active
    org.refresh_from_db()
    assert org.recovery_grace_period == timedelta(hours=30)
    assert Playbook.objects.filter(organization=org, name="Cold coffee").exists()
    assert Partner.objects.filter(organization=org, name="Swift Valet").exists()
    assert Customer.objects.filter(pk=ben.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_customer_found_once_stays_locked_until_the_commit(monkeypatch, tmp_path):
    """Each Square id is looked up once and its customer locked FOR KEY SHARE as it is found:
    later chunks point at the customer without asking again (and with the foreign-key
    triggers off), so that one lock must hold to the commit, or a delete meanwhile would
    leave the import's episodes pointing at nobody."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    from imports import history

    monkeypatch.setattr(history, "CHUNK_ROWS", 2)
    org = OrganizationFactory.create(country="GB")
    LocationFactory.create(organization=org, name="Main St", slug="main-st")
    ann = square_customer(org, "SQ-ANN", "Ann Lee")
    export = tmp_path / "transactions.csv"
    export.write_text(
        "Date,Time,Total Collected,Transaction ID,Event Type,Location,Customer ID\n"
        + "".join(
            f"2026-03-09,09:{n:02d}:00,£3.40,TX-{n},Payment,Main St,SQ-ANN\n" for n in range(40)
        )
    )
    asked: list[set[str]] = []
    look_up = history._Customers.look_up

    def recorded(self, cursor, pos_ids):
        asked.append(set(pos_ids))
        return look_up(self, cursor, pos_ids)

    monkeypatch.setattr(history._Customers, "look_up", recorded)
    held: list[str] = []

    def delete_lock() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(
                    "SELECT 1 FROM cxcore_customer WHERE id = %s FOR UPDATE NOWAIT", [ann.pk]
                )
            held.append("granted")
        except OperationalError:
            held.append("refused")
        finally:
            connection.close()

    def progress(rows: int) -> None:
        thread = threading.Thread(target=delete_lock)
        thread.start()
        thread.join(timeout=30)

    result = run(org, export, progress=progress)

    assert result.counts["episodes"] == 40
    assert held == ["refused"] * 21  # after each of the 20 chunks, and at the file's end
    # Asked in the first chunks only: the reader formats at most two chunks ahead of the first
    # answer; every later chunk knew Ann already.
    assert 1 <= sum("SQ-ANN" in ids for ids in asked) <= 3
    delete_lock()
    assert held[-1] == "granted"  # and released at the commit


@pytest.mark.django_db(transaction=True)
def test_a_merge_goes_through_once_the_import_has_finished():
    """The refusal above is only while an import runs: once it has committed, a merge on
    another connection (the lock is the import's, not this one's) goes through."""
    org = OrganizationFactory.create(country="GB")
    LocationFactory.create(organization=org, name="Main St", slug="main-st")
    LocationFactory.create(organization=org, name="Harbour Rd", slug="harbour-rd")
    ann = square_customer(org, "SQ-ANN", "Ann Lee")
    ben = square_customer(org, "SQ-BEN", "Ben")
    run(org, TRANSACTIONS)
    failed: list[BaseException] = []

    def merge() -> None:
        try:
            merge_customers(into=ann, duplicate=ben)
        except BaseException as exc:  # reported below, in the test's thread
            failed.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=merge)
    thread.start()
    thread.join(timeout=30)
    assert failed == []
    assert not Customer.objects.filter(pk=ben.pk).exists()
    assert Episode.objects.filter(customer=ann).count() == 4


# --- undo (imports.undo) ---------------------------------------------------------------------


def history_batch(org, path, tmp_path, fmt="square-transactions"):
    path = copied(path, tmp_path)
    batch = create_history_batch(organization=org, path=path, file_name=path.name, fmt=fmt)
    return run_history_batch(batch=batch, now=NOW)


def test_undoing_a_history_batch_removes_its_episodes_and_the_narratives_follow(
    org, main_st, harbour, ann, ben, tmp_path
):
    batch = history_batch(org, TRANSACTIONS, tmp_path)
    assert Episode.objects.count() == 4
    outcome = undo_import(batch=batch, by_user=None, now=NOW + timedelta(days=1))
    assert outcome.episodes_removed == 4
    assert not Episode.objects.exists()
    ann.refresh_from_db()
    assert (ann.visit_count, ann.total_spend, ann.last_visit_at) == (0, 0, None)
    assert_narrative_agrees(ann, ben)


def test_undoing_one_of_two_batches_started_at_the_same_instant_leaves_the_others_episodes(
    org, main_st, harbour, ann, ben, tmp_path, both_paths
):
    first = history_batch(org, TRANSACTIONS, tmp_path)
    later = tmp_path / "later.csv"
    write_transactions(
        later,
        [
            (datetime(2026, 4, 1, 9, tzinfo=UTC), "£2.00", "TX-LATER-1", "Payment", "SQ-ANN"),
            (datetime(2026, 4, 2, 9, tzinfo=UTC), "£3.00", "TX-LATER-2", "Payment", "SQ-BEN"),
        ],
    )
    second = history_batch(org, later, tmp_path)  # the same `now` as the first: NOW
    # An episode an API client logged with source "import" between the two, at the same
    # instant: no batch created it, so no undo removes it.
    theirs = record_episode(
        organization=org,
        data=EpisodeInput(kind="visit", customer_id=ann.pk, source="import",
                          external_id="API-1", occurred_at=NOW - timedelta(days=1)),
    ).episode  # fmt: skip
    Episode.objects.filter(pk=theirs.pk).update(recorded_at=NOW)

    outcome = undo_import(batch=first, by_user=None, now=NOW + timedelta(days=1))

    assert outcome.episodes_removed == 4
    assert set(Episode.objects.values_list("external_id", flat=True)) == {
        "TX-LATER-1",
        "TX-LATER-2",
        "API-1",
    }
    outcome = undo_import(batch=second, by_user=None, now=NOW + timedelta(days=1))
    assert outcome.episodes_removed == 2
    assert list(Episode.objects.values_list("external_id", flat=True)) == ["API-1"]
    assert_narrative_agrees(ann, ben)


def test_undoing_an_items_batch_gives_the_episodes_their_items_back(
    org, main_st, harbour, ann, ben, tmp_path
):
    history_batch(org, TRANSACTIONS, tmp_path)
    items = history_batch(org, ITEMS, tmp_path, fmt="square-items")
    undo_import(batch=items, by_user=None, now=NOW + timedelta(days=1))
    first = Episode.objects.get(external_id="TX-1001")
    assert first.items == [{"name": "", "quantity": 1, "price": "3.40"}]
    assert not Episode.objects.filter(external_id="TX-2001").exists()
    assert_narrative_agrees(ann, ben)


def test_line_numbers_count_the_files_lines_across_a_quoted_line_break(org, main_st, ann, tmp_path):
    export = tmp_path / "export.csv"
    export.write_text(
        "Date,Time,Total Collected,Transaction ID,Event Type,Customer ID,Refund Reason\n"
        '2026-03-09,09:00:00,-£3.40,TX-1,Refund,SQ-ANN,"Cold latte,\nand rude"\n'
        "2026-03-10,09:00:00,£x,TX-2,Payment,SQ-ANN,\n"
    )
    result = run(org, export)
    assert result.rejections == [(4, "Total Collected '£x' is not an amount")]
    refund = Episode.objects.get(kind="incident")
    assert "Cold latte,\nand rude" in refund.summary
    assert refund.summary.startswith("Refunded £3.40 in Square")


# --- the set-based fold (imports.history_fold) -----------------------------------------------


def write_transactions(path, rows):
    header = "Date,Time,Time Zone,Total Collected,Transaction ID,Event Type,Location,Customer ID"
    lines = [header] + [
        f"{at:%Y-%m-%d},{at:%H:%M:%S},UTC,{money},{tx},{event},Main St,{pos_id}"
        for at, money, tx, event, pos_id in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def write_items(path, rows):
    header = "Date,Time,Time Zone,Item,Qty,Gross Sales,Transaction ID,Location,Customer ID"
    lines = [header] + [
        f"{at:%Y-%m-%d},{at:%H:%M:%S},UTC,{item},{qty},{money},{tx},Main St,{pos_id}"
        for at, item, qty, money, tx, pos_id in rows
    ]
    path.write_text("\n".join(lines) + "\n")


def test_many_customers_with_many_episodes_out_of_order_fold_to_what_a_rebuild_gives(
    org, main_st, tmp_path
):
    import random

    rng = random.Random(8)
    customers = [square_customer(org, f"SQ-{n}", f"Guest {n}") for n in range(40)]
    start = datetime(2025, 6, 1, 8, tzinfo=UTC)
    # Stories before the import: usual orders, a complaint not followed up, a lapsed regular
    # with a care case open, a recovery case open.
    for n, customer in enumerate(customers[:20]):
        for visit in range(n % 6):
            record_episode(
                organization=org,
                data=EpisodeInput(
                    kind="visit", customer_id=customer.pk, location=main_st,
                    occurred_at=start + timedelta(days=40 * visit + n),
                    items=[{"name": "Flat white" if visit % 3 else "Scone", "quantity": 1,
                            "price": "3.10"}],
                ),
                now=NOW,
            )  # fmt: skip
        if n % 5 == 1:  # a visit later than any the file holds
            record_episode(
                organization=org,
                data=EpisodeInput(kind="visit", customer_id=customer.pk, location=main_st,
                                  occurred_at=start + timedelta(days=355)),
                now=NOW,
            )  # fmt: skip
        if n % 4 == 0:
            record_episode(
                organization=org,
                data=EpisodeInput(
                    kind="complaint", customer_id=customer.pk, location=main_st,
                    occurred_at=start + timedelta(days=100 + n), summary="Cold", experience=-1,
                ),
                now=NOW,
            )  # fmt: skip
    Customer.objects.filter(pk=customers[5].pk).update(
        care_case_open=True, care_handled_until=start + timedelta(days=170)
    )
    Customer.objects.filter(pk=customers[8].pk).update(
        recovery_case_open=True, recovery_handled_until=start + timedelta(days=108)
    )
    Customer.objects.filter(pk=customers[12].pk).update(care_handled_until=start)
    for customer in customers:
        rebuild_narrative(customer_id=customer.pk, now=NOW)  # the marks' due times
    # Ten transactions each on average, shuffled across the file; refunds, zero payments
    # and repeated rows among them; some customers get none.
    rows = []
    for tx in range(400):
        pos_id = f"SQ-{rng.randrange(36)}"
        at = start + timedelta(days=rng.uniform(0, 330))
        pence = rng.choice([0, 180, 340, 999, 2400])
        refund = tx % 9 == 4
        money = f"{'-' if refund else ''}£{pence // 100}.{pence % 100:02d}"
        rows.append((at, money, f"TX-{tx}", "Refund" if refund else "Payment", pos_id))
    rows += rng.sample(rows, 15)
    rng.shuffle(rows)
    write_transactions(tmp_path / "t.csv", rows)
    result = run(org, tmp_path / "t.csv")
    assert result.counts["episodes"] == 400 and result.counts["repeated_rows"] == 15
    assert_narrative_agrees(*customers)
    # Items for some of those transactions (their episodes are rebuilt) and for new ones
    # (named items: the usual order moves).
    items: list[tuple[datetime, str, int, str, str, str]] = []
    for at, _money, tx_id, event, pos_id in rows[:120]:
        if event == "Payment":
            items.append((at, rng.choice(["Oat latte", "Scone"]), 1, "£3.40", tx_id, pos_id))
    for tx in range(400, 520):
        at = start + timedelta(days=rng.uniform(300, 360))
        pos_id = f"SQ-{rng.randrange(40)}"
        for item in rng.sample(["Oat latte", "Scone", "Tea", "Flat white"], 2):
            items.append((at, item, rng.choice([1, 2]), "£5.00", f"TX-{tx}", pos_id))
    rng.shuffle(items)
    write_items(tmp_path / "i.csv", items)
    result = run(org, tmp_path / "i.csv", fmt="square-items")
    assert result.counts["episodes"] == 120 and result.counts["items_set"] > 0
    assert_narrative_agrees(*customers)
    assert len({c.usual_order for c in Customer.objects.filter(organization=org)} - {""}) >= 2


def test_new_nameless_lines_push_a_usual_order_out_of_the_window(org, main_st, ann, tmp_path):
    for day in range(3):
        record_episode(
            organization=org,
            data=EpisodeInput(
                kind="visit", customer_id=ann.pk, location=main_st,
                occurred_at=datetime(2026, 1, 1 + day, tzinfo=UTC),
                items=[{"name": "Almond-milk latte", "quantity": 1, "price": "3.40"}],
            ),
            now=NOW,
        )  # fmt: skip
    ann.refresh_from_db()
    assert ann.usual_order == "Almond-milk latte"
    rows = [
        (datetime(2026, 2, 1 + n, 9, tzinfo=UTC), "£2.00", f"TX-{n}", "Payment", "SQ-ANN")
        for n in range(10)
    ]
    write_transactions(tmp_path / "t.csv", rows)
    run(org, tmp_path / "t.csv")
    ann.refresh_from_db()
    assert ann.usual_order == "" and ann.visit_count == 13
    assert_narrative_agrees(ann)


def test_a_spend_at_the_columns_limit_stays_at_it(org, main_st, ann, tmp_path):
    Customer.objects.filter(pk=ann.pk).update(total_spend=Decimal("9999999999.99"))
    rows = [(datetime(2026, 2, 1, 9, tzinfo=UTC), "£2.00", "TX-1", "Payment", "SQ-ANN")]
    write_transactions(tmp_path / "t.csv", rows)
    run(org, tmp_path / "t.csv")
    ann.refresh_from_db()
    assert ann.total_spend == Decimal("9999999999.99") and ann.episode_count == 1


@pytest.mark.parametrize("qty", ["NaN", "Infinity", "-Infinity", "1e10", "sNaN"])
def test_a_quantity_that_is_no_quantity_rejects_its_row_alone(org, main_st, tmp_path, qty):
    """Decimal reads these; the row is refused with its reason and the file goes on."""
    customer = square_customer(org, "SQ-Q", "Quinn")
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    items = tmp_path / "items.csv"
    write_items(items, [(at, "Latte", qty, "£3.40", "TX-Q1", "SQ-Q"),
                        (at, "Scone", "1", "£2.10", "TX-Q1", "SQ-Q")])  # fmt: skip
    result = run(org, items, fmt="square-items")
    assert [line for line, _ in result.rejections] == [2]
    assert "Qty" in result.rejections[0][1]
    (visit,) = Episode.objects.filter(customer=customer)
    assert [item["name"] for item in visit.items] == ["Scone"]
