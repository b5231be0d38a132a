"""Filters of the console's pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration_text(seconds: float | None) -> str:
    """93600 -> "26 h"; 90 -> "1.5 min"; days from two days up."""
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit == "d" else 1):  # 26 h reads better than 1.1 d
            value = seconds / size
            return (
                f"{value:.0f} {unit}"
                if value == int(value) or value >= 10
                else f"{value:.1f} {unit}"
            )
    return f"{seconds:.0f} s"
