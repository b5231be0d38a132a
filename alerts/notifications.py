"""The notifications, each rendered as text + HTML email, Slack blocks and a JSON webhook body.

One class per kind of alert; its "failure twin" is the same notice for the other outcome
(a health check that recovered, a backup that failed instead of completing). A group that holds
only resolved alerts is told with the resolved wording.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django.template.loader import render_to_string

from .models import Kind, Severity

SEVERITY_COLOURS = {
    Severity.INFO: "#2f80ed",
    Severity.WARNING: "#f2994a",
    Severity.CRITICAL: "#d63031",
}
RESOLVED_COLOUR = "#27ae60"

# Slack parses `<...>` in mrkdwn as links and mentions (`<!channel>`, `<url|label>`); these three
# characters are all it asks to be escaped, and escaped they are shown as typed.
SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
SLACK_TEXT_LIMIT = 3000  # Slack's maximum for a text object
SLACK_HEADER_LIMIT = 150  # and for a header block


def slack_escape(text: str, limit: int = SLACK_TEXT_LIMIT) -> str:
    """Event text made inert for mrkdwn, at most `limit` characters *after* escaping.

    Capping after escaping (not before) keeps an `&lt;` from being cut into a stray `&l`, and
    keeps a message of nothing but `<` from growing four-fold past Slack's limit.
    """
    out: list[str] = []
    size = 0
    for char in text:
        piece = SLACK_ESCAPES.get(char, char)
        if size + len(piece) > limit - 1:
            out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack would otherwise turn bare URLs and #channel names in event text into links.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


class BaseNotification:
    name: ClassVar[str] = "SystemAlertNotification"
    twin: ClassVar[str] = "SystemAlertResolvedNotification"
    firing_heading: ClassVar[str] = "Alert"
    resolved_heading: ClassVar[str] = "Resolved"

    def __init__(self, items: Sequence[dict[str, Any]]) -> None:
        self.items = list(items)

    # --- what the message says ---------------------------------------------------------------
    @property
    def firing(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i["state"] == "firing"]

    @property
    def resolved(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i["state"] == "resolved"]

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"

    @property
    def class_name(self) -> str:
        return self.name if self.firing else self.twin

    @property
    def severity(self) -> int:
        return max((int(i["severity"]) for i in self.firing), default=Severity.INFO)

    @property
    def colour(self) -> str:
        if not self.firing:
            return RESOLVED_COLOUR
        return SEVERITY_COLOURS.get(Severity(self.severity), SEVERITY_COLOURS[Severity.WARNING])

    def title(self) -> str:
        heading = self.firing_heading if self.firing else self.resolved_heading
        counts = []
        if self.firing:
            counts.append(f"FIRING:{len(self.firing)}")
        if self.resolved:
            counts.append(f"RESOLVED:{len(self.resolved)}")
        first = (self.firing or self.resolved)[0] if self.items else None
        lead = f" {first['key']}" if first and len(self.items) == 1 else ""
        return f"[{', '.join(counts)}] {heading}{lead}"

    def context(self) -> dict[str, Any]:
        return {
            "title": self.title(),
            "heading": self.firing_heading if self.firing else self.resolved_heading,
            "notification": self.class_name,
            "status": self.status,
            "colour": self.colour,
            "firing": self.firing,
            "resolved": self.resolved,
        }

    # --- renderings ------------------------------------------------------------------------
    def email(self) -> tuple[str, str, str]:
        """(subject, text body, HTML body)."""
        ctx = self.context()
        text = render_to_string("alerts/email/notification.txt", ctx)
        html = render_to_string("alerts/email/notification.html", ctx)
        return self.title(), text, html

    def slack(self) -> dict[str, Any]:
        title = self.title()
        # A plain_text header never parses links or mentions, so it needs no escaping.
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:SLACK_HEADER_LIMIT]}}
        ]
        for item in self.items[:20]:  # Slack allows 50 blocks; keep room for the rest
            marker = "RESOLVED" if item["state"] == "resolved" else item["severity_name"].upper()
            # Key and summary may carry event text (issue titles, messages): escape both.
            key = slack_escape(str(item["key"]), 300)
            summary = slack_escape(str(item["summary"]), 2000)
            blocks.append(
                {
                    "type": "section",
                    "text": _mrkdwn(f"*{marker}* `{key}`\n{summary}"),
                    "accessory": {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in console"},
                        "url": item["url"],
                    },
                }
            )
        if len(self.items) > 20:
            blocks.append(
                {
                    "type": "context",
                    "elements": [_mrkdwn(f"and {len(self.items) - 20} more alerts")],
                }
            )
        # Attachments carry the colour bar; blocks inside them render the same. The top-level
        # text is the notification fallback and is parsed as mrkdwn too.
        return {
            "text": slack_escape(title),
            "unfurl_links": False,
            "unfurl_media": False,
            "attachments": [{"color": self.colour, "blocks": blocks}],
        }

    def webhook(self, *, notification_id: int | None, sent_at: str) -> dict[str, Any]:
        return {
            "version": 1,
            "notification": self.class_name,
            "id": notification_id,
            "status": self.status,
            "title": self.title(),
            "severity": str(Severity(self.severity).label),
            "sent_at": sent_at,
            "alerts": self.items,
        }


class SystemAlertNotification(BaseNotification):
    name = "SystemAlertNotification"
    twin = "SystemAlertResolvedNotification"
    firing_heading = "System alert"
    resolved_heading = "System alert resolved"


class PerformanceDegradationNotification(BaseNotification):
    name = "PerformanceDegradationNotification"
    twin = "PerformanceRecoveredNotification"
    firing_heading = "Performance degraded"
    resolved_heading = "Performance recovered"


class HealthCheckFailedNotification(BaseNotification):
    name = "HealthCheckFailedNotification"
    twin = "HealthCheckRecoveredNotification"
    firing_heading = "Health check failed"
    resolved_heading = "Health check recovered"


class BackupFailedNotification(BaseNotification):
    name = "BackupFailedNotification"
    twin = "BackupFailureResolvedNotification"
    firing_heading = "Backup failed"
    resolved_heading = "Backups are succeeding again"


class BackupCompletedNotification(BaseNotification):
    name = "BackupCompletedNotification"
    twin = "BackupCompletedNotification"
    firing_heading = "Backup completed"
    resolved_heading = "Backup completed"

    @property
    def colour(self) -> str:
        return RESOLVED_COLOUR


NOTIFICATIONS: dict[str, type[BaseNotification]] = {
    Kind.SYSTEM: SystemAlertNotification,
    Kind.PERFORMANCE: PerformanceDegradationNotification,
    Kind.HEALTH: HealthCheckFailedNotification,
    Kind.BACKUP_FAILED: BackupFailedNotification,
    Kind.BACKUP_COMPLETED: BackupCompletedNotification,
}


def notification_for(kind: str, items: Sequence[dict[str, Any]]) -> BaseNotification:
    return NOTIFICATIONS.get(kind, SystemAlertNotification)(items)
