from __future__ import annotations

from collections.abc import Sequence

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timeuntil

from recovery.forms import sla_words

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
        return format_html('<p class="muted">{}</p>', "Nothing in this period.")
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


@register.filter
def hours(value: float | None) -> str:
    """A median duration: '< 1 h', '5.5 h', '38 h', '3.2 days'; '—' when there is none."""
    if value is None:
        return "—"
    if value < 1:
        return "< 1 h"
    if value < 10:
        return f"{value:.1f} h"
    if value < 48:
        return f"{value:.0f} h"
    return f"{value / 24:.1f} days"


# The heat map's scale runs from white to this red; each cell's text is black or white,
# whichever reads better on it: at least 4.5:1 (WCAG AA) at every share. (The page's ink,
# lighter than black, falls short of 4.5:1 for both on mid reds.)
HEAT_RED = (163, 52, 26)
INK = (0, 0, 0)
WHITE = (255, 255, 255)


def _luminance(rgb: Sequence[int]) -> float:
    def channel(c: int) -> float:
        c8 = c / 255
        return c8 / 12.92 if c8 <= 0.03928 else ((c8 + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: Sequence[int], b: Sequence[int]) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def heat_colours(share: float) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The background and text colours of a heat-map cell holding `share` of the largest."""
    share = min(max(share, 0.0), 1.0)
    bg = tuple(round(w + (r - w) * share) for w, r in zip(WHITE, HEAT_RED, strict=True))
    text = INK if contrast(bg, INK) >= contrast(bg, WHITE) else WHITE
    return bg, text  # type: ignore[return-value]


# The cells' colours come from classes in static/css/heat.css, not style attributes (which
# the Content-Security-Policy refuses): one class per percent of the largest, finer than the
# eye tells apart. heat_stylesheet() writes the file; a test holds the two together.
HEAT_STEPS = 100


def heat_step(share: float) -> int:
    return round(min(max(share, 0.0), 1.0) * HEAT_STEPS)


@register.simple_tag
def heat_class(share: float) -> str:
    return f"heat-{heat_step(share)}"


def heat_stylesheet() -> str:
    """The text of static/css/heat.css. To rewrite it:
    .venv/bin/python manage.py shell --no-imports -c "from recovery.templatetags.recovery_tags
    import heat_stylesheet as s; print(s(), end='')" > static/css/heat.css"""
    lines = ["/* Written by recovery.templatetags.recovery_tags.heat_stylesheet(): edit that. */"]
    for step in range(HEAT_STEPS + 1):
        bg, text = heat_colours(step / HEAT_STEPS)
        colours = "background:#{:02x}{:02x}{:02x}; color:#{:02x}{:02x}{:02x};".format(*bg, *text)
        lines.append(f".heat .heat-{step} {{ {colours} }}")
    return "\n".join(lines) + "\n"


@register.simple_tag
def line_chart(weeks, title: str) -> SafeString:
    """Negative experiences and recovery cases opened per week as an inline SVG line chart
    (no chart library, no network), with its table, like `bar_chart`."""
    weeks = list(weeks)
    if not weeks:
        return format_html('<p class="muted">{}</p>', "Nothing in this period.")
    series = (
        ("negative experiences", "neg", [w.negative_experiences for w in weeks]),
        ("recovery cases opened", "opened", [w.cases_opened for w in weeks]),
    )
    top = max(max(values) for _, _, values in series) or 1
    width, height, left, right, top_pad, bottom = 640, 220, 36, 12, 12, 44
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    step = plot_w / max(len(weeks) - 1, 1)

    def x(i: int) -> float:
        return round(left + (i * step if len(weeks) > 1 else plot_w / 2), 1)

    def y(v: int) -> float:
        return round(top_pad + plot_h - plot_h * v / top, 1)

    parts = []
    for tick in sorted({0, top // 2, top}):
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"></line>'
                '<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>',
                left, width - right, y(tick), y(tick), left - 6, y(tick) + 4, tick,
            )
        )  # fmt: skip
    every = max(1, -(-len(weeks) // 8))  # at most 8 week labels
    for i, week in enumerate(weeks):
        if i % every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>',
                    x(i), height - bottom + 18, week.label,
                )
            )  # fmt: skip
    for name, css, values in series:
        points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values))
        parts.append(format_html('<polyline points="{}" class="line {}"></polyline>', points, css))
        for i, v in enumerate(values):
            parts.append(
                format_html(
                    '<circle cx="{}" cy="{}" r="3.5" class="dot {}"><title>{}: {} {}</title>'
                    "</circle>",
                    x(i), y(v), css, weeks[i].label, v, name,
                )
            )  # fmt: skip
    legend = format_html_join(
        "",
        '<span class="key"><span class="swatch {}"></span>{}</span>',
        ((css, name.capitalize()) for name, css, _ in series),
    )
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((w.label, w.negative_experiences, w.cases_opened) for w in weeks),
    )
    return format_html(
        '<figure class="chart line-chart"><svg role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'width="100%" preserveAspectRatio="xMinYMin meet">{}</svg>'
        '<figcaption class="legend">{}</figcaption>'
        '<details><summary>Table</summary><table class="table"><thead><tr><th>Week</th>'
        "<th>Negative experiences</th><th>Recovery cases opened</th></tr></thead>"
        "<tbody>{}</tbody></table></details></figure>",
        title, width, height, format_html_join("", "{}", ((p,) for p in parts)), legend, rows,
    )  # fmt: skip


@register.filter
def sla(value) -> str:
    """'4 hours', '2 days': a playbook's SLA in words."""
    return sla_words(value) if value is not None else ""
