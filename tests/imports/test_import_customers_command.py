"""`manage.py import_customers`: thin over imports.services, a progress bar on stderr, a
summary on stdout, and a message naming the argument when one is wrong."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from cxcore.models import Customer
from imports.models import ImportBatch

SQUARE = Path(__file__).parent / "data" / "square-customers-bom-crlf.csv"


@pytest.fixture(autouse=True)
def _upload_dir(settings, tmp_path):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "imports"


def command(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_customers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_imports_and_summarises(org, capsys):
    out, _ = command(str(SQUARE), "--org", org.slug)
    assert "Imported (batch" in out
    assert "5 new customers" in out
    assert "line 7:" in out
    assert "Rejected rows:" in out
    assert "rows" in capsys.readouterr().err  # tqdm writes to the process's stderr
    assert Customer.objects.for_org(org).count() == 5


def test_a_dry_run_writes_nothing(org):
    out, _ = command(str(SQUARE), "--org", org.slug, "--dry-run")
    assert out.startswith("Dry run: nothing was written.")
    assert "5 new customers" in out
    assert not Customer.objects.exists()


def test_a_generic_file_with_a_map(org, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("Who,Mobile\nAna,07400 200321\n", encoding="utf-8")
    out, _ = command(
        str(path),
        "--org",
        org.slug,
        "--format",
        "generic",
        "--map",
        "Who=name",
        "--map",
        "Mobile=phone",
    )
    assert "1 new customers" in out
    assert Customer.objects.get().name == "Ana"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--org", "nobody"], "--org"),
        (["--org", "corner-cup", "--location", "nowhere"], "--location"),
        (["--org", "corner-cup", "--format", "generic"], "--map"),
        (["--org", "corner-cup", "--map", "Phone Number=phone"], "--map"),
        (["--org", "corner-cup", "--format", "generic", "--map", "Phone Number=mobile"], "--map"),
    ],
)
def test_a_bad_argument_is_named(org, args, named):
    with pytest.raises(CommandError) as caught:
        command(str(SQUARE), *args)
    assert named in str(caught.value)
    assert not ImportBatch.objects.exists()


def test_a_missing_file_is_named(org, tmp_path):
    with pytest.raises(CommandError) as caught:
        command(str(tmp_path / "nope.csv"), "--org", org.slug)
    assert "FILE" in str(caught.value)
