"""Every queryset class of ours adds something, and what it adds is used: an empty subclass is
OrgScopedQuerySet under another name (issue 10 took the last ones out; a model with nothing to
add uses it directly), and a filter nobody calls gets written again inline beside it."""

import ast
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent


def our_modules():
    for config in apps.get_app_configs():
        path = Path(config.path).resolve()
        if path.parent == ROOT:  # a package at the project's top: one of ours
            yield from (m for m in sorted(path.rglob("*.py")) if "migrations" not in m.parts)


def queryset_methods(source: str) -> set[str]:
    return {
        statement.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef) and node.name.endswith("QuerySet")
        for statement in node.body
        if isinstance(statement, ast.FunctionDef) and not statement.name.startswith("_")
    }


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
    for module in our_modules():
        if names := empty_querysets(module.read_text()):
            found[str(module.relative_to(ROOT))] = names
    assert found == {}


def test_every_queryset_method_of_ours_is_called_by_the_application():
    sources = {module: module.read_text() for module in our_modules()}
    defined = set().union(*(queryset_methods(text) for text in sources.values()))
    called = {name for name in defined for text in sources.values() if f".{name}(" in text}
    assert defined - called == set()
