"""The narrative's fixed vocabulary: kinds, sources, touchpoints, the experience scale.

Plain enums with no ORM, so the pure rules (`cxcore.rules`) can use them without the database.
"""

from django.db import models

EXPERIENCE_MIN, EXPERIENCE_MAX = -2, 2


class IdentifierKind(models.TextChoices):
    PHONE = "phone", "Phone"
    EMAIL = "email", "Email"
    CARD = "card", "Loyalty card"
    POS_ID = "pos_id", "POS customer id"


class EpisodeKind(models.TextChoices):
    VISIT = "visit", "Visit"
    ORDER = "order", "Order"
    FEEDBACK = "feedback", "Feedback"
    COMPLAINT = "complaint", "Complaint"
    COMPLIMENT = "compliment", "Compliment"
    INCIDENT = "incident", "Incident"
    RECOVERY = "recovery", "Recovery"
    OUTREACH = "outreach", "Outreach"
    NOTE = "note", "Note"
    RESERVATION = "reservation", "Reservation"


# Kinds that mean the customer was here and bought something: they count as visits.
VISIT_KINDS = frozenset({EpisodeKind.VISIT, EpisodeKind.ORDER})
# Kinds that follow up a bad experience (DESIGN.md "Follow-up").
FOLLOW_UP_KINDS = frozenset({EpisodeKind.RECOVERY, EpisodeKind.OUTREACH})


class Source(models.TextChoices):
    POS = "pos", "POS"
    STAFF = "staff", "Staff"
    FEEDBACK_FORM = "feedback_form", "Feedback form"
    API = "api", "API"
    IMPORT = "import", "Import"


class Touchpoint(models.TextChoices):
    RESERVATION = "reservation", "Reservation"
    ARRIVAL = "arrival", "Arrival"
    WAIT = "wait", "Wait"
    ORDER_ACCURACY = "order_accuracy", "Order accuracy"
    FOOD_AND_DRINK = "food_and_drink", "Food and drink"
    STAFF = "staff", "Staff"
    PAYMENT = "payment", "Payment"
    CLEANLINESS = "cleanliness", "Cleanliness"
    PARKING_VALET = "parking_valet", "Parking / valet"
    DELIVERY = "delivery", "Delivery"
    DIGITAL = "digital", "Digital"
    OTHER = "other", "Other"


# Built once: Touchpoint.values and Touchpoint(code) rebuild their lists on every call, and a
# queue page asks for a label per touchpoint of every row.
_TOUCHPOINT_LABELS: dict[str, str] = {str(value): str(label) for value, label in Touchpoint.choices}


def touchpoint_label(code: object) -> str:
    """A touchpoint's human label; an unknown code is shown as it is. An episode's touchpoint
    ({"code": …, "third_party": …}) gives its code's label, so templates may pass either."""
    if isinstance(code, dict):
        code = code.get("code", "")
    if not isinstance(code, str):
        return str(code)
    return _TOUCHPOINT_LABELS.get(code, code)


class ExperienceSource(models.TextChoices):
    EXPLICIT = "explicit", "Given explicitly"
    RATING = "rating", "Mapped from a rating"
    INFERRED = "inferred", "Inferred from the text"
    CORRECTED = "corrected", "Corrected by staff"


class RatingScale(models.TextChoices):
    STARS5 = "stars5", "1–5 stars"
    SCORE10 = "score10", "0–10 score"


EXPERIENCE_LABELS = {
    -2: "very negative",
    -1: "negative",
    0: "neutral",
    1: "positive",
    2: "delighted",
}
