"""Input serializers parse and validate; output serializers shape responses. No side effects."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from accounts.models import Location
from accounts.tenancy import Tenant
from cxcore.models import Customer, Episode, EpisodeKind, RatingScale, Source, Touchpoint
from cxcore.rules import RATING_RANGES
from cxcore.services import EpisodeInput
from cxcore.text_rules import BIDI_CONTROLS, BIDI_REORDERING, FREE_TEXT_CONTROLS_ALLOWED
from cxcore.vocabulary import EXPERIENCE_MAX, EXPERIENCE_MIN

MAX_DB_INT = 2**63 - 1


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with its offset: a POS's local time without one is ambiguous."""

    default_error_messages = {
        "naive": "Give a time zone offset, e.g. 2026-05-01T12:30:00Z or +01:00.",
        "null_characters": "Null characters are not allowed.",
    }

    def to_internal_value(self, value: Any):
        if isinstance(value, str) and "\x00" in value:
            self.fail("null_characters")
        return super().to_internal_value(value)

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


class StringField(serializers.CharField):
    """Text that must arrive as a JSON string. DRF's CharField also takes 12 or 1.5 and keeps
    "12": the schema says string, so a number is a 400 naming the field, as any wrong type is."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def run_validation(self, data: Any = empty) -> Any:
        # The length as sent, as the schema's maxLength counts it: DRF trims the ends first, so
        # 500 characters and a trailing space would pass for 500.
        if isinstance(data, str) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


def char_class(chars: Iterable[str]) -> str:
    """The body of a regex character class for `chars` (runs as ranges), as JSON Schema and
    Python both read it."""
    codes = sorted({ord(char) for char in chars})
    runs: list[list[int]] = []
    for code in codes:
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(
        f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in runs
    )


CONTROL_CHARACTERS = [chr(code) for code in range(0x100) if unicodedata.category(chr(code)) == "Cc"]


class NameField(StringField):
    """A name: cxcore.text_rules refuses control and text direction characters in it (the
    service checks; this says so in the schema, cxcore.api.schema.text_pattern)."""

    forbidden_chars = char_class([*CONTROL_CHARACTERS, *BIDI_CONTROLS])


class FreeTextField(StringField):
    """Free text: no control character but tab and newlines, no text direction override."""

    forbidden_chars = char_class(
        [*set(CONTROL_CHARACTERS) - FREE_TEXT_CONTROLS_ALLOWED, *BIDI_REORDERING]
    )


@extend_schema_field(
    {"type": "string", "format": "phone", "maxLength": 40, "example": "+44 20 7946 0018"}
)
class PhoneField(StringField):
    """A phone number, with or without its country code (then the organization's country's);
    `cxcore.rules.normalize_phone` decides (a 400 naming the field if it is not one)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=40, **kwargs)


@extend_schema_field({"type": "string", "format": "email", "maxLength": 254})
class EmailAddressField(StringField):
    """An email address, compared case-insensitively (`cxcore.rules.normalize_identifier`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=254, **kwargs)


class CustomerRefSerializer(serializers.Serializer):
    """The customer by id, or by any identifiers (unknown identifiers create the customer)."""

    id = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_INT)
    phone = PhoneField(required=False)
    email = EmailAddressField(required=False)
    card = StringField(required=False, max_length=64)
    pos_id = StringField(required=False, max_length=64)
    name = NameField(required=False, allow_blank=True, max_length=200)

    IDENTIFIERS = ("phone", "email", "card", "pos_id")
    # validate() below, as the schema says it (cxcore.api.schema).
    schema_rules = {"anyOf": [{"required": [name]} for name in ("id", *IDENTIFIERS)]}

    def validate(self, attrs: dict) -> dict:
        if "id" not in attrs and not any(attrs.get(k) for k in self.IDENTIFIERS):
            raise serializers.ValidationError(
                "Give the customer's id or at least one of phone, email, card, pos_id.",
                code="required",
            )
        return attrs


class RatingSerializer(serializers.Serializer):
    scale = serializers.ChoiceField(choices=RatingScale.choices)
    value = serializers.IntegerField(min_value=0, max_value=10)
    # validate() below, as the schema says it: each scale's own range.
    schema_rules = {
        "oneOf": [
            {
                # A pattern, not an enum: drf-spectacular would make an enum a component.
                "properties": {
                    "scale": {"pattern": f"^{scale}$"},
                    "value": {"minimum": low, "maximum": high},
                }
            }
            for scale, (low, high) in RATING_RANGES.items()
        ]
    }

    def validate(self, attrs: dict) -> dict:
        low, high = RATING_RANGES[attrs["scale"]]
        if not low <= attrs["value"] <= high:
            raise serializers.ValidationError(
                {"value": [f"A {attrs['scale']} rating is between {low} and {high}."]}
            )
        return attrs


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": list(Touchpoint.values)},
            {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "enum": list(Touchpoint.values)},
                    "third_party": {"type": "boolean"},
                },
                "required": ["code"],
            },
        ]
    }
)
class TouchpointField(serializers.Field):
    """A touchpoint code, or {"code": …, "third_party": true} for one run by a partner."""

    default_error_messages = {
        "invalid": "Give a touchpoint code or an object with code and third_party.",
        "unknown": "Unknown touchpoint {value!r}; one of: {choices}.",
    }

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, str):
            code, third_party = data, False
        elif isinstance(data, dict) and isinstance(data.get("code"), str):
            code, third_party = data["code"], data.get("third_party", False)
            if not isinstance(third_party, bool):
                self.fail("invalid")
        else:
            self.fail("invalid")
        if code not in Touchpoint.values:
            self.fail("unknown", value=code[:40], choices=", ".join(Touchpoint.values))
        return {"code": code, "third_party": third_party}

    def to_representation(self, value: dict) -> dict:
        return value


# A price as text, exactly: DRF's DecimalField would also take "+3", "-0", ".5", "1e2" and
# floats (inexact for money), none of which a schema pattern can say.
PRICE_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "pattern": PRICE_PATTERN, "example": "3.60"},
            {"type": "integer", "minimum": 0, "maximum": 99_999_999},
        ]
    }
)
class PriceField(serializers.DecimalField):
    """Up to 99,999,999.99: text like "3.60", or a whole number."""

    default_error_messages = {
        "price": 'A price like "3.60" (up to 8 digits and 2 decimals), or a whole number.'
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=10, decimal_places=2, min_value=0, **kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        # Only null is no price: DecimalField would read "" and "  " as null too.
        result: tuple[bool, Any] = serializers.Field.validate_empty_values(self, data)
        return result

    def to_internal_value(self, data: Any) -> Any:
        exact = isinstance(data, str) and re.fullmatch(PRICE_PATTERN, data)
        if isinstance(data, bool) or not (exact or isinstance(data, int)):
            self.fail("price")
        return super().to_internal_value(data)


class ItemSerializer(serializers.Serializer):
    name = NameField(max_length=200)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    price = PriceField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> dict:
        value = super().to_internal_value(data)
        if value.get("price") is not None:
            value["price"] = str(value["price"])  # stored in JSON, so keep it exact as text
        return value


class EpisodeInputSerializer(serializers.Serializer):
    customer = CustomerRefSerializer()
    kind = serializers.ChoiceField(choices=EpisodeKind.choices)
    occurred_at = AwareDateTimeField(required=False, help_text="Default: now.")
    location = serializers.SlugField(
        required=False, max_length=60, help_text="Location slug; default: the key's location."
    )
    experience = serializers.IntegerField(
        required=False, allow_null=True, min_value=EXPERIENCE_MIN, max_value=EXPERIENCE_MAX,
        help_text="-2 very negative … +2 delighted.",
    )  # fmt: skip
    rating = RatingSerializer(required=False, allow_null=True)
    touchpoints = serializers.ListField(child=TouchpointField(), required=False, max_length=12)
    summary = FreeTextField(required=False, allow_blank=True, max_length=4000)
    items = serializers.ListField(child=ItemSerializer(), required=False, max_length=100)
    # Stubs: SerializerMetaclass pops declared fields, so this never shadows Field.source.
    source = serializers.ChoiceField(choices=Source.choices, required=False)  # type: ignore[assignment]
    external_id = StringField(required=False, allow_blank=True, max_length=128)
    # validate() below, as the schema says it: an experience or a rating, not both.
    schema_rules = {
        "not": {
            "required": ["experience", "rating"],
            "properties": {"experience": {"type": "integer"}, "rating": {"type": "object"}},
        }
    }

    def validate_touchpoints(self, value: list[dict]) -> list[dict]:
        merged: dict[str, bool] = {}
        for touchpoint in value:
            merged[touchpoint["code"]] = (
                merged.get(touchpoint["code"], False) or touchpoint["third_party"]
            )
        return [{"code": code, "third_party": tp} for code, tp in merged.items()]

    def validate(self, attrs: dict) -> dict:
        if attrs.get("experience") is not None and attrs.get("rating"):
            raise serializers.ValidationError(
                {"experience": ["Give either experience or rating, not both."]}, code="ambiguous"
            )
        return attrs

    def to_input(
        self, *, tenant: Tenant, default_source: str, location_cache: dict | None = None
    ) -> EpisodeInput:
        return self.input_from(
            self.validated_data,
            tenant=tenant,
            default_source=default_source,
            location_cache=location_cache,
        )

    @staticmethod
    def input_from(
        data: dict, *, tenant: Tenant, default_source: str, location_cache: dict | None = None
    ) -> EpisodeInput:
        ref = data["customer"]
        slug = data.get("location")
        if location_cache is not None and slug in location_cache:
            location: Location | None = location_cache[slug]
        else:
            location = tenant.resolve_location(slug)
            if location_cache is not None:
                location_cache[slug] = location
        return EpisodeInput(
            kind=data["kind"],
            occurred_at=data.get("occurred_at"),
            customer_id=ref.get("id"),
            identifiers={k: ref[k] for k in CustomerRefSerializer.IDENTIFIERS if ref.get(k)},
            name=ref.get("name", ""),
            location=location,
            source=data.get("source") or default_source,
            external_id=data.get("external_id", ""),
            summary=data.get("summary", ""),
            touchpoints=data.get("touchpoints", []),
            items=data.get("items", []),
            experience=data.get("experience"),
            rating=data.get("rating"),
        )


class BulkEpisodesInputSerializer(serializers.Serializer):
    episodes = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=1000, allow_empty=False
    )


class ExperienceCorrectionInputSerializer(serializers.Serializer):
    experience = serializers.IntegerField(
        allow_null=True, min_value=EXPERIENCE_MIN, max_value=EXPERIENCE_MAX
    )
    reason = FreeTextField(required=False, allow_blank=True, max_length=500)


class LocationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Location
        fields = ["slug", "name", "time_zone"]


class RatingOutSerializer(serializers.Serializer):
    scale = serializers.CharField()
    value = serializers.IntegerField()


class EpisodeSerializer(serializers.ModelSerializer):
    customer = serializers.IntegerField(source="customer_id", read_only=True)
    location: serializers.SlugRelatedField[Location] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    touchpoints = serializers.ListField(child=TouchpointField(), read_only=True)
    items = serializers.ListField(child=serializers.DictField(), read_only=True)
    rating = serializers.SerializerMethodField()

    class Meta:
        model = Episode
        fields = [
            "id",
            "customer",
            "kind",
            "occurred_at",
            "recorded_at",
            "location",
            "source",
            "external_id",
            "summary",
            "touchpoints",
            "items",
            "experience",
            "experience_source",
            "rating",
        ]
        read_only_fields = fields

    @extend_schema_field(RatingOutSerializer(allow_null=True))
    def get_rating(self, episode: Episode) -> dict | None:
        if not episode.rating_scale:
            return None
        return {"scale": episode.rating_scale, "value": episode.rating_value}

    def to_representation(self, episode: Episode) -> dict:
        # Sidebars, timelines and bulk results serialise 20 to 1,000 of these, and DRF's
        # per-field machinery was most of that cost; this builds the same document directly
        # (the declared fields still describe it, and a test compares the two).
        dt = DATETIME_OUT.to_representation
        return {
            "id": episode.pk,
            "customer": episode.customer_id,
            "kind": episode.kind,
            "occurred_at": dt(episode.occurred_at),
            "recorded_at": dt(episode.recorded_at),
            "location": episode.location.slug if episode.location is not None else None,
            "source": episode.source,
            "external_id": episode.external_id,
            "summary": episode.summary,
            "touchpoints": list(episode.touchpoints),
            "items": [{str(k): v for k, v in item.items()} for item in episode.items],
            "experience": episode.experience,
            "experience_source": episode.experience_source,
            "rating": self.get_rating(episode),
        }


# One output field for hand-built documents: the same format and zone as DRF's own.
DATETIME_OUT = serializers.DateTimeField()


class IdentifierOutSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField()


class CustomerSerializer(serializers.ModelSerializer):
    identifiers = IdentifierOutSerializer(many=True, read_only=True)
    last_experience_label = serializers.CharField(read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "notes",
            "identifiers",
            "created_at",
            "first_seen_at",
            "last_visit_at",
            "visit_count",
            "episode_count",
            "last_experience",
            "last_experience_label",
            "last_experience_at",
            "last_negative_at",
            "last_follow_up_at",
            "usual_order",
        ]
        read_only_fields = [f for f in fields if f not in ("name", "notes")]


class CustomerUpdateSerializer(serializers.Serializer):
    name = NameField(required=False, allow_blank=True, max_length=200)
    notes = FreeTextField(required=False, allow_blank=True, max_length=2000)


class BulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "duplicate", "error"])
    episode = EpisodeSerializer(required=False)
    # Stubs: SerializerMetaclass pops declared fields, so this never shadows Serializer.errors.
    errors = serializers.ListField(child=serializers.DictField(), required=False)  # type: ignore[assignment]


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BulkItemResultSerializer(many=True)


class CustomerQuerySerializer(serializers.Serializer):
    phone = PhoneField(required=False)
    email = EmailAddressField(required=False)
    card = StringField(required=False, max_length=64)
    pos_id = StringField(required=False, max_length=64)
    q = StringField(required=False, max_length=100)
