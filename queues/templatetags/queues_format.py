"""Durations and rates as the queue page shows them."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def seconds(value: float | None) -> str:
    """12.3 -> "12 s", 125 -> "2 min 5 s", 7300 -> "2 h 1 min"."""
    if value is None:
        return ""
    total = int(round(float(value)))
    if total < 60:
        return f"{float(value):.1f} s" if value < 10 else f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60} s"
    return f"{total // 3600} h {total % 3600 // 60} min"


@register.filter
def milliseconds(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


@register.filter
def percent(value: float | None) -> str:
    if value is None:
        return ""
    return f"{float(value) * 100:.1f} %"


@register.filter
def as_json(value: object, limit: int = 200) -> str:
    """Compact JSON of scrubbed arguments, cut at `limit` characters (escaped by the template)."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
