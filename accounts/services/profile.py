"""A person's own profile: the name pages show for them (User.display_name)."""

from __future__ import annotations

from accounts.errors import InvalidInput
from accounts.models import User
from accounts.validators import name_problem


def set_display_name(*, user: User, name: str) -> bool:
    """Set the user's name (empty: pages show their email); True if it changed."""
    name = name.strip()
    if len(name) > 150:
        raise InvalidInput("At most 150 characters.", field="name", code="max_length")
    problem = name_problem(name)
    if problem:
        raise InvalidInput(f"Must not hold {problem}.", field="name", code="invalid_characters")
    changed = User.objects.filter(pk=user.pk).exclude(name=name).update(name=name)
    user.name = name
    return bool(changed)
