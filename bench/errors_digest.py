"""Drain the error inbox in this process, then print the CPU seconds it used.

bench_errors.py starts one or two of these with the console's environment (DJANGO_SETTINGS_MODULE,
DATABASE_URL and PYTHONPATH set).
"""

import time

import django

django.setup()

from errors.digest import digest_batch  # noqa: E402

while digest_batch():
    pass
print("cpu", time.process_time())
