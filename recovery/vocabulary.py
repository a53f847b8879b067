"""Recovery's fixed vocabulary, each list written once and derived everywhere else: case kinds,
statuses, severities and outcomes, customer standings, the playbook's editable fields and the
placeholders its action texts may use.

Plain enums with no ORM, so the pure rules (`recovery.rules`, `recovery.lifecycle`) use them
without the database. The case marks on the customer row are cxcore's (`cxcore.rules.CaseMarks`).
"""

from __future__ import annotations

from django.db import models


class CaseKind(models.TextChoices):
    RECOVERY = "recovery", "Recovery"
    CARE = "care", "Care"


class CareReason(models.TextChoices):
    """Why a care case opened: a regular far past their rhythm, or experiences sliding."""

    LAPSING = "lapsing", "Lapsing"
    DRIFTING = "drifting", "Drifting"


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"


class Severity(models.IntegerChoices):
    LOW = 1, "Low"
    MEDIUM = 2, "Medium"
    HIGH = 3, "High"
    CRITICAL = 4, "Critical"


class Outcome(models.TextChoices):
    RECOVERED = "recovered", "Came back happy"
    CAME_BACK_UNHAPPY = "came_back_unhappy", "Came back unhappy"
    LOST = "lost", "Did not come back"


class Standing(models.TextChoices):
    """Who the customer is to the business, for matching playbooks."""

    FIRST_TIMER = "first_timer", "First-timer"
    REGULAR = "regular", "Regular"
    HIGH_SPENDER = "high_spender", "High spender"


class Placeholder(models.TextChoices):
    """What a suggested action's text may mention, filled per customer (`render_action`)."""

    FIRST_NAME = "first_name", "the customer's first name"
    USUAL_ORDER = "usual_order", "their usual order"
    TOUCHPOINT = "touchpoint", "what went wrong (the touchpoint)"
    WHEN = "when", "the day it happened"
    LOCATION = "location", "where it happened"


def placeholder_help() -> str:
    """'Placeholders: {first_name}, …': the help text of every action editor."""
    return "Placeholders: " + ", ".join("{" + p + "}" for p in Placeholder.values) + "."


# What owners and managers may set on a playbook (the API, the web form and the service).
PLAYBOOK_FIELDS = (
    "name",
    "is_active",
    "case_kind",
    "match_touchpoints",
    "match_third_party",
    "match_max_experience",
    "match_kinds",
    "match_standing",
    "actions",
    "ack_sla",
    "resolve_sla",
    "escalate_to",
    "show_at_visit",
)
