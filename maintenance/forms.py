from __future__ import annotations

from typing import Any

from django import forms

from maintenance import bypass
from maintenance.models import MaintenanceWindow
from maintenance.services import MAX_RETRY_AFTER


class DownForm(forms.Form):
    message = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    retry_after = forms.IntegerField(min_value=1, max_value=MAX_RETRY_AFTER, initial=60)
    generate_secret = forms.BooleanField(
        required=False,
        initial=True,
        label="Generate a bypass secret",
        help_text="Shown once, on the next page, as an address: visiting it sets a cookie, "
        "valid 12 hours, that lets you through while the site is down.",
    )
    secret = forms.CharField(
        required=False,
        label="Or your own secret",
        help_text="Optional bypass secret of your choosing (16 to 128 letters, digits, - or _).",
        widget=forms.PasswordInput,
    )
    allowed_ips = forms.CharField(
        required=False,
        label="Allowed IPs",
        help_text="Addresses or networks still served, comma-separated.",
    )

    def clean_secret(self) -> str | None:
        secret = self.cleaned_data.get("secret") or None
        if secret:
            problem = bypass.secret_problem(secret)
            if problem:
                raise forms.ValidationError(problem)
        return secret

    def clean_allowed_ips(self) -> list[str]:
        raw = self.cleaned_data.get("allowed_ips") or ""
        try:
            return bypass.normalise_allowed([p for p in raw.replace(" ", ",").split(",") if p])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


# The permission that takes the site down (the maintenance-mode toggle, `manage.py down`).
TAKE_SITE_DOWN_PERMISSION = "maintenance.change_maintenancestate"
WILDCARDS = frozenset("*?[]!")


def silences_everything(pattern: str) -> bool:
    """A pattern made only of wildcards ("*", "**", "?*") matches (nearly) every alert key."""
    return not set(pattern) - WILDCARDS


class BoundedJSONField(forms.JSONField):
    """Django's JSON form field, with deep nesting refused as a form error: json.loads raises
    RecursionError (not a decode error) past ~1000 levels, which the stock field lets through
    as a 500 (found by tests/test_fuzz_admin.py)."""

    max_chars = 64 * 1024

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > self.max_chars:
            raise forms.ValidationError(f"Keep this under {self.max_chars // 1024} KiB of JSON.")
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("Enter a valid JSON (it is nested too deeply).") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


class MaintenanceWindowForm(forms.ModelForm):
    # Set per request by the admin: whether this user may take the site down.
    may_take_site_down: bool = False

    class Meta:
        model = MaintenanceWindow
        fields = ["starts_at", "ends_at", "message", "enable_maintenance_mode", "silence_keys"]
        field_classes = {"silence_keys": BoundedJSONField}

    def clean_silence_keys(self) -> list[str]:
        value = self.cleaned_data.get("silence_keys") or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise forms.ValidationError(
                'Give a JSON list of alert key patterns, e.g. ["health:*", "threshold:cpu:*"].'
            )
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            raise forms.ValidationError("The window must end after it starts.")
        if not self.may_take_site_down:
            self._refuse_site_wide_effects(data)
        return data

    def _refuse_site_wide_effects(self, data: dict[str, Any]) -> None:
        # A window that turns maintenance mode on, or mutes every alert, is as strong as
        # `manage.py down`; it needs the same permission.
        if data.get("enable_maintenance_mode"):
            self.add_error(
                "enable_maintenance_mode",
                "Only users who may turn maintenance mode on may plan a window that does.",
            )
        broad = [p for p in data.get("silence_keys") or [] if silences_everything(p)]
        if broad:
            self.add_error(
                "silence_keys",
                f"{broad[0]!r} silences every alert: only users who may turn maintenance mode "
                'on may do that. Name the alerts instead, e.g. ["health:*"].',
            )
