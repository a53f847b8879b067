from django.http import HttpRequest

from accounts.services.signup import signup_is_open
from accounts.tenancy import tenant_for_request


def tenant(request: HttpRequest) -> dict:
    """The tenant, and the organizations the top bar's switcher offers (none when the user
    belongs to one only): read with the tenant, no query of its own. Visitors get whether
    sign-up is open, as a callable: templates call it only where they ask (the login page)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"signup_open": signup_is_open}
    current = tenant_for_request(request)
    organizations = current.organizations if current is not None else ()
    return {
        "tenant": current,
        "switch_organizations": organizations if len(organizations) > 1 else (),
    }
