"""The filters of a case list, one definition for the owner queue (and its CSV) and for
GET /api/v1/cases/: the same parameters, the same answers, the same errors.

A bad value is an error naming its parameter (a 400 from the API; the queue says so on its
filter bar and lists the cases without that filter). The filters only ever narrow the cases
the tenant may see (`cases_for`); an unknown location and one the tenant may not use are the
same error, so a filter cannot tell whether a location exists elsewhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.forms.boundfield import BoundField
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request

from accounts.models import Location
from accounts.tenancy import Tenant, tenant_for_request
from cxcore.keyset import MAX_DB_INT
from cxcore.vocabulary import Touchpoint
from recovery.models import CaseKind, CaseStatus, RecoveryCase, RecoveryCaseQuerySet, Severity
from recovery.selectors import cases_for

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "on", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "off", "0"})


class YesNoCheckbox(forms.CheckboxInput):
    """A checkbox on the filter bar that hands the field what was sent ("on" when ticked,
    "true" or "false" from a client) instead of reading anything but "false" as yes."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, check_test=lambda value: str(value).lower() in TRUE_WORDS)

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        return data.get(name)

    def format_value(self, value: Any) -> str | None:
        return None  # ticking the box sends "on", whatever the URL said before


class YesNoField(forms.Field):
    """true or false, in the words DRF's BooleanField reads (on, yes, 1, …); anything else is
    an error rather than a silent "no"."""

    widget = YesNoCheckbox
    default_error_messages = {"invalid": "Must be true or false."}

    def to_python(self, value: Any) -> bool | None:
        if value in self.empty_values:
            return None
        word = str(value).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValidationError(self.error_messages["invalid"], code="invalid")


class AssigneeField(forms.CharField):
    """Whose cases: "me", "nobody" or a user's id."""

    default_error_messages = {"invalid": 'Give "me", "nobody" or a user id.'}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=20, **kwargs)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value in ("", "me", "nobody"):
            return
        if not (value.isascii() and value.isdigit() and 0 < int(value) <= MAX_DB_INT):
            raise ValidationError(self.error_messages["invalid"], code="invalid")


class FilterBarBoundField(BoundField):
    """The queue's filter bar says what is wrong (with these fields' error ids) but shows no
    help texts, which describe the API's parameters: its widgets point at the errors only."""

    @property
    def aria_describedby(self) -> str:
        return f"{self.auto_id}_error" if self.auto_id and self.errors else ""


class CaseFilterForm(forms.Form):
    bound_field_class = FilterBarBoundField


class YesNoFilter(django_filters.BooleanFilter):
    field_class = YesNoField


# What AssigneeField accepts, for the schema: it strips spaces before it counts to 20, so the
# pattern bounds the length of what is inside them (ids of up to 18 digits: every id there is).
ASSIGNEE_PATTERN = r"^\s*(me|nobody|0{0,2}[1-9][0-9]{0,17})?\s*$"


@extend_schema_field({"type": "string", "pattern": ASSIGNEE_PATTERN})
class AssigneeFilter(django_filters.CharFilter):
    field_class = AssigneeField


def usable_locations(request: HttpRequest | Request) -> QuerySet[Location]:
    """The locations a case list can be narrowed to: those the tenant may use."""
    return tenant_of(request).locations()


def tenant_of(request: HttpRequest | Request) -> Tenant:
    tenant = tenant_for_request(request)
    if tenant is None:  # the pages and endpoints that list cases let only members in
        raise PermissionDenied("Cases are listed for members and API keys only.")
    return tenant


class CaseFilter(django_filters.FilterSet):
    """Narrows a tenant's cases: `CaseFilter(request.GET, request=request).qs`."""

    status = django_filters.ChoiceFilter(
        choices=CaseStatus.choices, empty_label=None, help_text="Default: open."
    )
    kind = django_filters.ChoiceFilter(choices=CaseKind.choices, empty_label="any kind")
    severity = django_filters.ChoiceFilter(choices=Severity.choices, empty_label="any severity")
    location = django_filters.ModelChoiceFilter(
        queryset=usable_locations,
        to_field_name="slug",
        empty_label="every location",
        error_messages={"invalid_choice": "No location %(value)r here."},
        help_text="A location's slug.",
    )
    touchpoint = django_filters.ChoiceFilter(
        choices=Touchpoint.choices, method="filter_touchpoint", empty_label="any touchpoint"
    )
    assignee = AssigneeFilter(method="filter_assignee", help_text='"me", "nobody" or a user id.')
    overdue = YesNoFilter(
        method="filter_overdue",
        help_text="true: only cases past their next deadline; false: only those that are not.",
    )

    class Meta:
        model = RecoveryCase
        fields: list[str] = []  # the filters above are all there is
        form = CaseFilterForm

    def __init__(
        self,
        data: QueryDict | None = None,
        queryset: QuerySet[RecoveryCase] | None = None,
        *,
        request: HttpRequest | Request,
        prefix: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """`queryset` defaults to the cases the tenant may see; a caller that passes its own
        passes a narrower one (the API's is `cases_for` too)."""
        self.tenant = tenant_of(request)
        self.now = now or timezone.now()
        if queryset is None:
            queryset = cases_for(self.tenant)
        super().__init__(data, queryset, request=request, prefix=prefix)

    def filter_queryset(self, queryset: QuerySet[RecoveryCase]) -> QuerySet[RecoveryCase]:
        # Open cases unless another status is asked for: the case_queue index serves the
        # queue's order only with the status fixed.
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(status=CaseStatus.OPEN)
        # Held-out care cases (issue 16) are the control group: nobody's work, on no queue.
        queryset = queryset.filter(held_out=False)
        result: QuerySet[RecoveryCase] = super().filter_queryset(queryset)
        return result

    def filter_touchpoint(
        self, queryset: QuerySet[RecoveryCase], name: str, value: str
    ) -> QuerySet[RecoveryCase]:
        # Text containment works on PostgreSQL's jsonb and SQLite's JSON alike.
        return queryset.filter(touchpoints__icontains=f'"{value}"')

    def filter_assignee(
        self, queryset: QuerySet[RecoveryCase], name: str, value: str
    ) -> QuerySet[RecoveryCase]:
        if value == "nobody":
            return queryset.filter(assignee__isnull=True)
        if value == "me":
            me = self.tenant.user  # an API key is nobody's "me"
            return queryset.filter(assignee=me) if me is not None else queryset.none()
        return queryset.filter(assignee_id=int(value))

    def filter_overdue(
        self, queryset: RecoveryCaseQuerySet[RecoveryCase], name: str, value: bool
    ) -> QuerySet[RecoveryCase]:
        late = queryset.overdue(self.now)
        return late if value else queryset.exclude(pk__in=late.values("pk"))
