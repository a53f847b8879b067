import zoneinfo
from datetime import datetime

import phonenumbers
from django import template
from django.templatetags.tz import do_timezone
from django.utils.html import format_html

from cxcore import vocabulary
from cxcore.models import EXPERIENCE_LABELS

register = template.Library()

EXPERIENCE_MARKS = {-2: "−2", -1: "−1", 0: "0", 1: "+1", 2: "+2"}


@register.filter
def in_tz(value: datetime | None, tz_name: str) -> datetime | str:
    """Show a stored UTC time in a location's time zone.

    Django's own `timezone` filter marks the result so `|date` does not convert it back to the
    current time zone; an unknown zone name falls back to UTC rather than failing the page.
    """
    if value is None:
        return ""
    try:
        tz = zoneinfo.ZoneInfo(tz_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    return do_timezone(value, tz)


@register.filter
def touchpoint_label(code: str) -> str:
    return vocabulary.touchpoint_label(code)


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


@register.filter
def identifier_display(identifier) -> str:
    """Phone numbers in readable international form; other identifiers as stored."""
    if identifier.kind != "phone":
        return identifier.value
    try:
        number = phonenumbers.parse(identifier.value)
    except phonenumbers.NumberParseException:
        return identifier.value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
