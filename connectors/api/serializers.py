"""Input serializers parse and validate; output serializers shape responses. No side effects."""

from __future__ import annotations

from rest_framework import serializers

from accounts.tenancy import Tenant
from connectors.checks import CheckInput, CheckLine, LineStatus
from connectors.reasons import MAX_ENTRIES, MAX_PHRASE
from cxcore.api.serializers import (
    AwareDateTimeField,
    CustomerRefSerializer,
    EpisodeSerializer,
    FreeTextField,
    NameField,
    PriceField,
    StringField,
)
from cxcore.vocabulary import Touchpoint


class SquareConnectInputSerializer(serializers.Serializer):
    signature_key = StringField(max_length=200)
    locations = serializers.DictField(
        child=StringField(max_length=60),
        allow_empty=True,
        required=False,
        help_text='{"<Square location id>": "<our location slug>"}',
    )


class SquareConnectionSerializer(serializers.Serializer):
    """A connection as its owner sees it; the signature key is never sent back."""

    notification_url = serializers.URLField()
    locations = serializers.DictField(child=serializers.CharField())
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    events = serializers.ListField(child=serializers.CharField())


class SquareNotificationResultSerializer(serializers.Serializer):
    outcome = serializers.CharField()


class CheckLineSerializer(serializers.Serializer):
    # As an episode's item and its text are (the line becomes both): the schema says which
    # characters cxcore.text_rules refuses.
    name = NameField(max_length=200)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    price = PriceField(required=False, allow_null=True)
    status = serializers.ChoiceField(choices=LineStatus.ALL, default=LineStatus.OK)
    reason = FreeTextField(max_length=200, required=False, allow_blank=True, default="")


class CheckInputSerializer(serializers.Serializer):
    customer = CustomerRefSerializer()
    location = serializers.SlugField(
        required=False, max_length=60, help_text="Location slug; default: the key's location."
    )
    occurred_at = AwareDateTimeField(required=False, help_text="Default: now.")
    external_id = StringField(
        max_length=100, help_text="The POS's check id: a retry with it returns the first result."
    )
    lines = serializers.ListField(
        child=CheckLineSerializer(), min_length=1, max_length=100, allow_empty=False
    )

    def to_input(self, *, tenant: Tenant) -> CheckInput:
        data = self.validated_data
        ref = data["customer"]
        return CheckInput(
            external_id=data["external_id"],
            lines=[CheckLine(**line) for line in data["lines"]],
            occurred_at=data.get("occurred_at"),
            location=tenant.resolve_location(data.get("location")),
            customer_id=ref.get("id"),
            identifiers={k: ref[k] for k in CustomerRefSerializer.IDENTIFIERS if ref.get(k)},
            name=ref.get("name", ""),
        )


class CheckSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    order = EpisodeSerializer()
    incidents = EpisodeSerializer(many=True)


class ReasonEntrySerializer(serializers.Serializer):
    phrase = StringField(
        max_length=MAX_PHRASE,
        help_text="Words the reason contains (case and punctuation aside; one with no letter "
        "or digit is left out).",
    )
    touchpoint = serializers.ChoiceField(choices=Touchpoint.choices)
    never_came = serializers.BooleanField(default=False, help_text="-2 instead of -1.")


class ReasonMapSchemaSerializer(serializers.Serializer):
    """For the schema only: the map is parsed by connectors.reasons.validate_entries, which
    names the entry at fault (entries[2].touchpoint) and reads no boolean from a string."""

    entries = serializers.ListField(child=ReasonEntrySerializer(), max_length=MAX_ENTRIES)
