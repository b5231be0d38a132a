"""Generated data posted to the add and change forms of our models' admin pages by a superuser
(and to the maintenance toggle): every answer is a redirect (saved) or the form again with its
errors, never a 500.

Cases: CASES["admin"] (tests/fuzz_support.py), derandomized. The fields are read from each add
page's HTML (so inline formsets and their management forms are posted as a browser would);
values are drawn by the form field's type: valid values, boundaries and garbage.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import pytest
from django import forms
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from errors import services as error_services
from maintenance.services import bring_up
from tests.fuzz_support import CASES, fuzz_settings

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

OUR_APPS = {"opsconsole", "health", "metrics", "errors", "backups", "maintenance", "alerts"}
FIELD = re.compile(r"<(input|select|textarea)\b([^>]*)>", re.S)
ATTR = re.compile(r'(\w+)="([^"]*)"')

GARBAGE = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\u2603",
    "x" * 5000,
    "-1",
    "0",
    "1e400",
    "NaN",
    "inf",
    "99999999999999999999999",
    "-9223372036854775809",
    "[]",
    "{}",
    "null",
    "[" * 3000 + "]" * 3000,
    "<script>alert(1)</script>",
    "'; DROP TABLE x; --",
    "\u0663",
    "http://[::1",
    "2026-02-30",
    "25:61",
]


def garbage() -> st.SearchStrategy[str]:
    return st.sampled_from(GARBAGE) | st.text(max_size=30)


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_:*", min_size=1, max_size=20)


def good_values(
    field: forms.Field | None, part: int | None, value: str, options: list[str]
) -> st.SearchStrategy[str]:
    """Strings a careful operator would post for one input of `field`."""
    if isinstance(field, forms.SplitDateTimeField):
        if part == 0:
            return st.sampled_from(["2026-12-02", "2026-12-03", "2027-01-01"])
        return st.sampled_from(["00:00:00", "10:30:00", "23:59:59"])
    if isinstance(field, forms.BooleanField):
        return st.sampled_from(["on", ""])
    if options:
        return st.sampled_from([o for o in options if o] or options)
    if isinstance(field, forms.ChoiceField):
        field_choices: Any = field.choices
        return st.sampled_from([str(v) for v, _ in field_choices if str(v)] or [""])
    if isinstance(field, forms.FloatField | forms.IntegerField | forms.DecimalField):
        numbers = st.integers(1, 100).map(str)
        return st.just(value) | numbers if value else numbers
    if isinstance(field, forms.JSONField):
        return st.sampled_from(['["health:*"]', "[]", '["threshold:cpu:*", "errors:*"]'])
    if isinstance(field, forms.URLField):
        return st.sampled_from(["https://example.com/hook", "https://hooks.example.org/a?b=c"])
    if value:
        return st.just(value)
    return NAMES


def values_for(field: forms.Field | None, part: int | None) -> st.SearchStrategy[str]:
    """Strings a browser or a script could post for one input of `field`."""
    if isinstance(field, forms.SplitDateTimeField):
        if part == 0:
            good = st.dates().map(str) | st.sampled_from(["2026-12-02", "0001-01-01", "9999-12-31"])
        else:
            good = st.times().map(lambda t: t.strftime("%H:%M:%S")) | st.sampled_from(["00:00"])
        return good | garbage()
    if isinstance(field, forms.BooleanField):
        return st.sampled_from(["on", "", "off", "false", "0", "1", "True"])
    if isinstance(field, forms.ModelMultipleChoiceField | forms.ModelChoiceField):
        return st.sampled_from(["1", "2", "999999999999", "-1", "abc", ""]) | garbage()
    if isinstance(field, forms.ChoiceField):
        field_choices: Any = field.choices
        choices = [str(value) for value, _ in field_choices if not isinstance(_, list | tuple)]
        return (st.sampled_from(choices) if choices else garbage()) | garbage()
    if isinstance(field, forms.FloatField | forms.IntegerField | forms.DecimalField):
        return (
            st.integers(-(2**70), 2**70).map(str)
            | st.integers(-5, 100_000).map(str)
            | st.floats(allow_nan=True, allow_infinity=True).map(repr)
            | garbage()
        )
    if isinstance(field, forms.JSONField):
        return (
            st.sampled_from(['["a", "b"]', '["*"]', "[]", '{"a": 1}', '"x"', "1", '[""]', "[1, 2]"])
            | garbage()
        )
    if isinstance(field, forms.URLField):
        return (
            st.sampled_from(
                [
                    "https://example.com/hook",
                    "http://127.0.0.1:9/",
                    "http://169.254.169.254/latest/meta-data/",
                    "ftp://x/",
                    "http://" + "a" * 300 + ".com/",
                    "https://[::1]:0/",
                ]
            )
            | garbage()
        )
    if isinstance(field, forms.CharField):
        return (
            st.text(max_size=40) | st.sampled_from(["ok", "*", "a.*", "[", "\\", "%"]) | garbage()
        )
    return garbage()


class Page:
    """The inputs of one admin form page: (name, kind, value on the page, options)."""

    def __init__(self, html: str) -> None:
        form = html[html.find("<form") : html.rfind("</form>")]
        self.inputs: list[tuple[str, str, str, list[str]]] = []
        for match in FIELD.finditer(form):
            tag, raw = match.groups()
            attrs: dict[str, str] = dict(ATTR.findall(raw))
            name = attrs.get("name")
            if not name or name == "csrfmiddlewaretoken" or attrs.get("type") in ("submit", "file"):
                continue
            options: list[str] = []
            if tag == "select":
                end = form.find("</select>", match.end())
                options = re.findall(r'<option value="([^"]*)"', form[match.end() : end])
            self.inputs.append((name, attrs.get("type", tag), attrs.get("value", ""), options))


@st.composite
def form_data(draw: st.DrawFn, page: Page, form_fields: dict[str, forms.Field]) -> dict[str, str]:
    # "valid": what an operator would post; "one": valid but for one hostile input; "any":
    # every input drawn from anything (mostly refused by validation).
    mode = draw(st.sampled_from(["valid", "one", "one", "any", "any"]))
    hostile = draw(st.integers(0, max(0, len(page.inputs) - 1)))
    data: dict[str, str] = {}
    for index, (name, _kind, value, options) in enumerate(page.inputs):
        free = mode == "any" or (mode == "one" and index == hostile)
        if name.endswith(("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS")):
            data[name] = (
                draw(st.sampled_from([value] * 3 + ["", "-1", "1000000", "x", "1"]))
                if free
                else value
            )
            continue
        if free and draw(st.integers(0, 9)) == 0:
            continue  # a field left out of the post entirely
        base, part = name, None
        if re.search(r"_[01]$", name) and name[:-2] in form_fields:
            base, part = name[:-2], int(name[-1])
        field = form_fields.get(base)
        if not free:
            data[name] = draw(good_values(field, part, value, options))
        elif field is None:
            data[name] = draw(st.sampled_from([value, *options]) | garbage())
        else:
            data[name] = draw(values_for(field, part))
    data["_save"] = "Save"
    return data


def our_admins(request: Any) -> list[tuple[Any, admin.ModelAdmin[Any]]]:
    found = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        if model_admin.has_add_permission(request) or model_admin.has_change_permission(request):
            found.append((model, model_admin))
    return sorted(found, key=lambda pair: pair[0]._meta.label)


def test_fuzzed_admin_forms_posted_by_a_superuser_never_answer_5xx(admin):  # noqa: F811
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    request = RequestFactory().get("/admin/")
    request.user = admin
    error_services.create_project("seeded")  # an object to change, with an inline key

    targets: list[tuple[str, str, Page, dict[str, forms.Field]]] = []
    for model, model_admin in our_admins(request):
        opts = model._meta
        if model_admin.has_add_permission(request):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
            page = client.get(url)
            assert page.status_code == 200, url
            fields = dict(model_admin.get_form(request)().fields)
            targets.append(("add", opts.label, Page(page.content.decode()), fields))
        elif opts.label == "maintenance.MaintenanceState":
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
            page = client.get(url)
            assert page.status_code == 200, url
            from maintenance.forms import DownForm

            fields = dict(DownForm().fields)
            targets.append(("toggle", opts.label, Page(page.content.decode()), fields))
    labels = {label for _, label, _, _ in targets}
    assert {"errors.ErrorProject", "alerts.Channel", "maintenance.MaintenanceWindow"} <= labels

    models = {m._meta.label: (m, a) for m, a in our_admins(request)}
    statuses: Counter[tuple[str, int]] = Counter()
    saved: dict[str, int] = defaultdict(int)
    errors: list[Any] = []
    count = 0

    @st.composite
    def cases(draw: st.DrawFn) -> tuple[str, str, dict[str, str], str]:
        kind, label, page, fields = draw(st.sampled_from(targets))
        return kind, label, draw(form_data(page, fields)), draw(st.sampled_from(["add", "change"]))

    @fuzz_settings(CASES["admin"])
    @given(case=cases())
    def one(case: tuple[str, str, dict[str, str], str]) -> None:
        nonlocal count
        count += 1
        kind, label, data, mode = case
        model, _ = models[label]
        opts = model._meta
        if kind == "toggle":
            data["action"] = "down" if mode == "add" else "up"
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        elif mode == "change" and model._default_manager.exists():
            obj = model._default_manager.order_by("-pk").first()
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        else:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        response = client.post(url, data)
        statuses[(label, response.status_code)] += 1
        if response.status_code >= 500:
            errors.append((url, {k: v[:80] for k, v in data.items()}))
        elif response.status_code == 302:
            saved[label] += 1
        else:
            assert response.status_code in (200, 400), (url, response.status_code)

    try:
        one()
    finally:
        bring_up()
    print(f"admin: {count} generated cases, saved {dict(saved)}")
    print(f"admin statuses: {dict(sorted(statuses.items()))}")
    assert count >= CASES["admin"] * 0.95
    assert not errors, f"{len(errors)} cases answered 5xx, e.g. {errors[:3]}"
    # The generators reach past validation (saves), not only the error path; a quick run
    # (OPS_FUZZ_SCALE < 1) may be too short to save every kind.
    if CASES["admin"] >= 500:
        assert set(saved) >= {"errors.ErrorProject", "alerts.Silence", "metrics.Threshold"}


def test_a_deeply_nested_silence_list_is_a_form_error_not_a_500(admin):  # noqa: F811
    """Found by the fuzz above: Django's JSON form field let json.loads' RecursionError out."""
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    response = client.post(
        reverse("admin:maintenance_maintenancewindow_add"),
        {
            "starts_at_0": "2026-12-02",
            "starts_at_1": "10:00:00",
            "ends_at_0": "2026-12-02",
            "ends_at_1": "11:00:00",
            "message": "upgrade",
            "silence_keys": "[" * 5000 + "]" * 5000,
        },
    )
    assert response.status_code == 200
    assert b"nested too deeply" in response.content
