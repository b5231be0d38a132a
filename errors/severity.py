"""Severity: the admin-editable `SeverityRule`s (seeded with the seed's rules: database and
HTTP errors critical, validation and auth errors warning, the rest error), combined with the
event's own level.

Combination: a `fatal` level always makes it critical; otherwise the first matching rule
decides for exceptions, and a message event without an exception takes its level.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from errors.models import SeverityRule

DEFAULT_RULES: list[tuple[str, str]] = [
    ("*DatabaseError", "critical"),
    ("*OperationalError", "critical"),
    ("*IntegrityError", "critical"),
    ("*InterfaceError", "critical"),
    ("*ProgrammingError", "critical"),
    ("*HTTPError", "critical"),
    ("*HTTPException", "critical"),
    ("*HTTPStatusError", "critical"),
    ("*ValidationError", "warning"),
    ("*PermissionDenied", "warning"),
    ("*AuthenticationFailed", "warning"),
    ("*NotAuthenticated", "warning"),
    ("*SuspiciousOperation", "warning"),
    ("*Unauthorized", "warning"),
    ("*Forbidden", "warning"),
]
LEVEL_SEVERITY = {
    "fatal": "critical",
    "error": "error",
    "warning": "warning",
    "info": "info",
    "debug": "info",
    "log": "info",
}


class SeverityRules:
    def __init__(self, rules: list[tuple[str, str]]) -> None:
        self.rules = rules

    @classmethod
    def load(cls) -> SeverityRules:
        return cls(list(SeverityRule.objects.values_list("pattern", "severity")))

    def classify(self, exception_type: str, level: str) -> str:
        if level == "fatal":
            return "critical"
        if not exception_type:
            return LEVEL_SEVERITY.get(level, "error")
        short = exception_type.rsplit(".", 1)[-1]
        for pattern, severity in self.rules:
            if fnmatchcase(exception_type, pattern) or fnmatchcase(short, pattern):
                return severity
        return "error"
