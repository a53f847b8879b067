"""Domain errors of our own, mapped to HTTP in one place (`cxcore.api.errors`).

They live in the lowest layer, so every app may raise them without importing upwards. Each names
the field at fault and carries a stable code.
"""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code or self.default_code


class InvalidInput(DomainError):
    status_code = 400
    default_code = "invalid"


class InvalidFields(InvalidInput):
    """Several field errors at once, each {"field", "code", "message"}."""

    def __init__(self, errors: list[dict]):
        first = errors[0]
        super().__init__(first["message"], field=first["field"], code=first["code"])
        self.errors = errors


class NotFoundError(DomainError):
    status_code = 404
    default_code = "not_found"

    def __init__(self, message: str = "Not found.", *, field: str | None = None, code=None):
        super().__init__(message, field=field, code=code)


class ForbiddenError(DomainError):
    """The actor may not do this here (its role, its key, its locations): a 403."""

    status_code = 403
    default_code = "forbidden"


class ConflictError(DomainError):
    status_code = 409
    default_code = "conflict"


class IdempotencyKeyReused(DomainError):
    status_code = 422
    default_code = "idempotency_key_reused"
