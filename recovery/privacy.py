"""Recovery's part of the customer's data rights (cxcore.privacy): the cases in the export,
and what an erasure clears from them.

Case texts hold the person: suggested actions are rendered with their first name and usual
order ("Apologise to Daniel…", "Comp their usual Almond-milk latte"), dismissal reasons and
resolution notes are what staff typed. An erasure replaces them with a neutral placeholder and
dismisses the customer's open cases through the lifecycle, so the queue never shows a person
nobody can name. The cases themselves stay: counts, SLAs and outcomes do not change.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cxcore.models import Customer
from cxcore.privacy import (
    ERASED,
    ERASED_REASON,
    ErasureContext,
    ExportSection,
    paged,
    register_erase_step,
    register_export_section,
    rewrite,
)
from recovery.events import Actor
from recovery.lifecycle import Reason
from recovery.models import CaseAction, CaseEvent, CaseReminder, CaseTrigger, RecoveryCase
from recovery.services import dismiss_case
from recovery.vocabulary import Outcome

# --- export ----------------------------------------------------------------------------------


class CaseActionExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = CaseAction
        fields = ["position", "text", "added_at", "taken_at"]
        read_only_fields = fields


class CaseTriggerExportSerializer(serializers.ModelSerializer):
    class Meta:
        model = CaseTrigger
        fields = ["episode", "added_at"]
        read_only_fields = fields


ACTOR_KINDS = ("staff", "api_key", "system")


class CaseEventExportSerializer(serializers.ModelSerializer):
    """A history event. Who acted is said by kind: the staff member's identity is theirs, not
    the customer's."""

    actor = serializers.SerializerMethodField()
    location: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )

    class Meta:
        model = CaseEvent
        fields = ["type", "at", "actor", "location", "data"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=ACTOR_KINDS))
    def get_actor(self, event: CaseEvent) -> str:
        if event.actor_user_id is not None:
            return "staff"
        return "api_key" if event.actor_api_key_id is not None else "system"


class CaseExportSerializer(serializers.ModelSerializer):
    playbook: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    location: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    actions = CaseActionExportSerializer(many=True, read_only=True)
    triggers = CaseTriggerExportSerializer(source="trigger_links", many=True, read_only=True)
    events = CaseEventExportSerializer(many=True, read_only=True)

    class Meta:
        model = RecoveryCase
        fields = [
            "id",
            "kind",
            "status",
            "severity",
            "playbook",
            "location",
            "touchpoints",
            "worst_experience",
            "opened_at",
            "ack_due_at",
            "due_at",
            "acknowledged_at",
            "escalated_at",
            "reopened_at",
            "resolved_at",
            "dismissed_at",
            "dismiss_reason",
            "outcome",
            "outcome_at",
            "actions",
            "triggers",
            "events",
        ]
        read_only_fields = fields


# Cases a page: each brings its actions, triggers and history in three more queries.
CASES_PAGE = 50


def customer_cases(customer: Customer) -> Any:
    """Every case of the customer, oldest first, with what the export shows of each."""
    return paged(
        RecoveryCase.objects.filter(customer=customer)
        .select_related("playbook", "location")
        .prefetch_related(
            "actions",
            "trigger_links",
            Prefetch("events", queryset=CaseEvent.objects.select_related("location")),
        ),
        size=CASES_PAGE,
    )


# --- erase -----------------------------------------------------------------------------------

# Strings the system writes into a case's history (why it escalated, how it turned out): they
# say nothing of the person, so they stay. Every other string there is someone's words.
SYSTEM_WORDS = frozenset({*(r.value for r in Reason), *Outcome.values, ERASED_REASON, ERASED})
# History keys about staff, not the customer: who a case was assigned to.
STAFF_KEYS = frozenset({"assignee"})


def scrub_event_data(data: Any, *, key: str | None = None) -> Any:
    """The history event's data with every free text replaced (numbers, ids, flags and the
    system's own words stay). Deny by default, so a new key with a note in it is covered."""
    if isinstance(data, dict):
        return {k: scrub_event_data(v, key=k) for k, v in data.items()}
    if isinstance(data, list):
        return [scrub_event_data(v, key=key) for v in data]
    if isinstance(data, str) and data and data not in SYSTEM_WORDS and key not in STAFF_KEYS:
        return ERASED
    return data


def erase_cases(context: ErasureContext) -> dict[str, int]:
    """Clear the texts of the customer's cases, then dismiss the open ones (reason "erased")
    through the lifecycle: history events, case marks and due times as for any dismissal."""
    cases = RecoveryCase.objects.filter(customer_id=context.customer_id)
    actions = (
        CaseAction.objects.filter(case__customer_id=context.customer_id)
        .exclude(text=ERASED)
        .update(text=ERASED)
    )
    reasons = cases.exclude(dismiss_reason__in=("", ERASED)).update(dismiss_reason=ERASED)
    history = CaseEvent.objects.filter(case__customer_id=context.customer_id)
    events = rewrite(history, "data", scrub_event_data)
    # A reminder's line names the person and what happened; once the case is dismissed below
    # nothing needs it to tell one booking from another.
    reminders, _ = CaseReminder.objects.filter(case__customer_id=context.customer_id).delete()

    actor = Actor(user=context.by_user, api_key=context.by_api_key)
    dismissed = 0
    for case in cases.open().order_by("id"):
        dismiss_case(case=case, reason=ERASED_REASON, actor=actor, now=context.now)
        dismissed += 1
    return {
        "case_actions": actions,
        "case_dismiss_reasons": reasons,
        "case_events": events,
        "case_reminders": reminders,
        "cases_dismissed": dismissed,
    }


def register() -> None:
    """Called from RecoveryConfig.ready()."""
    register_export_section(
        ExportSection(
            "cases",
            customer_cases,
            CaseExportSerializer,
            "Recovery and care cases, with their suggested actions, triggers and history.",
        )
    )
    register_erase_step("recovery", erase_cases)
