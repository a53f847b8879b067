from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import API_KEY_PREFIX, ApiKey

# Recording last use on every request would add a write to each POS call; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key cbk_<prefix>_<secret>`; request.auth is the ApiKey."""

    keyword = "Api-Key"

    def authenticate(self, request: Request) -> tuple[AnonymousUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send `Authorization: Api-Key <key>`.")
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid API key.") from exc
        parts = raw_key.split("_", 2)
        if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1].isalnum():
            raise exceptions.AuthenticationFailed("Invalid API key.")
        api_key = (
            ApiKey.objects.active()
            .select_related("organization", "location", "location__organization")
            .filter(prefix=parts[1])
            .first()
        )
        if api_key is None or not api_key.matches(raw_key):
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        self._touch(api_key)
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

    @staticmethod
    def _touch(api_key: ApiKey) -> None:
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            api_key.last_used_at = now


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes `Authorization: Api-Key <key>` in the OpenAPI schema."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, as shown once when the key was created.",
        }
