"""Set-based writes the ORM makes slow.

Django's bulk_update builds a CASE WHEN expression per row and field in Python, and both it
and bulk_create send one literal per value, which PostgreSQL must parse: seconds for a few
thousand rows. Here each column travels as one array and `unnest` turns the arrays back
into rows, so a statement has one parameter per column whatever the number of rows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, models, transaction

_PLAIN = (int, str, Decimal)


def _as_text(field: models.Field[Any, Any], value: Any) -> str | None:
    """A value as PostgreSQL's text input for the column's type (cast back in the query)."""
    if isinstance(field, models.JSONField):
        return json.dumps(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _PLAIN):  # the common case, without the field's conversions
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    value = field.get_db_prep_save(value, connection)
    if value is None:
        return None
    if isinstance(value, timedelta):
        return f"{value.total_seconds()} seconds"
    return str(value)


def _concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The field named, which must have a column (a reverse relation or virtual field has none)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise ValueError(f"{model.__name__}.{name} is not a column.")
    return field


def _quoted_column(field: models.Field[Any, Any]) -> str:
    if field.column is None:  # only concrete fields reach here
        raise ValueError(f"{field} is not a column.")
    return connection.ops.quote_name(field.column)


def _arrays(
    columns: Sequence[models.Field[Any, Any]], rows: Sequence[models.Model]
) -> list[list[str | None]]:
    arrays: list[list[str | None]] = [[] for _ in columns]
    for row in rows:
        for array, column in zip(arrays, columns, strict=True):
            value = getattr(row, column.attname)
            if value is None and column.has_default() and not column.null:
                value = column.get_default()
            array.append(_as_text(column, value))
    return arrays


def _unnest(columns: Sequence[models.Field[Any, Any]]) -> tuple[str, str]:
    """(SELECT list casting each column back, FROM unnest(...) AS u(...))."""
    names = [f"c{i}" for i in range(len(columns))]
    select = ", ".join(
        f"u.{name}::{column.db_type(connection)}"
        for name, column in zip(names, columns, strict=True)
    )
    source = (
        f"unnest({', '.join(['%s::text[]'] * len(columns))}) WITH ORDINALITY "
        f"AS u({', '.join(names)}, ord)"
    )
    return select, source


def update_rows(
    model: type[models.Model], rows: Sequence[models.Model], fields: Sequence[str]
) -> None:
    """UPDATE the given fields of many rows (by primary key) in one statement."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(rows, fields)
        return
    meta = model._meta
    columns = [meta.pk, *(_concrete_field(model, name) for name in fields)]
    select, source = _unnest(columns)
    assignments = ", ".join(
        f"{_quoted_column(column)} = v.c{i}" for i, column in enumerate(columns) if i
    )
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    sql = (
        f"UPDATE {connection.ops.quote_name(meta.db_table)} AS t SET {assignments} "
        f"FROM (SELECT {select} FROM {source}) AS v({aliases}) "
        f"WHERE t.{_quoted_column(meta.pk)} = v.c0"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _arrays(columns, rows))


def insert_rows(
    model: type[models.Model],
    rows: Sequence[models.Model],
    *,
    ignore_conflicts: bool = False,
    match_on: Sequence[str] = (),
) -> None:
    """INSERT many new rows in one statement and set their primary keys.

    With `ignore_conflicts`, rows a unique constraint refuses are skipped (ON CONFLICT DO
    NOTHING) and keep pk None; `match_on` names fields that identify a row within the call,
    so returned ids are matched by value rather than by position.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        if ignore_conflicts:
            for row in rows:
                try:
                    with transaction.atomic():
                        row.save(force_insert=True)
                except IntegrityError:
                    row.pk = None
        else:
            model._default_manager.bulk_create(rows)
        return
    meta = model._meta
    columns = [f for f in meta.concrete_fields if not f.primary_key]
    keys = [_concrete_field(model, name) for name in match_on]
    select, source = _unnest(columns)
    returning = ", ".join(_quoted_column(f) for f in [meta.pk, *keys])
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} "
        f"({', '.join(_quoted_column(c) for c in columns)}) "
        f"SELECT {select} FROM {source} ORDER BY u.ord "
        f"{'ON CONFLICT DO NOTHING ' if ignore_conflicts else ''}RETURNING {returning}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _arrays(columns, rows))
        returned = cursor.fetchall()
    if keys:
        ids = {tuple(key): pk for pk, *key in returned}
        for row in rows:
            row.pk = ids.get(tuple(getattr(row, f.attname) for f in keys))
            row._state.adding = row.pk is None
    else:
        for row, (pk,) in zip(rows, returned, strict=True):
            row.pk = pk
            row._state.adding = False
