"""The tenancy bases cannot be gone around by accident (accounts/tenancy.py).

A view that defines its own get_queryset or get_object is refused when its class is created;
the one way around is a method marked @dangerously_bypasses_tenancy with its reason, and every
`dangerously_…` name in the code is listed below with why it is safe. Views and pages read
models through the tenant: the source of every module that uses a tenancy base is read here,
and a bare `Model.objects.get(pk=…)` in one fails the suite.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.views import View
from rest_framework import generics
from rest_framework.views import APIView

from accounts.tenancy import (
    Tenant,
    TenantAPIMixin,
    TenantPageMixin,
    dangerously_bypasses_tenancy,
)
from cxcore.models import Customer
from tests.factories import CustomerFactory

ROOT = Path(__file__).resolve().parents[2]


def app_dirs() -> list[Path]:
    """Every Django app of the project (a directory with an apps.py), new ones included."""
    return sorted(p.parent for p in ROOT.glob("*/apps.py"))


def app_sources() -> list[Path]:
    return sorted(
        path for app in app_dirs() for path in app.rglob("*.py") if "migrations" not in path.parts
    )


# --- defining get_queryset or get_object is refused at import --------------------------------


def test_an_api_view_defining_get_queryset_is_refused_when_the_class_is_created():
    with pytest.raises(TypeError) as caught:

        class Leaky(TenantAPIMixin, generics.ListAPIView):
            def get_queryset(self):
                return Customer.objects.all()

    message = str(caught.value)
    assert "Leaky.get_queryset()" in message
    assert "skip the tenant scope" in message
    assert "scope_queryset(self, queryset)" in message
    assert "@dangerously_bypasses_tenancy" in message


def test_an_api_view_defining_get_object_is_refused():
    with pytest.raises(TypeError, match=r"Leaky\.get_object\(\) would skip the tenant scope"):

        class Leaky(TenantAPIMixin, generics.RetrieveAPIView):
            queryset = Customer.objects.all()

            def get_object(self):
                return Customer.objects.get(pk=self.kwargs["pk"])


def test_a_page_defining_get_queryset_or_get_object_is_refused():
    for name in ("get_queryset", "get_object"):
        with pytest.raises(TypeError, match=rf"LeakyPage\.{name}\(\) would skip"):
            type("LeakyPage", (TenantPageMixin, View), {name: lambda self: None})


def test_a_subclass_of_a_subclass_is_held_too():
    class Scoped(TenantAPIMixin, APIView):
        queryset = Customer.objects.all()

    with pytest.raises(TypeError, match=r"Deeper\.get_queryset\(\)"):

        class Deeper(Scoped):
            def get_queryset(self):
                return Customer.objects.all()


def test_a_mixin_placed_ahead_of_the_base_is_held_too():
    """Its get_queryset would win the MRO over the base's scoped one."""

    class Mixin:
        def get_queryset(self):
            return Customer.objects.all()

    with pytest.raises(TypeError, match=r"Mixin\.get_queryset\(\) would skip"):

        class Leaky(Mixin, TenantAPIMixin, APIView):
            pass


def test_a_mixin_behind_the_base_is_fine_the_base_wins():
    class Mixin:
        def get_queryset(self):
            return Customer.objects.all()

    class Fine(TenantAPIMixin, Mixin, APIView):
        queryset = Customer.objects.all()

    assert Fine.get_queryset is TenantAPIMixin.get_queryset


def page_for(tenant: Tenant, cls: type[TenantPageMixin]) -> TenantPageMixin:
    page = cls()
    page.tenant = tenant
    return page


@pytest.mark.django_db
def test_the_marked_bypass_is_allowed_and_reads_around_the_scope(org, other_org):
    ours, theirs = CustomerFactory(organization=org), CustomerFactory(organization=other_org)

    class Operator(TenantPageMixin, View):
        queryset = Customer.objects.all()

        @dangerously_bypasses_tenancy("a test of the escape hatch itself")
        def get_queryset(self):
            return self.dangerously_unscoped_queryset()

    class Scoped(TenantPageMixin, View):
        queryset = Customer.objects.all()

    tenant = Tenant(organization=org)
    assert set(page_for(tenant, Operator).get_queryset()) == {ours, theirs}
    assert list(page_for(tenant, Scoped).get_queryset()) == [ours]


@pytest.mark.django_db
def test_scope_queryset_narrows_inside_the_organization(org, other_org):
    named = CustomerFactory(organization=org, name="Ana")
    CustomerFactory(organization=org, name="")
    CustomerFactory(organization=other_org, name="Ana")

    class Named(TenantPageMixin, View):
        queryset = Customer.objects.all()

        def scope_queryset(self, queryset):
            return queryset.exclude(name="")

    assert list(page_for(Tenant(organization=org), Named).get_queryset()) == [named]


def test_a_bypass_without_a_reason_is_refused():
    with pytest.raises(TypeError, match="needs the reason"):
        dangerously_bypasses_tenancy(" ")


def test_a_view_without_a_queryset_says_so():
    class NoQueryset(TenantPageMixin, View):
        pass

    with pytest.raises(TypeError, match="sets none"):
        NoQueryset().get_queryset()


# --- every dangerously_ use is known, with why ------------------------------------------------

# (module, name) -> why it is safe. A new use fails test_every_dangerously_use_is_allowed
# until it is added here, which puts the reason in front of a reviewer.
ALLOWED_BYPASSES: dict[tuple[str, str], str] = {
    ("accounts/tenancy.py", "dangerously_bypasses_tenancy"): (
        "the decorator's own definition, its error message and its docstring"
    ),
    ("accounts/tenancy.py", "dangerously_unscoped_queryset"): (
        "the base's source of rows: get_queryset filters it to the tenant before anyone reads it"
    ),
}
DANGEROUSLY = re.compile(r"\bdangerously_\w+")


def test_every_dangerously_use_is_allowed_with_a_reason():
    found = {
        (str(path.relative_to(ROOT)), name)
        for path in app_sources()
        for name in DANGEROUSLY.findall(path.read_text())
    }
    unknown = sorted(found - set(ALLOWED_BYPASSES))
    assert not unknown, f"Say why each is safe in ALLOWED_BYPASSES: {unknown}"
    assert not sorted(set(ALLOWED_BYPASSES) - found), "ALLOWED_BYPASSES names uses that are gone"
    assert all(reason.strip() for reason in ALLOWED_BYPASSES.values())


# --- views read models through the tenant -----------------------------------------------------

BASES = ("TenantAPIMixin", "TenantPageMixin")
# How a view may go from a model's manager: through the tenant. `queryset = Model.objects…` as
# a class attribute is also fine: the base scopes it in get_queryset.
SCOPED_NEXT = frozenset({"for_tenant"})
# (module, source line) -> why that manager read needs no tenant scope. Keyed by the line, so
# changing it brings it back here for a second look.
ALLOWED_MANAGER_READS: dict[tuple[str, str], str] = {
    (
        "connectors/api/views.py",
        'SquareConnection.objects.select_related("organization").filter(token=token).first()',
    ): "Square's notification carries no credentials of ours: the secret token in its URL is "
    "what names the tenant, so there is no tenant to scope by before this lookup",
    (
        "connectors/api/views.py",
        "Location.objects.filter(organization_id=connection.organization_id).values_list(",
    ): "filtered by the organization of a connection that was itself read through the tenant",
    (
        "connectors/views.py",
        "slugs = dict(Location.objects.filter(organization=organization)"
        '.values_list("pk", "slug"))',
    ): "filtered by the tenant's own organization (self.tenant.organization, a line above)",
    (
        "webhooks/api/views.py",
        'again = WebhookDelivery.objects.select_related("event").get(pk=again.pk)',
    ): "re-reads the row the replay service just made from a delivery read through the tenant",
}


def view_modules() -> list[Path]:
    """Modules that use a tenancy base: every view and page module."""
    return [
        path
        for path in app_sources()
        if path.name != "tenancy.py" and any(base in path.read_text() for base in BASES)
    ]


def unscoped_manager_reads(source: str, module: str) -> list[tuple[str, str]]:
    """(module, line) of each `X.objects` not followed by `.for_tenant(` nor assigned to a
    class's `queryset`."""
    tree = ast.parse(source)
    lines = source.splitlines()
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for statement in node.body:
                targets = (
                    statement.targets
                    if isinstance(statement, ast.Assign)
                    else [statement.target]
                    if isinstance(statement, ast.AnnAssign)
                    else []
                )
                if any(isinstance(t, ast.Name) and t.id == "queryset" for t in targets):
                    allowed.update(
                        id(n) for n in ast.walk(statement) if isinstance(n, ast.Attribute)
                    )
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr == "objects"):
            continue
        if id(node) in allowed:
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.Attribute) and parent.attr in SCOPED_NEXT:
            continue
        found.append((module, lines[node.lineno - 1].strip()))
    return found


def test_the_scan_finds_view_modules_and_would_catch_a_bare_lookup():
    names = {str(p.relative_to(ROOT)) for p in view_modules()}
    assert {"cxcore/api/views.py", "cxcore/views.py", "recovery/views/till.py"} <= names
    leaky = (
        "class V(TenantPageMixin, View):\n"
        "    queryset = Customer.objects.all()\n"
        "    def get(self, request, pk):\n"
        "        ok = Customer.objects.for_tenant(self.tenant).get(pk=pk)\n"
        "        return Customer.objects.get(pk=pk)\n"
    )
    assert unscoped_manager_reads(leaky, "leaky.py") == [
        ("leaky.py", "return Customer.objects.get(pk=pk)")
    ]


def test_views_read_models_only_through_the_tenant():
    found = {
        read
        for path in view_modules()
        for read in unscoped_manager_reads(path.read_text(), str(path.relative_to(ROOT)))
    }
    unknown = sorted(found - set(ALLOWED_MANAGER_READS))
    assert not unknown, (
        "Read through the tenant (Model.objects.for_tenant(self.tenant), a selector taking the "
        f"tenant, or `queryset` + get_queryset()), or say why not in ALLOWED_MANAGER_READS: "
        f"{unknown}"
    )
    # Entries for a module not in this checkout (an app still being written) are not stale.
    present = {(module, line) for module, line in ALLOWED_MANAGER_READS if (ROOT / module).exists()}
    assert not sorted(present - found), "ALLOWED_MANAGER_READS is stale"
