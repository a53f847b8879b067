from __future__ import annotations

from datetime import date, timedelta

from django.db import models
from django.utils import timezone
from rest_framework import serializers

from accounts.models import Location
from cxcore.api.serializers import (
    DATETIME_OUT,
    EmailAddressField,
    EpisodeSerializer,
    FreeTextField,
    PhoneField,
    StringField,
)
from cxcore.rules import check_date_in_range
from cxcore.vocabulary import EXPERIENCE_MAX, EXPERIENCE_MIN, EpisodeKind, Touchpoint
from recovery.models import CaseAction, CaseEvent, Playbook, RecoveryCase
from recovery.rules import check_action_template, check_sla
from recovery.vocabulary import PLAYBOOK_FIELDS, Standing

MAX_DB_INT = 2**63 - 1


class CaseCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class CaseActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CaseAction
        fields = ["id", "text", "taken_at"]


class CaseEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    location: serializers.SlugRelatedField[Location] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = CaseEvent
        fields = ["type", "at", "actor", "location", "data"]

    def get_actor(self, event: CaseEvent) -> str | None:
        if event.actor_user_id:
            return str(event.actor_user)
        if event.actor_api_key is not None:
            return event.actor_api_key.name
        return None


class CaseSerializer(serializers.ModelSerializer):
    customer = CaseCustomerSerializer(read_only=True)
    location: serializers.SlugRelatedField[Location] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    assignee = serializers.EmailField(source="assignee.email", read_only=True, default=None)
    playbook = serializers.CharField(source="playbook.name", read_only=True, default=None)
    is_overdue = serializers.SerializerMethodField()

    class Meta:
        model = RecoveryCase
        fields = [
            "id",
            "kind",
            "status",
            "severity",
            "customer",
            "location",
            "touchpoints",
            "worst_experience",
            "playbook",
            "show_at_visit",
            "opened_at",
            "ack_due_at",
            "due_at",
            "acknowledged_at",
            "escalated_at",
            "assignee",
            "is_overdue",
            "resolved_at",
            "dismissed_at",
            "outcome",
            "care_reason",
            "why_now",
        ]
        read_only_fields = fields

    def get_is_overdue(self, case: RecoveryCase) -> bool:
        return case.is_overdue(timezone.now())

    def to_representation(self, case: RecoveryCase) -> dict:
        # The queue serialises up to 100 of these per page, and DRF's per-field machinery was
        # half of the page's cost; this builds the same document directly (the declared fields
        # above still describe it in the schema, and the API tests compare the two).
        dt = DATETIME_OUT.to_representation
        return {
            "id": case.pk,
            "kind": case.kind,
            "status": case.status,
            "severity": case.severity,
            "customer": {"id": case.customer.pk, "name": case.customer.name},
            "location": case.location.slug if case.location is not None else None,
            "touchpoints": case.touchpoints,
            "worst_experience": case.worst_experience,
            "playbook": case.playbook.name if case.playbook is not None else None,
            "show_at_visit": case.show_at_visit,
            "opened_at": dt(case.opened_at),
            "ack_due_at": dt(case.ack_due_at),
            "due_at": dt(case.due_at),
            "acknowledged_at": case.acknowledged_at and dt(case.acknowledged_at),
            "escalated_at": case.escalated_at and dt(case.escalated_at),
            "assignee": case.assignee.email if case.assignee is not None else None,
            "is_overdue": self.get_is_overdue(case),
            "resolved_at": case.resolved_at and dt(case.resolved_at),
            "dismissed_at": case.dismissed_at and dt(case.dismissed_at),
            "outcome": case.outcome,
            "care_reason": case.care_reason,
            "why_now": case.why_now,
        }


class CaseDetailSerializer(CaseSerializer):
    triggers = EpisodeSerializer(many=True, read_only=True)
    actions = CaseActionSerializer(many=True, read_only=True)
    history = CaseEventSerializer(source="events", many=True, read_only=True)
    since_opened = EpisodeSerializer(
        many=True, read_only=True, help_text="The customer's episodes since the case opened."
    )
    resolution_episode = serializers.IntegerField(
        source="resolution_episode_id", read_only=True, allow_null=True
    )
    held_out = serializers.BooleanField(
        read_only=True,
        help_text="A care case drawn into the holdout: recorded and measured, never prompted, "
        "queued or worked. Whoever reaches it by its id learns this, so nobody contacts them.",
    )
    variant = serializers.CharField(
        source="variant.name",
        read_only=True,
        default=None,
        help_text="The playbook variant the case drew, while its playbook ran an experiment.",
    )

    class Meta(CaseSerializer.Meta):
        fields = [
            *CaseSerializer.Meta.fields,
            "triggers",
            "actions",
            "history",
            "since_opened",
            "resolution_episode",
            "dismiss_reason",
            "held_out",
            "variant",
        ]
        read_only_fields = fields

    # One case per response: DRF's generic path serves the nested lists.
    def to_representation(self, case: RecoveryCase) -> dict:
        return serializers.ModelSerializer.to_representation(self, case)


class AssignInputSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(
        allow_null=True, min_value=1, max_value=MAX_DB_INT, help_text="A user id, or null."
    )


class ResolveInputSerializer(serializers.Serializer):
    """What was done. The till asks for at least one action or a note; the API, as it always
    has, accepts neither, and then the recovery episode says "Followed up." (for a follow-up
    made and logged elsewhere)."""

    note = FreeTextField(
        required=False, allow_blank=True, max_length=2000, help_text="What was done, in words."
    )
    actions = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_DB_INT),
        required=False,
        max_length=20,
        help_text="Ids of the suggested actions taken.",
    )


class DismissInputSerializer(serializers.Serializer):
    reason = FreeTextField(max_length=500)


class PlaybookSerializer(serializers.ModelSerializer):
    # The model's text fields as JSON strings only (StringField says why).
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StringField,
        models.TextField: StringField,
    }
    match_touchpoints = serializers.ListField(
        child=serializers.ChoiceField(choices=Touchpoint.choices), required=False, max_length=12
    )
    match_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=EpisodeKind.choices), required=False, max_length=10
    )
    match_standing = serializers.ListField(
        child=serializers.ChoiceField(choices=Standing.values), required=False, max_length=3
    )
    match_max_experience = serializers.IntegerField(
        required=False, allow_null=True, min_value=EXPERIENCE_MIN, max_value=EXPERIENCE_MAX
    )
    actions = serializers.ListField(
        child=StringField(max_length=300), required=False, max_length=10
    )

    def validate_actions(self, actions: list[str]) -> list[str]:
        errors = {}
        for index, template in enumerate(actions):
            try:
                check_action_template(template)
            except ValueError as exc:
                errors[index] = [str(exc)]
        if errors:
            # Stubs: DRF keys list members by position (as ListField does); they allow str only.
            raise serializers.ValidationError(errors)  # type: ignore[arg-type]
        return actions

    def _sla(self, value):
        try:
            check_sla(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate_ack_sla(self, value):
        return self._sla(value)

    def validate_resolve_sla(self, value):
        return self._sla(value)

    class Meta:
        model = Playbook
        fields = ["id", "position", *PLAYBOOK_FIELDS]
        read_only_fields = ["id", "position"]


class PlaybookOrderSerializer(serializers.Serializer):
    order = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_DB_INT),
        min_length=1,
        max_length=200,
        help_text="Every playbook id of the organization, in the new matching order.",
    )


class SidebarQuerySerializer(serializers.Serializer):
    customer = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_INT)
    phone = PhoneField(required=False)
    email = EmailAddressField(required=False)
    card = StringField(required=False, max_length=64)
    pos_id = StringField(required=False, max_length=64)
    location = serializers.SlugField(required=False, max_length=60)

    IDENTIFIERS = ("customer", "phone", "email", "card", "pos_id")
    # validate() below, as the schema says it where these are a body (POST /sidebar/); as
    # query parameters, OpenAPI cannot say it (tests/schemathesis_hooks.py knows).
    schema_rules = {"anyOf": [{"required": [name]} for name in IDENTIFIERS]}

    def validate(self, attrs):
        if not any(attrs.get(k) for k in self.IDENTIFIERS):
            raise serializers.ValidationError(
                "Give customer, phone, email, card or pos_id.", code="required"
            )
        return attrs


class SidebarCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    customer_since = serializers.SerializerMethodField()
    visit_count = serializers.IntegerField()
    last_visit_at = serializers.DateTimeField(allow_null=True)
    usual_order = serializers.CharField()
    notes = serializers.CharField()
    last_experience = serializers.IntegerField(allow_null=True)
    last_experience_label = serializers.CharField()
    identifiers = serializers.SerializerMethodField()

    def get_customer_since(self, customer) -> str:
        return (customer.first_seen_at or customer.created_at).date().isoformat()

    def get_identifiers(self, customer) -> list[dict]:
        return [{"kind": i.kind, "value": i.value} for i in customer.identifiers.all()]


class PromptSerializer(serializers.Serializer):
    case = serializers.IntegerField(source="case.pk")
    kind = serializers.CharField(source="case.kind")
    severity = serializers.IntegerField(source="case.severity")
    headline = serializers.CharField(
        help_text="What staff read first: first name, what went wrong, how long ago (≤ 80)."
    )
    second_time = serializers.BooleanField(
        help_text="A second bad experience after a recovery reopened this case."
    )
    what_happened = serializers.CharField()
    happened_at = serializers.DateTimeField(source="trigger.occurred_at", allow_null=True)
    happened_local = serializers.CharField(help_text="In the location's time zone.")
    where = serializers.CharField()
    ago = serializers.CharField()
    acknowledged = serializers.SerializerMethodField()
    actions = CaseActionSerializer(
        source="to_do",
        many=True,
        help_text="What to do now (for a reopened case: for the new deviation).",
    )
    actions_taken = CaseActionSerializer(source="done", many=True)
    care_reason = serializers.CharField(
        source="case.care_reason", help_text="Care cases: lapsing or drifting; else empty."
    )
    why_now = serializers.CharField(
        help_text="Care cases: why this regular is prompted now, in one line; else empty."
    )

    def get_acknowledged(self, prompt) -> bool:
        return prompt.case.acknowledged_at is not None


class SidebarSerializer(serializers.Serializer):
    customer = SidebarCustomerSerializer(allow_null=True)
    prompts = PromptSerializer(many=True)
    episodes = EpisodeSerializer(many=True)


class InsightsQuerySerializer(serializers.Serializer):
    start = serializers.DateField(required=False, help_text="Default: 30 days ago.")
    end = serializers.DateField(required=False, help_text="Default: today.")
    location = serializers.SlugField(required=False, max_length=60)

    def to_internal_value(self, data):
        # `from` and `to` in the query string; Python cannot name fields that way.
        data = data.copy()
        for outer, inner in (("from", "start"), ("to", "end")):
            if outer in data:
                data[inner] = data[outer]
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            names = {"start": "from", "end": "to"}
            raise serializers.ValidationError(
                {names.get(k, k): v for k, v in exc.detail.items()}
                if isinstance(exc.detail, dict)
                else exc.detail
            ) from exc

    def _in_range(self, value: date) -> date:
        try:
            check_date_in_range(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate_start(self, value: date) -> date:
        return self._in_range(value)

    def validate_end(self, value: date) -> date:
        return self._in_range(value)

    def validate(self, attrs):
        today = timezone.localdate()
        attrs.setdefault("end", today)
        attrs.setdefault("start", attrs["end"] - timedelta(days=29))
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"from": ["Must not be after `to`."]})
        if (attrs["end"] - attrs["start"]).days > 366:
            raise serializers.ValidationError({"from": ["At most a year at a time."]})
        return attrs


def insights_json(result) -> dict:
    def rate(r):
        return {"value": r.value, "of": r.denominator, "count": r.numerator}

    return {
        "from": result.start,
        "to": result.end,
        "location": result.location,
        "negative_experiences": result.negative_experiences,
        "cases_opened": result.cases_opened,
        "acknowledged_within_sla": rate(result.acknowledged_in_sla),
        "resolved_within_sla": rate(result.resolved_in_sla),
        "median_hours_to_acknowledge": result.median_hours_to_acknowledge,
        "median_hours_to_resolve": result.median_hours_to_resolve,
        "shown_not_acted_on": result.shown_not_acted_on,
        "open_care_cases": result.open_care_cases,
        "recovery_rate": rate(result.recovery_rate),
        "return_rate_followed_up": rate(result.return_rate_followed_up),
        "return_rate_not_followed_up": rate(result.return_rate_not_followed_up),
        "lift": result.lift,
        "negative_by_touchpoint": dict(result.by_touchpoint),
        "negative_by_third_party_touchpoint": dict(result.third_party),
        "negative_by_location": dict(result.by_location),
        "heat_map": result.heat,
        "negative_by_week": dict(result.by_week),
    }
