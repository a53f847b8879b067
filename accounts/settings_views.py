"""The settings pages: General (the organization's own settings) and Locations.

Owners change them; managers read them (the forms render disabled, and a manager's post is the
403 page); staff get the 403 page. Views parse, authorize and call one service.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from accounts.errors import DomainError, InvalidFields
from accounts.models import Location, Role
from accounts.services.locations import (
    add_location,
    archive_location,
    change_location,
    organization_locations,
    restore_location,
)
from accounts.services.org_settings import update_organization_settings
from accounts.settings_forms import LocationForm, OrganizationSettingsForm
from accounts.tenancy import TenantPageMixin, roles_sentence


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """A service's refusal, next to the field it names (or above the form)."""
    items = (
        error.errors
        if isinstance(error, InvalidFields)
        else [{"field": error.field, "message": error.message}]
    )
    for item in items:
        field = item["field"] if item["field"] in form.fields else None
        form.add_error(field, str(item["message"]))


class SettingsPage(TenantPageMixin, View):
    """Owners and managers open settings pages; only owners change them."""

    required_roles: tuple[str, ...] = (Role.OWNER, Role.MANAGER)
    settings_section = ""

    def require_owner(self) -> None:
        if not self.tenant.is_owner:
            raise PermissionDenied(roles_sentence((Role.OWNER,)))

    def page(
        self, request: HttpRequest, template: str, status: int = 200, **context: Any
    ) -> HttpResponse:
        context.update(settings_section=self.settings_section, can_edit=self.tenant.is_owner)
        return render(request, template, context, status=status)

    def locations_page(
        self, request: HttpRequest, form: LocationForm | None = None, status: int = 200
    ) -> HttpResponse:
        """The locations list with its add form (blank, or as posted with its errors)."""
        organization = self.tenant.organization
        return self.page(
            request,
            "settings/locations.html",
            status=status,
            locations=organization_locations(organization=organization),
            form=form or LocationForm(initial={"time_zone": organization.time_zone}),
        )


class GeneralSettingsView(SettingsPage):
    settings_section = "general"

    def form(self, data: Any = None) -> OrganizationSettingsForm:
        return OrganizationSettingsForm(
            data,
            initial=OrganizationSettingsForm.initial_for(self.tenant.organization),
            read_only=not self.tenant.is_owner,
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.page(request, "settings/general.html", form=self.form())

    def post(self, request: HttpRequest) -> HttpResponse:
        self.require_owner()
        form = self.form(request.POST)
        if form.is_valid():
            try:
                changed = update_organization_settings(
                    organization=self.tenant.organization,
                    actor=self.tenant.user,
                    values=form.cleaned_data,
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, "Saved the settings." if changed else "Nothing changed.")
                return redirect("settings")
        return self.page(request, "settings/general.html", status=400, form=form)


class LocationsView(SettingsPage):
    settings_section = "locations"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.locations_page(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        self.require_owner()
        form = LocationForm(request.POST)
        if form.is_valid():
            try:
                location = add_location(
                    organization=self.tenant.organization,
                    actor=self.tenant.user,
                    name=form.cleaned_data["name"],
                    time_zone=form.cleaned_data["time_zone"],
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(request, f"Added {location.name}.")
                return redirect("settings-locations")
        return self.locations_page(request, form, status=400)


class LocationPage(SettingsPage):
    """A page about one of the organization's locations: owners only (managers read the list)."""

    required_roles = (Role.OWNER,)
    settings_section = "locations"

    def location(self, pk: int) -> Location:
        location = (
            organization_locations(organization=self.tenant.organization).filter(pk=pk).first()
        )
        if location is None:
            raise Http404("No such location.")
        return location


class LocationEditView(LocationPage):
    def render_form(
        self, request: HttpRequest, location: Location, form: LocationForm, status: int = 200
    ) -> HttpResponse:
        return self.page(
            request, "settings/location_edit.html", status=status, location=location, form=form
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        location = self.location(pk)
        form = LocationForm(initial={"name": location.name, "time_zone": location.time_zone})
        return self.render_form(request, location, form)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        location = self.location(pk)
        form = LocationForm(request.POST)
        if form.is_valid():
            try:
                changed = change_location(
                    location=location,
                    actor=self.tenant.user,
                    name=form.cleaned_data["name"],
                    time_zone=form.cleaned_data["time_zone"],
                )
            except DomainError as error:
                add_domain_error(form, error)
            else:
                messages.success(
                    request, f"Saved {location.name}." if changed else "Nothing changed."
                )
                return redirect("settings-locations")
        return self.render_form(request, location, form, status=400)


class LocationArchiveView(LocationPage):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        location = self.location(pk)
        try:
            archived = archive_location(location=location, actor=self.tenant.user)
        except DomainError as error:
            messages.error(request, error.message)
            return self.locations_page(request, status=error.status_code)
        if archived:
            messages.success(
                request,
                f"Archived {location.name}: its history stays, and it takes no new episodes.",
            )
        return redirect("settings-locations")


class LocationRestoreView(LocationPage):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        location = self.location(pk)
        if restore_location(location=location, actor=self.tenant.user):
            messages.success(request, f"Restored {location.name}.")
        return redirect("settings-locations")
