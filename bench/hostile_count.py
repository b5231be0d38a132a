"""Digest the whole inbox, then print how many of the event ids in the file named by the first
argument were stored, and how many inbox rows are left.

bench_hostile.py runs this with the console's environment once both phases are over.
"""

import sys

import django

django.setup()

from errors.digest import digest_all  # noqa: E402
from errors.models import ErrorReport, InboxEvent  # noqa: E402

while digest_all():
    pass
with open(sys.argv[1]) as fh:
    ids = fh.read().split()
stored = 0
for i in range(0, len(ids), 5000):
    stored += ErrorReport.objects.filter(event_id__in=ids[i : i + 5000]).count()
print(stored, InboxEvent.objects.count())
