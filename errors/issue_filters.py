"""The issue list's filters by release, environment and tag (key:value).

An issue matches when one of its kept events has the value. Each filter is an EXISTS over the
events, answered from an index: (release, issue) and (environment, issue), and on PostgreSQL a
GIN index on the tags (jsonb_path_ops) for `tags @> {"key": "value"}`. The choices offered in
the sidebar come from the newest CHOICE_WINDOW events only; any value can be typed in the form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.http import HttpRequest, QueryDict

from errors.models import ErrorReport, Issue

CHOICE_WINDOW = 2000
MAX_CHOICES = 20
MAX_VALUE_LENGTH = 200


class BadFilter(ValueError):
    """A filter value the list cannot use; the message says what would work."""


def parse_tag(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition(":")
    key, value = key.strip(), value.strip()
    if not sep or not key or not value:
        raise BadFilter("tag must be key:value, for example browser:Firefox")
    if len(key) > MAX_VALUE_LENGTH or len(value) > MAX_VALUE_LENGTH:
        raise BadFilter(f"tag key and value must each be at most {MAX_VALUE_LENGTH} characters")
    return key, value


FILTERS = ("release", "environment", "tag")


def without_empty_filters(params: QueryDict) -> str | None:
    """The query string without filters left empty (the form sends every field), or None when
    there is none to drop."""
    empty = [name for name in FILTERS if name in params and not str(params.get(name, "")).strip()]
    if not empty:
        return None
    kept = params.copy()
    for name in empty:
        del kept[name]
    return kept.urlencode()


def check_filters(params: QueryDict) -> None:
    """Raises BadFilter for a filter value that cannot match anything sensible."""
    for name in ("release", "environment"):
        value = params.get(name)
        if value is not None and len(value) > MAX_VALUE_LENGTH:
            raise BadFilter(f"{name} must be at most {MAX_VALUE_LENGTH} characters")
    tag = params.get("tag")
    if tag:
        parse_tag(str(tag))


def _recent(field: str) -> list[str]:
    ids = ErrorReport.objects.order_by("-id").values("id")[:CHOICE_WINDOW]
    values = (
        ErrorReport.objects.filter(id__in=ids)
        .exclude(**{field: ""})
        .values_list(field, flat=True)
        .distinct()
    )
    return sorted(values)[:MAX_CHOICES]


class _EventFieldFilter(admin.SimpleListFilter):
    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(v, v) for v in _recent(self.field)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Issue]) -> QuerySet[Issue]:
        value = self.value()
        if value is None:
            return queryset
        events = ErrorReport.objects.filter(issue=OuterRef("pk"), **{self.field: value})
        return queryset.filter(Exists(events))


class ReleaseFilter(_EventFieldFilter):
    title = "release"
    parameter_name = field = "release"


class EnvironmentFilter(_EventFieldFilter):
    title = "environment"
    parameter_name = field = "environment"


def events_with_tag(key: str, value: str) -> QuerySet[ErrorReport]:
    if connection.vendor == "postgresql":
        return ErrorReport.objects.filter(tags__contains={key: value})
    # Elsewhere JSON containment is not available; the key is a parameter, never a lookup name.
    return ErrorReport.objects.alias(tag_value=KeyTextTransform(key, "tags")).filter(
        tag_value=value
    )


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        recent = ErrorReport.objects.order_by("-id").values_list("tags", flat=True)[:200]
        pairs = {
            f"{k}:{v}"
            for tags in recent
            if isinstance(tags, dict)
            for k, v in dict.items(tags)
            if isinstance(v, str) and len(k) + len(v) < 80
        }
        return [(p, p) for p in sorted(pairs)[:MAX_CHOICES]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Issue]) -> QuerySet[Issue]:
        if self.value() is None:
            return queryset
        key, value = parse_tag(self.value() or "")
        return queryset.filter(Exists(events_with_tag(key, value).filter(issue=OuterRef("pk"))))
