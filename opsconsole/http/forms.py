"""The form field for every URL the console sends requests to."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .targets import InvalidURL, parse_url


class OutboundURLField(forms.URLField):
    """Django's URL checks, then the outbound parser: a port above 65535, a bad host or a
    scheme other than http(s) is a form error with the reason."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)

    def clean(self, value: Any) -> Any:
        value = super().clean(value)
        if value:
            try:
                parse_url(value)
            except InvalidURL as exc:
                raise ValidationError(f"Enter a valid URL: {exc}.", code="invalid") from None
        return value


class OutboundURLFormMixin:
    """For ModelForms with outbound URL fields: when the form already refused the posted URL,
    the model's clean() still sees the old one; report only the form's reason for it."""

    outbound_url_fields: tuple[str, ...] = ("url",)

    def _update_errors(self, errors: ValidationError) -> None:
        if hasattr(errors, "error_dict"):
            refused = getattr(self, "_errors", None) or {}
            for name in self.outbound_url_fields:
                if name in refused:
                    errors.error_dict.pop(name, None)
            if not errors.error_dict:
                return
        super()._update_errors(errors)  # type: ignore[misc]
