from django import template
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timeuntil

register = template.Library()


@register.simple_tag
def sla_state(case, now):
    """'due in 3 hours' or 'overdue by 2 days', against the next SLA the case can miss."""
    if not case.is_open:
        return ""
    deadline = case.next_deadline
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


@register.simple_tag
def bar_chart(items, title):
    """A horizontal bar chart as inline SVG (no chart library, no network), with its table."""
    items = list(items)
    if not items:
        return format_html('<p class="muted">Nothing in this period.</p>')
    top = max(value for _, value in items) or 1
    row, width, label_w = 26, 520, 170
    bars = []
    for i, (label, value) in enumerate(items):
        y = i * row
        length = max(2, int((width - label_w - 50) * value / top))
        bars.append(
            format_html(
                '<text x="0" y="{}" class="lbl">{}</text>'
                '<rect x="{}" y="{}" width="{}" height="{}" class="bar"></rect>'
                '<text x="{}" y="{}" class="val">{}</text>',
                y + 17,
                str(label)[:24],
                label_w,
                y + 4,
                length,
                row - 8,
                label_w + length + 6,
                y + 17,
                value,
            )
        )
    rows = format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", items)
    return format_html(
        '<figure class="chart"><svg role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'width="100%" preserveAspectRatio="xMinYMin meet">{}</svg>'
        '<details><summary>Table</summary><table class="table"><thead><tr><th>{}</th>'
        "<th>count</th></tr></thead><tbody>{}</tbody></table></details></figure>",
        title,
        width,
        row * len(items),
        format_html_join("", "{}", ((b,) for b in bars)),
        title,
        rows,
    )


@register.filter
def percent(rate) -> str:
    return "—" if rate.value is None else f"{rate.value * 100:.0f}%"
