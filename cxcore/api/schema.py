"""The project's schema generator: drf-spectacular's, plus what every operation shares.

Views document their successes (and the errors only they answer); this documents, once, the
errors and headers that come from machinery every view shares, so the schema says what the API
answers (schemathesis checks it, tests/test_schemathesis.py):

- 400 where there is input (a body, a query or header parameter), 401 and 403 everywhere (no
  or a bad credential; a member of no organization, a role or location that may not), 404
  where the path names an object, 413 and 415 where there is a body, 503 (the database is
  unreachable, with Retry-After) everywhere;
- 409 and 422 where the operation honours `Idempotency-Key` (that key still running; that key
  reused with another body), and the `Idempotent-Replayed` header on its replays;
- 429 with Retry-After, and the RateLimit fields on every answer, where a throttle counts.

Every error has the body of `cxcore.api.errors.error_body`. The responses and headers are
components, so each operation names them by reference.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, get_doc
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from cxcore.api.errors import ErrorBodySchemaSerializer

TEXT = {"type": "string"}
# An OpenApiParameter extension: `?name=` is a 400 here, not the parameter left out.
EMPTY_VALUE_REFUSED = "x-empty-value-refused"
HEADERS: dict[str, dict[str, Any]] = {
    "RetryAfter": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before trying again.",
    },
    "RateLimitPolicy": {
        "schema": TEXT,
        "description": "The quotas, e.g. `1200;w=60` (ratelimit-headers draft 07).",
    },
    "RateLimit": {
        "schema": TEXT,
        "description": "The tightest quota, e.g. `limit=1200, remaining=0, reset=42`.",
    },
    "IdempotentReplayed": {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "Present when this is the stored answer to an earlier request with the "
        "same Idempotency-Key.",
    },
}
HEADER_NAMES = {
    "RetryAfter": "Retry-After",
    "RateLimitPolicy": "RateLimit-Policy",
    "RateLimit": "RateLimit",
    "IdempotentReplayed": "Idempotent-Replayed",
}
RATE_LIMIT_HEADERS = ("RateLimitPolicy", "RateLimit")

# status: (component name, description, header components)
ERRORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "400": (
        "BadRequest",
        "The input is invalid: `errors` names each field at fault (`field` is null for the "
        "body as a whole) with a stable `code`. Nothing was changed.",
        (),
    ),
    "401": ("NotAuthenticated", "No credential, or an invalid or revoked API key.", ()),
    "403": (
        "PermissionDenied",
        "Authenticated, but not allowed: a member of no organization, a role that may not do "
        "this, a location this key or member may not act at, or a session without its CSRF "
        "token.",
        (),
    ),
    "404": (
        "NotFound",
        "No such object in this organization (another organization's objects are not found "
        "either).",
        (),
    ),
    "409": (
        "Conflict",
        "The request conflicts with the current state (for an Idempotency-Key: a request with "
        "that key is still running; retry later).",
        (),
    ),
    "413": ("PayloadTooLarge", "The body is larger than API_MAX_BODY_BYTES.", ()),
    "415": ("UnsupportedMediaType", "The body is not `application/json`.", ()),
    "422": (
        "IdempotencyKeyReused",
        "This Idempotency-Key was used before with another request body.",
        (),
    ),
    "429": (
        "Throttled",
        "Too many requests from this API key or user (API_THROTTLE_RATE, and "
        "API_BULK_THROTTLE_RATE on the bulk routes; per minute by default).",
        ("RetryAfter", *RATE_LIMIT_HEADERS),
    ),
    "503": (
        "Unavailable",
        "The database is unreachable; retry after the given seconds. Nothing was changed.",
        ("RetryAfter",),
    ),
}


def error_response(description: str) -> OpenApiResponse:
    """An error a view answers for reasons of its own (say which), in the API's error body."""
    return OpenApiResponse(ErrorBodySchemaSerializer, description)


# The episode and visit writes: a reference in the body that is not there.
NO_SUCH_CUSTOMER_OR_LOCATION = error_response(
    "No customer with that `customer.id`, or no location with that slug that this key or "
    "member may use."
)


CUSTOMER_ERASED = error_response(
    "The customer was erased: nothing more is recorded about them (code `customer_erased`)."
)
# The episode and visit writes: an erased customer named by id, or an Idempotency-Key in use.
CUSTOMER_ERASED_OR_KEY_IN_USE = error_response(
    "The customer named by `customer.id` was erased (code `customer_erased`), or a request "
    "with this Idempotency-Key is still running (code `in_progress`; retry later)."
)


def results_list(name: str, item: serializers.BaseSerializer) -> serializers.Serializer:
    """For the schema only: a list the API answers as `{"results": [...]}`, as its pages are."""
    serializer: serializers.Serializer = inline_serializer(name, fields={"results": item})
    return serializer


def header_refs(names: tuple[str, ...]) -> dict[str, Any]:
    return {HEADER_NAMES[n]: {"$ref": f"#/components/headers/{n}"} for n in names}


class ThrottledAutoSchema(AutoSchema):
    """Adds the shared error responses and headers (see the module's docstring) to every
    operation, and marks nullable what the model lets be null."""

    def get_description(self) -> str:  # type: ignore[override]  # as drf-spectacular's own
        """The action's or the view's own docstring, never one the view inherits: the bases'
        docstrings (TenantAPIMixin's, say) are written for our developers, not a POS's."""
        description = super().get_description()
        inherited = {
            get_doc(base) for base in type(self.view).__mro__[1:] if base.__dict__.get("__doc__")
        }
        return "" if description in inherited else description

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return operation
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        has_input = has_body or any(p.get("in") != "path" for p in parameters)
        idempotent = any(
            p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters
        )
        throttled = bool(self.view.get_throttles())
        codes = {"401", "403", "503"}
        if has_input:
            codes.add("400")
        if any(p.get("in") == "path" for p in parameters):
            codes.add("404")
        if has_body:
            codes |= {"413", "415"}
        if idempotent:
            codes |= {"409", "422"}
        if throttled:
            codes.add("429")

        for parameter in parameters:
            refused = parameter.pop(EMPTY_VALUE_REFUSED, False)
            if parameter.get("in") == "query" and not parameter.get("required") and not refused:
                # DRF's serializers and django-filter read `?name=` as no value at all; a
                # parameter read by hand may refuse it instead, and says so (page_size).
                parameter["allowEmptyValue"] = True

        rules = getattr(self.get_request_serializer(), "schema_rules", None) if has_body else None
        if isinstance(rules, dict) and {"anyOf", "required"} & set(rules):
            # A body whose fields are required together (at least one identifier) is itself
            # required: without one the answer is the same 400.
            operation["requestBody"]["required"] = True

        responses = operation.setdefault("responses", {})
        success = [r for code, r in responses.items() if code.startswith("2")]
        for response in success:
            names = (RATE_LIMIT_HEADERS if throttled else ()) + (
                ("IdempotentReplayed",) if idempotent else ()
            )
            if names and "$ref" not in response:
                response.setdefault("headers", {}).update(header_refs(names))
        for code in sorted(codes):
            if code not in responses:  # what a view says of its own errors stands
                responses[code] = {"$ref": f"#/components/responses/{self.error_response(code)}"}
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_response(self, code: str) -> str:
        name, description, headers = ERRORS[code]
        error = self.resolve_serializer(ErrorBodySchemaSerializer, "response")
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": error.ref}},
        }
        if headers:
            response["headers"] = header_refs(headers)
            for header in headers:
                self.registry.register_on_missing(
                    ResolvedComponent(
                        header, ResolvedComponent.HEADER, schema=HEADERS[header], object=header
                    )
                )
        self.registry.register_on_missing(
            ResolvedComponent(name, ResolvedComponent.RESPONSE, schema=response, object=name)
        )
        return name

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        for header in (*RATE_LIMIT_HEADERS, "IdempotentReplayed"):
            self.registry.register_on_missing(
                ResolvedComponent(
                    header, ResolvedComponent.HEADER, schema=HEADERS[header], object=header
                )
            )
        return bodies

    def _map_basic_serializer(
        self, serializer: serializers.Serializer, direction: Any
    ) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        # What the serializer's validate() requires of its fields together, where JSON Schema
        # can say it (at least one identifier; a rating's range by its scale).
        extra = getattr(serializer, "schema_rules", None)
        if direction == "request" and extra:
            schema.update(extra() if callable(extra) else extra)
        return schema

    def _map_serializer_field(
        self, field: serializers.Field, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        # A read-only field declared by hand (`SlugRelatedField(source="location")`,
        # `CharField(source="playbook.name", default=None)`), or one ModelSerializer built and
        # then stripped of `allow_blank` for being read-only, answers what the model holds:
        # null through a nullable foreign key, "" from a blank choice. Say so, from the model.
        if direction == "response" and field.read_only:
            null, blank = model_allows(field)
            if null and not field.allow_null:
                field.allow_null = True
            if blank and isinstance(field, serializers.ChoiceField):
                field.allow_blank = True
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request" and is_text(field) and not {"pattern", "format"} & set(schema):
            schema["pattern"] = text_pattern(field)
        return schema


def is_text(field: serializers.Field) -> TypeGuard[serializers.CharField]:
    """Free text: a CharField that is not a choice, email, URL, slug or other formatted kind."""
    return isinstance(field, serializers.CharField) and not isinstance(
        field,
        serializers.EmailField
        | serializers.RegexField
        | serializers.URLField
        | serializers.UUIDField
        | serializers.IPAddressField,
    )


def text_pattern(field: serializers.CharField) -> str:
    """What DRF's CharField accepts, as a JSON Schema pattern: never a NUL character (it refuses
    them, and PostgreSQL cannot store one) nor what the field's `forbidden_chars` names (a
    regex class body, "\\x00" included), and, unless blank is allowed, something besides
    whitespace (it strips the ends, then refuses what is left empty). A blank one is the other
    branch of the `oneOf` drf-spectacular writes for a field that may be blank."""
    forbidden = getattr(field, "forbidden_chars", r"\x00")  # NameField, FreeTextField say more
    if field.allow_blank or not field.trim_whitespace:
        return rf"^[^{forbidden}]+$"
    return rf"^[^{forbidden}]*[^\s{forbidden}][^{forbidden}]*$"


def model_allows(field: serializers.Field) -> tuple[bool, bool]:
    """(null, blank) for the model field a serializer field reads, through its dotted source:
    null if any foreign key on the way, or the field itself, may be null."""
    model = getattr(getattr(field.parent, "Meta", None), "model", None)
    if model is None or not field.source or field.source == "*":
        return False, False
    null = False
    model_field: Any = None
    for name in field.source.split("."):
        if model is None:
            return null, False
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return null, False
        if not isinstance(model_field, models.Field) or model_field.many_to_many:
            return null, False  # a reverse or many-to-many relation is a list, never null
        null = null or model_field.null
        model = model_field.related_model if model_field.is_relation else None
    return null, bool(model_field.blank and model_field.choices)
