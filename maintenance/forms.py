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
    secret = forms.CharField(
        required=False,
        help_text="Optional bypass secret: visiting /<secret> sets a cookie valid 12 hours.",
        widget=forms.PasswordInput,
    )
    allowed_ips = forms.CharField(
        required=False, help_text="Addresses or networks still served, comma-separated."
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


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ["starts_at", "ends_at", "message", "enable_maintenance_mode", "silence_keys"]

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
        return data
