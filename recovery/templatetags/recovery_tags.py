from django import template
from django.utils.html import format_html
from django.utils.timesince import timeuntil

register = template.Library()


@register.simple_tag
def sla_state(case, now):
    """'due in 3 hours' or 'overdue by 2 days', against the next SLA the case can miss."""
    if not case.is_open:
        return ""
    deadline = case.due_at if case.acknowledged_at else case.ack_due_at
    what = "resolve" if case.acknowledged_at else "acknowledge"
    if deadline >= now:
        return format_html(
            '<span class="sla">{} due in {}</span>', what, timeuntil(deadline, now).split(",")[0]
        )
    return format_html(
        '<span class="sla overdue">{} overdue by {}</span>',
        what,
        timeuntil(now, deadline).split(",")[0],
    )
