"""Filters for showing event data in the console.

Event data is arbitrary JSON from clients. Django templates resolve `{{ d.items }}` as
`d["items"]` when that key exists (a local variable named `items`, a context named `keys`), so a
template must never reach a mapping from an event through `.items` / `.keys` / `.values`:
`{% for k, v in d|entries %}` iterates any mapping safely, and anything else as empty.
"""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def entries(value: Any) -> list[tuple[str, Any]]:
    """The (key, value) pairs of a mapping; [] for anything that is not one."""
    if isinstance(value, dict):
        return [(str(k), v) for k, v in dict.items(value)]
    return []


@register.filter
def as_text(value: Any) -> str:
    """A value as the event sent it: strings as they are, lists and mappings as JSON."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float | list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
