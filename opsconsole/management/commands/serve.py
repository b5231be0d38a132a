"""`manage.py serve`: set up, then run the web server, two Celery workers and beat together.

The workers: one for the default queue (health, alerts, backups, maintenance, metrics) and
one for the error digest's queue (settings.OPS_ERRORS_DIGEST_QUEUE).

This is what `make run` calls. Ctrl-C (or SIGTERM) stops them all cleanly: each child gets
SIGTERM, then SIGKILL if it has not exited within the grace period.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

GRACE_SECONDS = 15


class Command(BaseCommand):
    help = "Migrate, create the admin account, then run gunicorn, Celery workers and beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-worker", action="store_true", help="Do not start the workers.")
        parser.add_argument("--no-beat", action="store_true", help="Do not start beat.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.prepare()
        children = self.start_children(options)
        url = f"http://{options['host']}:{options['port']}/admin/"
        self.stdout.write(self.style.SUCCESS(f"Ops Console is running at {url}  (Ctrl-C stops it)"))
        self.supervise(children)

    def prepare(self) -> None:
        var = Path(settings.OPS_VAR_DIR)
        for sub in ("", "broker/queue", "broker/processed", "broker/control", "media", "logs"):
            (var / sub).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        if str(settings.CACHES["default"]["BACKEND"]).endswith("DatabaseCache"):
            call_command("createcachetable", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.ensure_admin()

    def ensure_admin(self) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("Admin account exists; sign in with it.")
            return
        password = os.environ.get("OPS_ADMIN_PASSWORD", "")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(16)
        username = os.environ.get("OPS_ADMIN_USER", "admin")
        user_model.objects.create_superuser(
            username, os.environ.get("OPS_ADMIN_EMAIL", ""), password
        )
        if generated:
            # Printed once, to the terminal only; it is never logged.
            self.stdout.write(
                self.style.WARNING(
                    f"Created the admin account: user {username!r}, password {password}\n"
                    "  This password is shown only now. Change it in the console."
                )
            )
        else:
            self.stdout.write(f"Created the admin account {username!r} with OPS_ADMIN_PASSWORD.")

    def start_children(self, options: dict[str, Any]) -> dict[str, subprocess.Popen[bytes]]:
        python = sys.executable
        base = Path(settings.BASE_DIR)
        commands: dict[str, list[str]] = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "opsconsole.wsgi:application",
                "--bind",
                f"{options['host']}:{options['port']}",
                "--workers",
                str(options["web_workers"]),
                "--threads",
                "4",
                "--graceful-timeout",
                "10",
                "--access-logfile",
                "-",
            ],
        }
        if not options["no_worker"]:
            celery = [python, "-m", "celery", "-A", "opsconsole", "worker", "--loglevel=INFO"]
            # Two workers: the error digest has its own, so a flood of events never delays
            # health checks, alerts or backups on the default queue (and vice versa).
            commands["worker"] = [
                *celery,
                f"--queues={settings.CELERY_TASK_DEFAULT_QUEUE}",
                "--hostname=worker@%h",
                "--concurrency=2",
            ]
            commands["ingest-worker"] = [
                *celery,
                f"--queues={settings.OPS_ERRORS_DIGEST_QUEUE}",
                "--hostname=ingest@%h",
                "--concurrency=1",
            ]
        if not options["no_beat"]:
            commands["beat"] = [
                python,
                "-m",
                "celery",
                "-A",
                "opsconsole",
                "beat",
                "--loglevel=INFO",
                f"--pidfile={Path(settings.OPS_VAR_DIR) / 'beat.pid'}",
            ]
        children: dict[str, subprocess.Popen[bytes]] = {}
        for name, cmd in commands.items():
            # Own process group, so a terminal Ctrl-C reaches us first and we stop them in order.
            children[name] = subprocess.Popen(cmd, cwd=base, start_new_session=True)  # noqa: S603
        return children

    def supervise(self, children: dict[str, subprocess.Popen[bytes]]) -> None:
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        failed: str | None = None
        while not stopping:
            for name, proc in children.items():
                if proc.poll() is not None:
                    failed = f"{name} exited with code {proc.returncode}"
                    stopping = True
                    break
            time.sleep(0.3)
        self.stdout.write("Stopping web, worker and beat...")
        for proc in children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for proc in children.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if failed:
            raise CommandError(f"Stopped because {failed}; see its output above.")
        self.stdout.write(self.style.SUCCESS("Stopped cleanly."))
