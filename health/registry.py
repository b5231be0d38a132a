"""Which checks make up each health component.

A component is a name (`database`, `queue`, ...) and a factory returning fresh check
instances for one run. Apps add their own in `AppConfig.ready()`:

    from health.registry import register
    register("backups", lambda: [BackupFreshness()])

`ready=True` also puts the component in `/health/ready` (keep those cheap and local).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from health_check.base import HealthCheck

Factory = Callable[[], list[HealthCheck]]


@dataclass(frozen=True)
class Component:
    name: str
    factory: Factory
    ready: bool
    full: bool


_components: dict[str, Component] = {}


def register(name: str, factory: Factory, *, ready: bool = False, full: bool = True) -> None:
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"component names are letters, digits, - and _: {name!r}")
    _components[name] = Component(name=name, factory=factory, ready=ready, full=full)


def unregister(name: str) -> None:
    _components.pop(name, None)


def get(name: str) -> Component | None:
    return _components.get(name)


def names(*, ready: bool = False) -> list[str]:
    return [c.name for c in _components.values() if (c.ready if ready else c.full)]


def all_names() -> list[str]:
    return list(_components)
