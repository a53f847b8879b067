from django.http import HttpRequest

from accounts.tenancy import tenant_for_request


def tenant(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"tenant": tenant_for_request(request)}
