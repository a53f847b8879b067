"""The one tenancy mechanism: request → organization, location scope, scoped querysets.

Every API view and web page gets its `Tenant` from `tenant_for_request` and reads through
`OrgScopedQuerySet.for_tenant`, so no code path filters by organization on its own. Another
organization's object is simply not in the queryset, which makes it a 404, never a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest
from django.utils import timezone
from rest_framework import exceptions, permissions
from rest_framework.request import Request

from accounts.errors import NotFoundError
from accounts.models import (
    ApiKey,
    Location,
    Membership,
    Organization,
    OrgScopedQuerySet,
    Role,
    User,
)

if TYPE_CHECKING:
    from collections.abc import Collection

    from rest_framework.views import APIView

    # What the mixin below is mixed into, for mypy: at run time importing APIView here would be
    # circular (its class body reads DEFAULT_PERMISSION_CLASSES, which names IsTenantMember).
    _APIViewBase = APIView
else:
    _APIViewBase = object

_F = TypeVar("_F", bound=Callable[..., Any])

SESSION_ORG_KEY = "tenant_org_id"
SESSION_LOCATION_KEY = "tenant_location_id"
# Where tenant_for_request caches its answer on the request.
TENANT_ATTR = "_comeback_tenant"


@dataclass(frozen=True)
class Tenant:
    organization: Organization
    user: User | None = None
    membership: Membership | None = None
    api_key: ApiKey | None = None
    # None means every location of the organization.
    location_ids: frozenset[int] | None = None
    default_location: Location | None = None
    # Every organization the user is an active member of, this one included (the top bar's
    # switcher offers them when there are several); read in the same query as the membership.
    organizations: tuple[Organization, ...] = ()

    @property
    def role(self) -> str | None:
        return self.membership.role if self.membership else None

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def is_manager_or_owner(self) -> bool:
        return self.role in (Role.OWNER, Role.MANAGER)

    @property
    def is_org_wide_key(self) -> bool:
        """An API key for the whole organization (a till's key is limited to its location)."""
        return self.api_key is not None and self.location_ids is None

    @property
    def is_org_admin(self) -> bool:
        """The organization's settings and data rights: owners and organization-wide keys."""
        return self.is_org_wide_key if self.api_key is not None else self.is_owner

    def can_use_location(self, location: Location) -> bool:
        return location.organization_id == self.organization.pk and (
            self.location_ids is None or location.pk in self.location_ids
        )

    def locations(self) -> models.QuerySet[Location]:
        qs = Location.objects.filter(organization=self.organization, is_active=True)
        if self.location_ids is not None:
            qs = qs.filter(pk__in=self.location_ids)
        return qs

    def memberships(self) -> models.QuerySet[Membership]:
        """The organization's members (every one: a location limit narrows what is browsed,
        not who may be assigned a case)."""
        return Membership.objects.filter(organization=self.organization)

    def resolve_location(self, slug: str | None, *, field: str = "location") -> Location | None:
        """The location named by `slug` if this tenant may act there, else a 404 naming the field.

        Without a slug: the key's location, the session's chosen one, or the only one there is.
        """
        if not slug:
            if self.default_location is not None:
                refuse_archived(self.default_location, field=field)
                return self.default_location
            only = list(self.locations()[:2])
            return only[0] if len(only) == 1 else None
        location = (
            Location.objects.filter(organization=self.organization, slug=slug)
            .select_related("organization")
            .first()
        )
        if location is None or not self.can_use_location(location):
            raise NotFoundError(field=field, message=f"No location {slug!r} here.")
        refuse_archived(location, field=field)
        return location


def refuse_archived(location: Location, *, field: str = "location") -> None:
    """An archived location keeps its history and takes nothing new. Every write names its
    location through `resolve_location`, so this is where they are all refused, a key bound to
    the location included (it stops writing until the location is restored). A 404 naming the
    field, like a slug that is not there: what the API already documents for a location that
    may not be used."""
    if not location.is_active:
        raise NotFoundError(
            f"Location {location.slug!r} is archived: it takes no new episodes.",
            field=field,
            code="location_archived",
        )


def tenant_for_api_key(api_key: ApiKey) -> Tenant:
    location = api_key.location
    return Tenant(
        organization=api_key.organization,
        api_key=api_key,
        location_ids=frozenset({location.pk}) if location else None,
        default_location=location,
    )


def memberships_for(user: User) -> models.QuerySet[Membership]:
    """The user's active memberships: a deactivated one opens nothing, from the next request."""
    return (
        Membership.objects.filter(user=user, is_active=True)
        .select_related("organization")
        .order_by("pk")
    )


def tenant_for_user(user: User | AnonymousUser, session: Any | None = None) -> Tenant | None:
    """The user's tenant: the organization chosen in the session, else their first membership."""
    if isinstance(user, AnonymousUser):
        return None
    # One query for all of them: a person belongs to a handful of organizations at most.
    memberships = list(memberships_for(user))
    org_id = session.get(SESSION_ORG_KEY) if session is not None else None
    if not memberships:
        return None
    chosen = [m for m in memberships if org_id and m.organization_id == org_id]
    membership = (chosen or memberships)[0]
    location_ids = None
    if membership.role != Role.OWNER:
        limited = frozenset(membership.locations.values_list("pk", flat=True))
        location_ids = limited or None
    default_location = None
    location_id = session.get(SESSION_LOCATION_KEY) if session is not None else None
    if location_id:
        default_location = (
            # An archived location is no longer a till's choice: the session falls back.
            Location.objects.filter(
                organization=membership.organization, pk=location_id, is_active=True
            )
            .select_related("organization")
            .first()
        )
        if default_location and location_ids is not None and location_id not in location_ids:
            default_location = None
    return Tenant(
        organization=membership.organization,
        user=user,
        membership=membership,
        location_ids=location_ids,
        default_location=default_location,
        organizations=tuple(m.organization for m in memberships),
    )


def tenant_for_request(request: HttpRequest | Request) -> Tenant | None:
    """Resolve (once per request) who is asking and for which organization."""
    cached: Tenant | None = getattr(request, TENANT_ATTR, None)
    if cached is not None:
        return cached
    auth = getattr(request, "auth", None)
    tenant: Tenant | None
    if isinstance(auth, ApiKey):
        tenant = tenant_for_api_key(auth)
    else:
        tenant = tenant_for_user(request.user, getattr(request, "session", None))
    if tenant is not None:
        # DRF's Request proxies attribute reads to the HttpRequest, so cache on the inner one.
        target = getattr(request, "_request", request)
        setattr(target, TENANT_ATTR, tenant)
    return tenant


class IsTenantMember(permissions.BasePermission):
    """An API key, or a logged-in member of an organization."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.auth is None and not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        if tenant_for_request(request) is None:
            raise exceptions.PermissionDenied("You are not a member of any organization.")
        return True


# The methods a tenancy base owns. A subclass that defined its own would read around the
# tenant's scope (DRF's get_object and Django's generic views both read get_queryset), which
# is how a multi-tenant app leaks: one view written in a hurry. So the bases refuse it when
# the class is created, at import, and subclasses narrow through `scope_queryset` instead.
GUARDED_METHODS = ("get_queryset", "get_object")
BYPASS_ATTR = "dangerously_bypasses_tenancy"


def dangerously_bypasses_tenancy(reason: str) -> Callable[[_F], _F]:
    """Mark a `get_queryset`/`get_object` of a tenancy subclass as a deliberate bypass.

    The name is meant to stand out in review, and `reason` says why the tenant scope does not
    apply. Every use is listed, with its reason, in tests/accounts/test_tenancy_guard.py
    (ALLOWED_BYPASSES), and a use missing there fails the suite."""
    if not reason.strip():
        raise TypeError("dangerously_bypasses_tenancy needs the reason it is safe.")

    def mark(method: _F) -> _F:
        setattr(method, BYPASS_ATTR, reason)
        return method

    return mark


def refuse_unscoped_overrides(cls: type, base: type) -> None:
    """TypeError if `cls`, or a class it mixes in ahead of `base`, defines a guarded method
    that is not marked with @dangerously_bypasses_tenancy."""
    for klass in cls.__mro__:
        if klass is base:
            return  # from here on the MRO resolves to base's own, scoped methods
        for name in GUARDED_METHODS:
            method = klass.__dict__.get(name)
            if method is None or getattr(method, BYPASS_ATTR, None):
                continue
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}: {klass.__qualname__}.{name}() would "
                "skip the tenant scope (accounts/tenancy.py). Set `queryset` and narrow it in "
                "scope_queryset(self, queryset), which receives it already limited to the "
                "tenant's organization; a deliberate bypass is decorated "
                "@dangerously_bypasses_tenancy('why') and listed in "
                "tests/accounts/test_tenancy_guard.py."
            )


class TenantScopeMixin:
    """What both bases share: `queryset`, scoped to the tenant by a `get_queryset` that
    subclasses cannot replace (see `refuse_unscoped_overrides`).

    - `queryset`: the model's whole queryset (an OrgScopedQuerySet), e.g. `Case.objects.all()`.
    - `scope_queryset(queryset)`: the hook to narrow it further (location limits, prefetches);
      it receives the queryset already filtered to the tenant's organization, so whatever it
      returns stays inside it as long as it only filters.
    - `get_queryset()`: organization scope, then the hook. Final.
    - `dangerously_unscoped_queryset()`: `queryset` before any scope; named to stand out.
    """

    queryset: Any = None
    tenant: Tenant  # the API's base reads it from the request; the pages' sets it in dispatch

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        refuse_unscoped_overrides(cls, TenantScopeMixin)

    def get_queryset(self) -> models.QuerySet:
        return self.scope_queryset(self.dangerously_unscoped_queryset().for_tenant(self.tenant))

    def scope_queryset(self, queryset: Any) -> models.QuerySet:
        return queryset

    def dangerously_unscoped_queryset(self) -> OrgScopedQuerySet:
        if self.queryset is None:
            raise TypeError(f"{type(self).__qualname__} reads a queryset but sets none.")
        return self.queryset.all()


class TenantAPIMixin(TenantScopeMixin, _APIViewBase):
    """Base for every API view: `self.tenant`, and querysets that are always scoped.

    Subclasses set `queryset` to an OrgScopedQuerySet and narrow it in `scope_queryset`;
    `get_queryset` (and so DRF's `get_object`) filters it to the tenant, and defining either
    in a subclass is a TypeError at import (TenantScopeMixin). Another organization's object is
    not in the queryset: a 404.
    """

    @property
    def tenant(self) -> Tenant:  # type: ignore[override]  # read-only: the request says who
        tenant = tenant_for_request(self.request)
        if tenant is None:  # permissions run first; this guards views that skip them
            raise exceptions.NotAuthenticated()
        return tenant


def roles_sentence(roles: Collection[str]) -> str:
    """'This page is for owners and managers.': what the 403 page (templates/403.html) says."""
    names = [f"{label.lower()}s" for value, label in Role.choices if value in roles]
    return f"This page is for {' and '.join(names)}."


class TenantPageMixin(TenantScopeMixin, LoginRequiredMixin):
    """Base for every web page: login required, `self.tenant` set, non-members get a 404, and
    members without one of `required_roles` the 403 page saying who may see it.

    Pages look objects up through the tenant (`Model.objects.for_tenant(self.tenant)`, a
    selector taking the tenant, or `get_queryset()` with `queryset` set), never by a bare id:
    tests/accounts/test_tenancy_guard.py reads every views module to hold that. Like the API's
    base, a page may not define get_queryset or get_object (TenantScopeMixin)."""

    request: HttpRequest
    required_roles: Collection[str] | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        tenant = tenant_for_request(request)
        if tenant is None:
            raise Http404("Nothing here for you.")
        if self.required_roles is not None and tenant.role not in self.required_roles:
            # A member may know the page exists; which objects are on it stays unsaid (the
            # role is checked before any object is looked up).
            raise PermissionDenied(roles_sentence(self.required_roles))
        self.tenant = tenant
        # Pages show times in the organization's zone unless a template names a location's.
        with timezone.override(ZoneInfo(tenant.organization.time_zone)):
            return super().dispatch(request, *args, **kwargs)
