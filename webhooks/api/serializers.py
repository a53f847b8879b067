"""What the webhooks API answers. Input is checked by webhooks.services (field by field)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.services import DESCRIPTION_MAX_LENGTH, URL_MAX_LENGTH
from webhooks.vocabulary import SUBSCRIBABLE


@extend_schema_field(
    {"type": "string", "format": "uri", "pattern": "^https://", "maxLength": URL_MAX_LENGTH}
)
class HttpsURLField(serializers.URLField):
    """For the schema: a webhook URL is https (webhooks.transport.check_url)."""


class EndpointInputSerializer(serializers.Serializer):
    """For the schema only: the body of POST and PATCH (webhooks.services checks it)."""

    url = HttpsURLField(max_length=URL_MAX_LENGTH, help_text="https only, a public address.")
    events = serializers.ListField(
        child=serializers.ChoiceField(sorted(SUBSCRIBABLE)), min_length=1
    )
    description = serializers.CharField(
        max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True
    )

    # A misspelt field ("enabeld": false) is a 400, not silently ignored (webhooks.services).
    schema_rules = {"additionalProperties": False}


class EndpointPatchSerializer(EndpointInputSerializer):
    """For the schema only: PATCH names any of the fields, and may turn the endpoint off or on."""

    url = HttpsURLField(
        max_length=URL_MAX_LENGTH, required=False, help_text="https only, a public address."
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(sorted(SUBSCRIBABLE)), required=False, min_length=1
    )
    enabled = serializers.BooleanField(required=False)


class EndpointSerializer(serializers.ModelSerializer):
    enabled = serializers.BooleanField(source="is_enabled", read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "enabled",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "previous_secret_until",
            "created_at",
        ]
        read_only_fields = fields


class EndpointWithSecretSerializer(EndpointSerializer):
    """The answer to a creation: the endpoint and its secret, which is shown this once."""

    secret = serializers.SerializerMethodField()

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, endpoint: WebhookEndpoint) -> str:
        return self.context["secret"]


class RotatedSecretSerializer(serializers.Serializer):
    secret = serializers.CharField()
    previous_secret_until = serializers.DateTimeField()


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "at", "status_code", "response", "error", "duration_ms"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(source="event.webhook_id", read_only=True)
    type = serializers.CharField(source="event.type", read_only=True)
    endpoint = serializers.IntegerField(source="endpoint_id", read_only=True)
    log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "webhook_id",
            "type",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "delivered_at",
            "created_at",
            "log",
        ]
        read_only_fields = fields


class DeliveryPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = DeliverySerializer(many=True)


class EventSerializer(serializers.ModelSerializer):
    """An event as webhooks carry it, with its webhook-id."""

    id = serializers.CharField(source="webhook_id", read_only=True)
    timestamp = serializers.DateTimeField(source="occurred_at", read_only=True)

    class Meta:
        model = WebhookEvent
        fields = ["id", "type", "timestamp", "data"]
        read_only_fields = fields


class EventPageSerializer(serializers.Serializer):
    after = serializers.CharField(
        allow_null=True, help_text="Pass as ?after= to get the events that follow."
    )
    next = serializers.URLField(allow_null=True)
    results = EventSerializer(many=True)
