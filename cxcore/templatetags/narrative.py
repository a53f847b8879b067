import zoneinfo
from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

from cxcore.models import EXPERIENCE_LABELS, Touchpoint

register = template.Library()

EXPERIENCE_MARKS = {-2: "−2", -1: "−1", 0: "0", 1: "+1", 2: "+2"}


@register.filter
def in_tz(value: datetime | None, tz_name: str) -> datetime | None:
    """Show a stored UTC time in a location's time zone."""
    if value is None:
        return None
    try:
        return timezone.localtime(value, zoneinfo.ZoneInfo(tz_name or "UTC"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return value


@register.filter
def touchpoint_label(code: str) -> str:
    try:
        return Touchpoint(code).label
    except ValueError:
        return code


@register.simple_tag
def experience_badge(experience: int) -> str:
    return format_html(
        '<span class="exp exp-{}" title="{}">{}</span>',
        {-2: "vneg", -1: "neg", 0: "neu", 1: "pos", 2: "vpos"}.get(experience, "neu"),
        EXPERIENCE_LABELS.get(experience, ""),
        EXPERIENCE_MARKS.get(experience, str(experience))
        + " "
        + EXPERIENCE_LABELS.get(experience, ""),
    )
