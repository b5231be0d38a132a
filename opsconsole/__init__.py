"""Ops Console: health, metrics, errors, backups, maintenance and alerts for a Django + Celery
project. `opsconsole.host` lists what a host project adds (README: Add it to an existing
project); the standalone console's own project is `opsconsole.settings` and `opsconsole.celery`.
"""

# The one place the version is written (pyproject.toml reads it from here).
__version__ = "0.2.0"
