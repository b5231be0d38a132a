"""Threshold evaluation: warning/critical levels, "sustained for", hysteresis, exactly-once signals.

Each (threshold, subject) has a ThresholdState row. The value's target level must hold at
every evaluation for `sustained_minutes` before the state rises to it; once firing, the state
resolves only when the value is back past the recovery level (hysteresis), and a drop from
critical to warning sends nothing. Transitions are conditional UPDATEs on the old level, so
when two workers evaluate the same sample only the one whose UPDATE matched sends the signal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from metrics.models import Threshold, ThresholdState
from metrics.signals import performance_threshold_exceeded, performance_threshold_recovered

logger = logging.getLogger("opsconsole.metrics")

OK, WARNING, CRITICAL = "ok", "warning", "critical"
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}
APP_HOST = "all"


@dataclass(frozen=True)
class Observation:
    metric: str  # the threshold's metric name, e.g. "disk_percent"
    host: str  # a hostname, or APP_HOST for app-wide figures
    value: float
    unit: str
    part: str = ""  # e.g. a mount for disks: the signal's metric becomes "disk_percent:/var"

    @property
    def subject(self) -> str:
        return f"{self.host}|{self.part}"

    @property
    def signal_metric(self) -> str:
        return f"{self.metric}:{self.part}" if self.part else self.metric


def _past(value: float, level: float, comparison: str) -> bool:
    return value > level if comparison == Threshold.Comparison.ABOVE else value < level


def target_level(threshold: Threshold, value: float) -> str:
    if threshold.critical is not None and _past(value, threshold.critical, threshold.comparison):
        return CRITICAL
    if threshold.warning is not None and _past(value, threshold.warning, threshold.comparison):
        return WARNING
    return OK


def recovered(threshold: Threshold, value: float) -> bool:
    level = threshold.recovery if threshold.recovery is not None else threshold.firing_level_floor()
    if level is None:
        return True
    # "Back under the recovery level": strictly on the good side of it.
    if threshold.comparison == Threshold.Comparison.ABOVE:
        return value < level
    return value > level


def thresholds_for(metric: str, host: str, rules: Iterable[Threshold]) -> Threshold | None:
    """A host-specific rule wins over the every-host rule of the same metric."""
    generic = None
    for rule in rules:
        if rule.metric != metric or not rule.enabled:
            continue
        if rule.host == host:
            return rule
        if rule.host == "":
            generic = rule
    return generic


def evaluate(observations: Iterable[Observation], now: datetime | None = None) -> list[str]:
    """Apply every enabled threshold to the observations; returns the transitions made."""
    now = now or timezone.now()
    rules = list(Threshold.objects.filter(enabled=True))
    if not rules:
        return []
    transitions: list[str] = []
    for obs in observations:
        rule = thresholds_for(obs.metric, obs.host, rules)
        if rule is None:
            continue
        change = _observe(rule, obs, now)
        if change:
            transitions.append(change)
    return transitions


def _observe(rule: Threshold, obs: Observation, now: datetime) -> str | None:
    state, _ = ThresholdState.objects.get_or_create(
        threshold=rule,
        subject=obs.subject,
        defaults={
            "metric": obs.signal_metric,
            "host": obs.host,
            "since": now,
            "pending_since": now,
        },
    )
    target = target_level(rule, obs.value)
    current = state.level
    if current != OK and _RANK[target] < _RANK[current]:
        # Hysteresis: while firing, lower readings only count once past the recovery level.
        target = OK if recovered(rule, obs.value) else current
    if target != state.pending_level:
        state.pending_level = target
        state.pending_since = now
    ThresholdState.objects.filter(pk=state.pk).update(
        pending_level=state.pending_level,
        pending_since=state.pending_since,
        last_value=obs.value,
        evaluated_at=now,
    )
    if target == current:
        return None
    if target == OK:
        return _transition(state, current, OK, now, lambda: _send_recovered(obs))
    held = now - state.pending_since
    if _RANK[target] > _RANK[current] and held >= timedelta(minutes=rule.sustained_minutes):
        level_value = rule.critical if target == CRITICAL else rule.warning
        return _transition(
            state, current, target, now, lambda: _send_exceeded(obs, target, level_value)
        )
    return None


def _transition(
    state: ThresholdState, old: str, new: str, now: datetime, send: object
) -> str | None:
    updated = ThresholdState.objects.filter(pk=state.pk, level=old).update(level=new, since=now)
    if updated != 1:
        return None  # another worker made this transition and sent its signal
    try:
        send()  # type: ignore[operator]
    except Exception:
        logger.exception("a receiver of a threshold signal failed")
    return f"{state.metric}@{state.host}: {old} -> {new}"


def _send_exceeded(obs: Observation, level: str, threshold: float | None) -> None:
    performance_threshold_exceeded.send(
        sender=Threshold,
        metric=obs.signal_metric,
        host=obs.host,
        level=level,
        value=obs.value,
        threshold=float(threshold if threshold is not None else 0.0),
        unit=obs.unit,
    )


def _send_recovered(obs: Observation) -> None:
    performance_threshold_recovered.send(
        sender=Threshold,
        metric=obs.signal_metric,
        host=obs.host,
        value=obs.value,
        unit=obs.unit,
    )


def alert_key(metric: str, host: str) -> str:
    return f"threshold:{metric}:{host}"
