"""The built-in health components. Factories do no I/O: they only build check instances."""

from __future__ import annotations

from django.conf import settings

from health import checks, registry


def register_defaults() -> None:
    registry.register("database", lambda: [checks.Database()], ready=True)
    registry.register("cache", lambda: [checks.Cache()], ready=True)
    if settings.REDIS_URL:
        registry.register("redis", lambda: [checks.Redis()], ready=True)
    registry.register("broker", lambda: [checks.Broker()], ready=True, full=False)
    registry.register("queue", lambda: [checks.Queue()])
    registry.register("storage", lambda: [checks.Storage()])
    registry.register("external", lambda: [checks.ExternalServices()])
    registry.register("application", lambda: [checks.Application()])
    registry.register("scheduler", lambda: [checks.Scheduler()])
    registry.register("disk", lambda: [checks.Disk()])
    registry.register("memory", lambda: [checks.Memory()])
