"""The one tenancy mechanism: request → organization, location scope, scoped querysets.

Every API view and web page gets its `Tenant` from `tenant_for_request` and reads through
`OrgScopedQuerySet.for_tenant`, so no code path filters by organization on its own. Another
organization's object is simply not in the queryset, which makes it a 404, never a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
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

    @property
    def role(self) -> str | None:
        return self.membership.role if self.membership else None

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER

    @property
    def is_manager_or_owner(self) -> bool:
        return self.role in (Role.OWNER, Role.MANAGER)

    def can_use_location(self, location: Location) -> bool:
        return location.organization_id == self.organization.pk and (
            self.location_ids is None or location.pk in self.location_ids
        )

    def locations(self) -> models.QuerySet[Location]:
        qs = Location.objects.filter(organization=self.organization, is_active=True)
        if self.location_ids is not None:
            qs = qs.filter(pk__in=self.location_ids)
        return qs

    def resolve_location(self, slug: str | None, *, field: str = "location") -> Location | None:
        """The location named by `slug` if this tenant may act there, else a 404 naming the field.

        Without a slug: the key's location, the session's chosen one, or the only one there is.
        """
        if not slug:
            if self.default_location is not None:
                return self.default_location
            only = list(self.locations()[:2])
            return only[0] if len(only) == 1 else None
        location = (
            Location.objects.filter(organization=self.organization, slug=slug, is_active=True)
            .select_related("organization")
            .first()
        )
        if location is None or not self.can_use_location(location):
            raise NotFoundError(field=field, message=f"No location {slug!r} here.")
        return location


def tenant_for_api_key(api_key: ApiKey) -> Tenant:
    location = api_key.location
    return Tenant(
        organization=api_key.organization,
        api_key=api_key,
        location_ids=frozenset({location.pk}) if location else None,
        default_location=location,
    )


def memberships_for(user: User) -> models.QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("pk")


def tenant_for_user(user: User | AnonymousUser, session: Any | None = None) -> Tenant | None:
    """The user's tenant: the organization chosen in the session, else their first membership."""
    if isinstance(user, AnonymousUser):
        return None
    memberships = memberships_for(user)
    org_id = session.get(SESSION_ORG_KEY) if session is not None else None
    membership = (memberships.filter(organization_id=org_id).first() if org_id else None) or (
        memberships.first()
    )
    if membership is None:
        return None
    location_ids = None
    if membership.role != Role.OWNER:
        limited = frozenset(membership.locations.values_list("pk", flat=True))
        location_ids = limited or None
    default_location = None
    location_id = session.get(SESSION_LOCATION_KEY) if session is not None else None
    if location_id:
        default_location = (
            Location.objects.filter(organization=membership.organization, pk=location_id)
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


class TenantAPIMixin(_APIViewBase):
    """Base for every API view: `self.tenant`, and querysets that are always scoped.

    Subclasses set `queryset` to an OrgScopedQuerySet; `get_queryset` filters it to the tenant.
    Reading across organizations needs `dangerously_unscoped_queryset`, named so it stands out.
    """

    queryset: Any = None

    @property
    def tenant(self) -> Tenant:
        tenant = tenant_for_request(self.request)
        if tenant is None:  # permissions run first; this guards views that skip them
            raise exceptions.NotAuthenticated()
        return tenant

    def get_queryset(self) -> models.QuerySet:
        return self.dangerously_unscoped_queryset().for_tenant(self.tenant)

    def dangerously_unscoped_queryset(self) -> OrgScopedQuerySet:
        return self.queryset.all()


def roles_sentence(roles: Collection[str]) -> str:
    """'This page is for owners and managers.': what the 403 page (templates/403.html) says."""
    names = [f"{label.lower()}s" for value, label in Role.choices if value in roles]
    return f"This page is for {' and '.join(names)}."


class TenantPageMixin(LoginRequiredMixin):
    """Base for every web page: login required, `self.tenant` set, non-members get a 404, and
    members without one of `required_roles` the 403 page saying who may see it."""

    request: HttpRequest
    tenant: Tenant
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
