"""The filters of a partner's incident list (GET /api/v1/partners/{id}/incidents/): a bad
value is a 400 naming its parameter. They only narrow what `incidents_for` lets the tenant
see."""

from __future__ import annotations

import django_filters

from partners.models import PartnerIncident
from partners.vocabulary import IncidentStatus


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=IncidentStatus.choices)

    class Meta:
        model = PartnerIncident
        fields = ["status"]
