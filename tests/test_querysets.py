"""Every queryset class of ours adds something: an empty subclass is OrgScopedQuerySet under
another name (issue 10 took the last ones out; a model with nothing to add uses it directly)."""

import ast
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent


def empty_querysets(source: str) -> list[str]:
    empty = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name.endswith("QuerySet"):
            body = [
                statement
                for statement in node.body
                if not isinstance(statement, ast.Pass)
                and not (
                    isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                )
            ]
            if not body:
                empty.append(node.name)
    return empty


def test_the_check_finds_an_empty_queryset_class():
    assert empty_querysets('class EventQuerySet(Base):\n    """Events."""\n    pass\n') == [
        "EventQuerySet"
    ]
    assert not empty_querysets("class EventQuerySet(Base):\n    def due(self): ...\n")


def test_no_queryset_class_of_ours_is_empty():
    found = {}
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.parent != ROOT:  # a package at the project's top: one of ours
            continue
        for module in sorted(path.rglob("*.py")):
            if "migrations" not in module.parts and (names := empty_querysets(module.read_text())):
                found[str(module.relative_to(ROOT))] = names
    assert found == {}
