"""`manage.py sample_host [--once]`: sample this host's resources for a host that runs no web,
worker or beat process (a database server, a proxy), as a service of its own.

Runs in the foreground until stopped, sampling every OPS_HOST_SAMPLE_INTERVAL, and takes part in
the host's sampler lock like any other process. `--once` samples once and exits (cron).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from metrics.collectors import collect_resource_usage
from metrics.sampler import HostSampler


class Command(BaseCommand):
    help = "Sample this host's CPU, memory, disk, network and load into the console."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Sample once, then exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            try:
                result = collect_resource_usage()
            except DatabaseError as exc:
                raise CommandError(
                    f"could not store the sample ({type(exc).__name__}): is DATABASE_URL right?"
                ) from None
            self.stdout.write(f"sampled {result['host']} at {result['recorded_at']}")
            return
        interval = settings.OPS_HOST_SAMPLE_INTERVAL
        self.stdout.write(f"sampling {settings.OPS_HOST_NAME} every {interval:g} s; Ctrl-C stops")
        sampler = HostSampler(interval)
        try:
            sampler.run()  # in this thread: the command is the service
        except KeyboardInterrupt:
            sampler.stopping.set()
