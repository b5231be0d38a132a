"""Our health checks, as django-health-check 4.x dataclass checks.

Each `run()` is synchronous (the runner gives it a thread and a deadline), raises
`ServiceUnavailable` to fail or `ServiceWarning` to warn, and may append figures to
`self.observations` as {"measurement", "observedValue", "observedUnit"}. Every client here has
its own short timeout, so a hung dependency releases its thread soon after the probe gave up.

Messages never carry secrets; hostnames and paths appear only in gated (token or staff) output.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import secrets
import shutil
import time
from typing import Any

import psutil
from django.conf import settings
from django.core.cache import caches
from django.core.files.base import ContentFile
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from opsconsole import __version__

_DEFAULT_TIMEOUT = datetime.timedelta(seconds=2)


def reason(exc: BaseException) -> str:
    """Exception type and the first line of its message, for gated (token/staff) output."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _timeout() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.OPS_HEALTH_CHECK_TIMEOUT)


@dataclasses.dataclass
class OpsCheck(HealthCheck):
    """Base: a per-instance timeout and a list of observations for health+json."""

    timeout: datetime.timedelta = dataclasses.field(default_factory=_timeout, repr=False)
    observations: list[dict[str, Any]] = dataclasses.field(
        default_factory=list, repr=False, compare=False
    )
    component_type: str = dataclasses.field(default="component", repr=False)

    def observe(self, measurement: str, value: float | int | str, unit: str = "") -> None:
        self.observations.append(
            {"measurement": measurement, "observedValue": value, "observedUnit": unit}
        )

    def run(self) -> None:  # pragma: no cover - every subclass implements it
        raise ServiceUnavailable("not a check")


@dataclasses.dataclass
class Database(OpsCheck):
    alias: str = "default"
    component_type: str = dataclasses.field(default="datastore", repr=False)

    def run(self) -> None:
        connection = connections[self.alias]
        # A connection left broken by a previous failure must not fail this probe (#755).
        connection.close_if_unusable_or_obsolete()
        start = time.perf_counter()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                row = cursor.fetchone()
        except Exception as exc:
            connection.close()
            raise ServiceUnavailable(f"database unreachable: {reason(exc)}") from None
        finally:
            # Probe threads are long-lived: do not keep a connection per thread open.
            connection.close()
        if row != (1,):
            raise ServiceUnavailable("SELECT 1 returned an unexpected row")
        self.observe("responseTime", round((time.perf_counter() - start) * 1000, 2), "ms")


@dataclasses.dataclass
class Cache(OpsCheck):
    alias: str = "default"
    component_type: str = dataclasses.field(default="datastore", repr=False)

    def run(self) -> None:
        cache = caches[self.alias]
        key = f"ops:health:{secrets.token_hex(8)}"
        value = secrets.token_hex(16)
        start = time.perf_counter()
        try:
            cache.set(key, value, timeout=30)
            got = cache.get(key)
            cache.delete(key)
            after = cache.get(key)
        except Exception as exc:
            raise ServiceUnavailable(f"cache unreachable: {reason(exc)}") from None
        if got != value:
            raise ServiceUnavailable("cache returned a different value than was stored")
        if after is not None:
            raise ServiceUnavailable("cache kept a key after it was deleted")
        self.observe("responseTime", round((time.perf_counter() - start) * 1000, 2), "ms")


@dataclasses.dataclass
class Redis(OpsCheck):
    url: str = dataclasses.field(default="", repr=False)
    component_type: str = dataclasses.field(default="datastore", repr=False)

    def run(self) -> None:
        import redis

        seconds = self.timeout.total_seconds()
        client = redis.Redis.from_url(
            self.url or settings.REDIS_URL,
            socket_connect_timeout=seconds,
            socket_timeout=seconds,
            retry_on_timeout=False,
        )
        start = time.perf_counter()
        try:
            client.ping()
            latency = (time.perf_counter() - start) * 1000
            info: dict[str, Any] = client.info()
        except Exception as exc:
            raise ServiceUnavailable(f"redis unreachable: {reason(exc)}") from None
        finally:
            client.close()
        self.observe("responseTime", round(latency, 2), "ms")
        self.observe("usedMemory", int(info.get("used_memory", 0)), "bytes")
        self.observe("connectedClients", int(info.get("connected_clients", 0)), "clients")
        maxmemory = int(info.get("maxmemory", 0) or 0)
        if maxmemory and int(info.get("used_memory", 0)) > 0.95 * maxmemory:
            raise ServiceWarning("redis memory is above 95 % of maxmemory")


# Callers retry a refused connection once, at once: kombu's default 2 s pause before the retry
# outlasted the check's timeout, so a refused broker read "timed out" instead of its reason.
def _broker_connection(timeout: float) -> Any:
    from celery import current_app as app

    options = dict(app.conf.broker_transport_options or {})
    if not app.conf.broker_url.startswith(("filesystem", "memory")):
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout, max_retries=0)
    return app.connection_for_read(transport_options=options, connect_timeout=timeout)


def queue_depth(channel: Any, queue: str) -> int:
    from kombu.exceptions import ChannelError

    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except ChannelError:  # a queue nothing was ever published to does not exist yet
        return 0


@dataclasses.dataclass
class Broker(OpsCheck):
    """The broker accepts a connection and answers (cheap enough for /health/ready)."""

    component_type: str = dataclasses.field(default="component", repr=False)

    def run(self) -> None:
        seconds = self.timeout.total_seconds()
        start = time.perf_counter()
        try:
            with _broker_connection(seconds) as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=seconds)
                conn.default_channel  # noqa: B018  (opens the channel: a real round trip)
        except Exception as exc:
            raise ServiceUnavailable(f"broker unreachable: {reason(exc)}") from None
        self.observe("responseTime", round((time.perf_counter() - start) * 1000, 2), "ms")


def _published_at(raw: Any) -> float | None:
    import json

    from health.worker import PUBLISHED_AT_HEADER

    try:
        value = json.loads(raw)["headers"][PUBLISHED_AT_HEADER]
    except (ValueError, TypeError, KeyError):
        return None  # a message published by a client that does not stamp it
    return float(value) if isinstance(value, int | float) else None


def oldest_wait(channel: Any, queue: str) -> float | None:
    """Seconds the oldest waiting message of `queue` has waited (None: empty or unknown).

    Read without consuming anything: on Redis, the tail of each priority list (kombu pushes
    on the left and pops on the right); on the filesystem broker, the oldest message file.
    Other transports give None. The age comes from the publish time each message carries
    (health.worker.stamp_published_at).
    """
    now = time.time()
    client = getattr(channel, "client", None)
    if channel.connection.driver_type == "redis" and client is not None:
        steps = getattr(channel, "priority_steps", [0])
        stamps = []
        for key in dict.fromkeys(channel._q_for_pri(queue, step) for step in steps):
            stamp = _published_at(client.lindex(key, -1))
            if stamp is not None:
                stamps.append(stamp)
        return max(0.0, now - min(stamps)) if stamps else None
    if channel.connection.driver_type == "filesystem":
        import pathlib

        folder = pathlib.Path(channel.data_folder_in)
        names = sorted(p.name for p in folder.glob(f"*.{queue}.msg"))
        for name in names[:1]:  # names start with the publish time in milliseconds
            try:
                stamp = _published_at((folder / name).read_bytes())
            except OSError:  # taken by a worker in the meantime
                return None
            return max(0.0, now - stamp) if stamp is not None else None
    return None


def consumed_queues(app: Any) -> list[str]:
    """The queues our workers consume: the default one and those tasks are routed to (the
    error digest's own)."""
    routes = app.conf.task_routes if isinstance(app.conf.task_routes, dict) else {}
    routed = [r["queue"] for r in routes.values() if isinstance(r, dict) and r.get("queue")]
    return list(dict.fromkeys([app.conf.task_default_queue, *routed]))


@dataclasses.dataclass
class QueueMeasure:
    """One queue as the broker holds it: waiting messages and the oldest one's wait (s)."""

    name: str
    depth: int
    oldest_wait: float | None


def measure_queues(app: Any, timeout: float) -> list[QueueMeasure]:
    """Depth and oldest waiting message of every queue our workers consume (`consumed_queues`),
    in one broker connection; raises when the broker does not answer within `timeout`."""
    measured = []
    with _broker_connection(timeout) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        for queue in consumed_queues(app):
            waiting = queue_depth(conn.default_channel, queue)
            age = oldest_wait(conn.default_channel, queue) if waiting else None
            measured.append(QueueMeasure(queue, waiting, age))
    return measured


@dataclasses.dataclass
class QueueLimits:
    """Per-queue limits: the oldest waiting task's age and the depth, warn and fail (0: off)."""

    wait_warn: float = dataclasses.field(
        default_factory=lambda: settings.OPS_HEALTH_QUEUE_WAIT_WARN
    )
    wait_fail: float = dataclasses.field(default_factory=lambda: settings.OPS_HEALTH_QUEUE_MAX_WAIT)
    depth_warn: int = dataclasses.field(
        default_factory=lambda: settings.OPS_HEALTH_QUEUE_DEPTH_WARN
    )
    depth_fail: int = dataclasses.field(
        default_factory=lambda: settings.OPS_HEALTH_QUEUE_DEPTH_FAIL
    )

    def judge(self, queue: str, depth: int, waited: float | None) -> tuple[str, str] | None:
        """("fail" | "warn", reason) for the worst limit `queue` is past, or None."""
        for level, wait_limit, depth_limit in (
            ("fail", self.wait_fail, self.depth_fail),
            ("warn", self.wait_warn, self.depth_warn),
        ):
            if wait_limit and waited is not None and waited > wait_limit:
                hint = (
                    ": workers are alive but take no work; every pool process may be busy or stuck"
                    if level == "fail"
                    else ""
                )
                return level, (
                    f"queue {queue}: the oldest waiting task has waited {waited:.0f} s "
                    f"({level} at {wait_limit:g} s){hint}"
                )
            if depth_limit and depth >= depth_limit:
                return level, f"queue {queue}: {depth} tasks waiting ({level} at {depth_limit})"
        return None


@dataclasses.dataclass
class Queue(OpsCheck):
    """Broker reachable, live workers by heartbeat age (and how many of those expected), per
    queue the depth and the oldest waiting message's age against warn and fail limits (a live
    worker whose pool takes no work shows as a growing wait), failed tasks in the last hour."""

    failed_threshold: int = dataclasses.field(
        default_factory=lambda: settings.OPS_HEALTH_FAILED_TASKS_THRESHOLD
    )
    worker_max_age: float = dataclasses.field(
        default_factory=lambda: settings.OPS_HEALTH_WORKER_MAX_AGE
    )
    expected_workers: int = dataclasses.field(
        default_factory=lambda: settings.OPS_HEALTH_EXPECTED_WORKERS
    )
    limits: QueueLimits = dataclasses.field(default_factory=QueueLimits)

    def run(self) -> None:
        verdicts = [v for v in (self.judge_queues(), *self.judge_workers()) if v]
        for level in ("fail", "warn"):
            reasons = [reason for lv, reason in verdicts if lv == level]
            if reasons:
                exc = ServiceUnavailable if level == "fail" else ServiceWarning
                raise exc("; ".join(reasons))

    def measure(self) -> dict[str, tuple[int, float | None]]:
        """{queue: (depth, oldest wait in seconds or None)} for every queue a worker consumes."""
        from celery import current_app as app

        seconds = self.timeout.total_seconds()
        try:
            measured = measure_queues(app, seconds)
        except Exception as exc:
            raise ServiceUnavailable(f"broker unreachable: {reason(exc)}") from None
        return {q.name: (q.depth, q.oldest_wait) for q in measured}

    def judge_queues(self) -> tuple[str, str] | None:
        measured = self.measure()
        self.observe("depth", sum(depth for depth, _ in measured.values()), "messages")
        waits = [age for _, age in measured.values() if age is not None]
        if waits:
            self.observe("oldestWait", round(max(waits), 1), "s")
        verdicts = []
        for queue, (depth, age) in measured.items():
            self.observe(f"{queue}:depth", depth, "messages")
            if age is not None:
                self.observe(f"{queue}:oldestWait", round(age, 1), "s")
            verdict = self.limits.judge(queue, depth, age)
            if verdict:
                verdicts.append(verdict)
        # The worst first: a failing queue outranks a warning one.
        return min(verdicts, key=lambda v: v[0] != "fail", default=None)

    def judge_workers(self) -> list[tuple[str, str] | None]:
        from django_celery_results.models import TaskResult

        from health.models import WorkerHeartbeat

        now = timezone.now()
        try:
            live = list(
                WorkerHeartbeat.objects.filter(
                    last_seen__gte=now - datetime.timedelta(seconds=self.worker_max_age)
                ).values_list("hostname", flat=True)
            )
            stale = list(
                WorkerHeartbeat.objects.filter(
                    last_seen__lt=now - datetime.timedelta(seconds=self.worker_max_age)
                ).values_list("hostname", flat=True)[:10]
            )
            failed = TaskResult.objects.filter(
                status="FAILURE", date_done__gte=now - datetime.timedelta(hours=1)
            ).count()
        finally:
            connections["default"].close()
        self.observe("workers", len(live), "workers")
        self.observe("failedTasksLastHour", failed, "tasks")
        verdicts: list[tuple[str, str] | None] = []
        if not live:
            verdicts.append(
                (
                    "fail",
                    f"no Celery worker has sent a heartbeat in the last {self.worker_max_age:g} s",
                )
            )
        elif self.expected_workers and len(live) < self.expected_workers:
            silent = f" (silent: {', '.join(sorted(stale))})" if stale else ""
            verdicts.append(
                (
                    "warn",
                    f"{len(live)} of {self.expected_workers} expected workers alive{silent}",
                )
            )
        if failed > self.failed_threshold:
            verdicts.append(
                (
                    "warn",
                    f"{failed} tasks failed in the last hour (threshold {self.failed_threshold})",
                )
            )
        return verdicts


@dataclasses.dataclass
class Storage(OpsCheck):
    """Write, read and delete on the backup storage; free space when it is a local directory."""

    def run(self) -> None:
        from backups.storage import backup_storage, local_path

        payload = secrets.token_bytes(32)
        name = f".ops-health/{secrets.token_hex(8)}"
        start = time.perf_counter()
        try:
            storage = backup_storage()
            saved = storage.save(name, ContentFile(payload))
            try:
                with storage.open(saved, "rb") as fh:
                    read = fh.read()
            finally:
                storage.delete(saved)
        except Exception as exc:
            raise ServiceUnavailable(f"backup storage failed: {reason(exc)}") from None
        if read != payload:
            raise ServiceUnavailable("backup storage returned different bytes than were written")
        self.observe("responseTime", round((time.perf_counter() - start) * 1000, 2), "ms")
        path = local_path()
        if path is not None:
            usage = shutil.disk_usage(path)
            self.observe("freeSpace", usage.free, "bytes")
            percent = 100.0 * usage.used / usage.total if usage.total else 0.0
            if percent >= settings.OPS_HEALTH_DISK_FAIL:
                raise ServiceUnavailable(f"backup storage disk is {percent:.0f} % full")
            if percent >= settings.OPS_HEALTH_DISK_WARN:
                raise ServiceWarning(f"backup storage disk is {percent:.0f} % full")


def _certificate_expiry(der: bytes | None) -> datetime.datetime | None:
    """The peer certificate's notAfter, read from its DER form (works unverified too)."""
    from cryptography import x509

    if not der:
        return None
    return x509.load_der_x509_certificate(der).not_valid_after_utc


def _external_timeout() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.OPS_HEALTH_EXTERNAL_TIMEOUT)


@dataclasses.dataclass
class ExternalServices(OpsCheck):
    """Every enabled ExternalService, concurrently: expected status within the service's own
    timeout, and a warning when its TLS certificate expires soon."""

    timeout: datetime.timedelta = dataclasses.field(default_factory=_external_timeout, repr=False)
    component_type: str = dataclasses.field(default="system", repr=False)

    def run(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from health.models import ExternalService

        started = time.monotonic()
        try:
            services = list(ExternalService.objects.filter(enabled=True))
        finally:
            connections["default"].close()
        if not services:
            self.observe("services", 0, "services")
            return
        budget = self.timeout.total_seconds()
        pool = ThreadPoolExecutor(max_workers=min(8, len(services)), thread_name_prefix="ext")
        try:
            results = list(pool.map(lambda s: self._probe(s, started, budget), services))
        finally:
            pool.shutdown(wait=False)
        failures = [msg for level, msg in results if level == "fail"]
        warnings = [msg for level, msg in results if level == "warn"]
        if failures:
            raise ServiceUnavailable("; ".join(failures + warnings))
        if warnings:
            raise ServiceWarning("; ".join(warnings))

    def _probe(self, service: Any, started: float, budget: float) -> tuple[str, str]:
        """One service; its timeout counts from the start of the check, lookups included."""
        from opsconsole import http

        name = service.name
        deadline = started + min(service.timeout_seconds, budget)
        start = time.perf_counter()
        try:
            # The status and certificate are all a probe needs: no byte of the body is read.
            reply = http.request(
                service.method,
                service.url,
                timeout=max(0.05, deadline - time.monotonic()),
                allow_private=service.allow_private_network,
                verify=service.verify_tls,
                max_bytes=0,
            )
            status = reply.status_code
            expires = _certificate_expiry(reply.peer_certificate)
        except http.BlockedDestination as exc:
            self.observe(f"{name}:status", "blocked")
            return "fail", f"{name}: {exc}"
        except Exception as exc:
            elapsed = round((time.perf_counter() - start) * 1000, 2)
            self.observe(f"{name}:responseTime", elapsed, "ms")
            # A protocol error can quote what the server sent: show it inert and short.
            why = "timed out" if "Timeout" in type(exc).__name__ else http.excerpt(reason(exc))
            return "fail", f"{name}: {why} after {elapsed:.0f} ms"
        self.observe(f"{name}:responseTime", round((time.perf_counter() - start) * 1000, 2), "ms")
        self.observe(f"{name}:status", status)
        level = "fail" if service.critical else "warn"
        if status != service.expected_status:
            return level, f"{name}: HTTP {status}, expected {service.expected_status}"
        if expires is not None:
            days = (expires - timezone.now()).total_seconds() / 86400
            self.observe(f"{name}:certificateExpiresIn", round(days, 1), "days")
            if days < 0:
                return level, f"{name}: TLS certificate expired"
            if days < service.tls_warn_days:
                return "warn", f"{name}: TLS certificate expires in {days:.0f} days"
        return "pass", ""


_migrations_cache: tuple[float, int] | None = None


def pending_migrations(ttl: float = 30.0) -> int:
    """Unapplied migrations; the graph is cached for `ttl` seconds (it only changes on deploy)."""
    global _migrations_cache
    now = time.monotonic()
    if _migrations_cache is not None and now - _migrations_cache[0] < ttl:
        return _migrations_cache[1]
    try:
        executor = MigrationExecutor(connections["default"])
        count = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    finally:
        connections["default"].close()
    _migrations_cache = (now, count)
    return count


@dataclasses.dataclass
class Application(OpsCheck):
    component_type: str = dataclasses.field(default="system", repr=False)

    def run(self) -> None:
        self.observe("version", __version__)
        self.observe("environment", settings.OPS_ENVIRONMENT)
        self.observe("debug", "on" if settings.DEBUG else "off")
        self.observe("uptime", round(time.time() - psutil.Process(os.getpid()).create_time()), "s")
        try:
            pending = pending_migrations()
        except Exception as exc:
            raise ServiceUnavailable(f"cannot read migrations: {reason(exc)}") from None
        self.observe("pendingMigrations", pending, "migrations")
        if settings.DEBUG and settings.PRODUCTION:
            raise ServiceWarning("DEBUG is on in production")
        if pending:
            raise ServiceWarning(f"{pending} unapplied migration(s): run manage.py migrate")


@dataclasses.dataclass
class Disk(OpsCheck):
    path: str = ""
    warn_percent: float = dataclasses.field(default_factory=lambda: settings.OPS_HEALTH_DISK_WARN)
    fail_percent: float = dataclasses.field(default_factory=lambda: settings.OPS_HEALTH_DISK_FAIL)
    component_type: str = dataclasses.field(default="system", repr=False)

    def run(self) -> None:
        paths = [self.path] if self.path else settings.OPS_HEALTH_DISK_PATHS
        self.observe("host", hostname())
        worst: tuple[float, str] = (0.0, "")
        for path in paths:
            try:
                usage = psutil.disk_usage(path)
            except OSError as exc:
                raise ServiceUnavailable(
                    f"cannot read disk usage of {path}: {exc.strerror}"
                ) from None
            self.observe(f"{path}:utilization", usage.percent, "percent")
            self.observe(f"{path}:free", usage.free, "bytes")
            worst = max(worst, (usage.percent, path))
        percent, path = worst
        if percent >= self.fail_percent:
            raise ServiceUnavailable(
                f"{path} on {hostname()} is {percent:.1f} % full (fail at {self.fail_percent:g} %)"
            )
        if percent >= self.warn_percent:
            raise ServiceWarning(
                f"{path} on {hostname()} is {percent:.1f} % full (warn at {self.warn_percent:g} %)"
            )


@dataclasses.dataclass
class Memory(OpsCheck):
    warn_percent: float = dataclasses.field(default_factory=lambda: settings.OPS_HEALTH_MEMORY_WARN)
    fail_percent: float = dataclasses.field(default_factory=lambda: settings.OPS_HEALTH_MEMORY_FAIL)
    component_type: str = dataclasses.field(default="system", repr=False)

    def run(self) -> None:
        memory = psutil.virtual_memory()
        self.observe("host", hostname())
        self.observe("utilization", memory.percent, "percent")
        self.observe("available", memory.available, "bytes")
        if memory.percent >= self.fail_percent:
            raise ServiceUnavailable(f"memory on {hostname()} is {memory.percent:.1f} % used")
        if memory.percent >= self.warn_percent:
            raise ServiceWarning(f"memory on {hostname()} is {memory.percent:.1f} % used")


@dataclasses.dataclass
class Scheduler(OpsCheck):
    """Celery beat is alive: some beat recorded a tick within twice the shortest interval of the
    schedules it runs (opsconsole.scheduler writes the heartbeat). When beat is down every
    scheduled health run, threshold check and alert dispatch silently stops, so this component
    is part of the full report (and alerts), not of readiness: a dead scheduler is no reason to
    take web hosts out of the load balancer."""

    # Never judge sooner than this: a beat writes its heartbeat every few seconds.
    minimum_window: float = 15.0
    component_type: str = dataclasses.field(default="component", repr=False)

    def run(self) -> None:
        from opsconsole.models import SchedulerHeartbeat

        try:
            beats = list(SchedulerHeartbeat.objects.order_by("-last_tick")[:20])
        finally:
            connections["default"].close()
        if not beats:
            raise ServiceUnavailable(
                "no scheduler has reported: start Celery beat (`celery -A <app> beat`)"
            )
        now = timezone.now()
        newest = beats[0]
        window = max(2 * newest.shortest_interval, self.minimum_window)
        age = (now - newest.last_tick).total_seconds()
        alive = [b for b in beats if (now - b.last_tick).total_seconds() <= window]
        self.observe("lastTickAge", round(age, 1), "s")
        self.observe("beats", len(alive), "processes")
        if age > window:
            raise ServiceUnavailable(
                f"no scheduler tick for {age:.0f} s (limit {window:g} s, twice the shortest "
                "schedule): Celery beat is down, so no scheduled job runs"
            )


def hostname() -> str:
    return settings.OPS_HOST_NAME
