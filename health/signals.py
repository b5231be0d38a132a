"""Events the health app sends (from health.services, never from save()).

system_health_check_performed(sender, health_check: HealthCheck, status: str)
    after every scheduled run; status is "pass", "warn" or "fail".
health_check_failed(sender, component: str, status: str, output: str, health_check: HealthCheck)
    once when a component goes from pass/warn to fail (a transition, not every failing run).
health_check_recovered(sender, component: str, status: str, health_check: HealthCheck)
    once when a failing component passes (or warns) again.
"""

from django.dispatch import Signal

system_health_check_performed = Signal()
health_check_failed = Signal()
health_check_recovered = Signal()
