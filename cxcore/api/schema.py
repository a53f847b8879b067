"""The project's schema generator: drf-spectacular's, plus what every operation shares."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

from cxcore.api.errors import ErrorBodySchemaSerializer


class ThrottledAutoSchema(AutoSchema):
    """Documents the 429 (with its headers) on every operation a throttle counts."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None or not self.view.get_throttles():
            return operation
        bulk = self.path.rstrip("/").endswith(("/bulk", "/import"))
        rates = "API_THROTTLE_RATE" + (" and API_BULK_THROTTLE_RATE" if bulk else "")
        error = self.resolve_serializer(ErrorBodySchemaSerializer, "response")
        text = {"type": "string"}
        operation.setdefault("responses", {})["429"] = {
            "description": (
                f"Too many requests from this API key or user ({rates}, per minute by default)."
            ),
            "headers": {
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "Seconds until the quota resets.",
                },
                "RateLimit-Policy": {
                    "schema": text,
                    "description": "The quotas, e.g. `1200;w=60` (ratelimit-headers draft 07).",
                },
                "RateLimit": {
                    "schema": text,
                    "description": "The tightest quota, e.g. `limit=1200, remaining=0, reset=42`.",
                },
            },
            "content": {"application/json": {"schema": error.ref}},
        }
        return operation
