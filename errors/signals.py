"""Events the errors app sends.

critical_error_occurred(sender, issue_id: int, project: str, title: str, severity: str,
                        reason: str, url: str, count: int)
    reason is one of "critical", "frequency", "business_hours", "new_issue", "regression".
    Alert key convention: f"errors:issue:{issue_id}".
issue_resolved(sender, issue_id: int, status: str)
    an operator resolved or ignored the issue (status "resolved" or "ignored"): its alert clears.
"""

from django.dispatch import Signal

critical_error_occurred = Signal()
issue_resolved = Signal()
