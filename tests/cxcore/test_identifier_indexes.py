"""Identification reads cxcore_identifier by (organization, kind, value) on every write and every
import row. A second index on the organization alone let PostgreSQL's planner, for an
organization young at the last ANALYZE (a new cafe's first import), probe by the organization
and filter every identifier it has per lookup: the bench's million-row import into a new
organization ran at a few hundred rows a second. The unique index is the only one to use."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_no_identifier_index_leads_with_the_organization_alone():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "cxcore_identifier")
    leading_with_org = {
        name: spec["columns"]
        for name, spec in constraints.items()
        if (spec["index"] or spec["unique"]) and spec["columns"][:1] == ["organization_id"]
    }
    assert list(leading_with_org.values()) == [["organization_id", "kind", "value"]]
