"""What the pages only owners and managers open share."""

from __future__ import annotations

from accounts.models import Role
from accounts.tenancy import TenantPageMixin
from recovery.services import Actor

MANAGERS = (Role.OWNER, Role.MANAGER)


class ManagersPageMixin(TenantPageMixin):
    """A page for owners and managers only (staff get a 403 page saying so, non-members a
    404); what they do on it is recorded as theirs."""

    required_roles = MANAGERS

    def actor(self) -> Actor:
        return Actor(user=self.tenant.user)
