"""The partners' fixed words: an incident's status, and which of them a partner may still act on.

Plain enums with no ORM, beside `cxcore.vocabulary`'s touchpoints (the codes a partner runs).
"""

from django.db import models


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    FIXED = "fixed", "Fixed"
    DISPUTED = "disputed", "Disputed"


# An incident the partner has not closed: it may be answered (again), fixed or disputed.
OPEN_STATUSES = frozenset({IncidentStatus.OPEN, IncidentStatus.ANSWERED})
CLOSED_STATUSES = frozenset({IncidentStatus.FIXED, IncidentStatus.DISPUTED})
