"""Batched deletes for retention: no statement touches more than `batch_size` rows, so no
table is locked for long and readers keep answering."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models, transaction

BATCH_SIZE = 10_000


def delete_in_batches(
    queryset: models.QuerySet[Any],
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Delete every row of `queryset`, at most `batch_size` per statement. Returns the count.

    Each batch is one `DELETE ... WHERE pk IN (SELECT pk ... LIMIT n)` in its own
    transaction, so no key list travels through Python and no lock is held for long
    (measured in bench/bench_maintenance.py). Models with cascades or delete signals fall
    back to Django's collector for the batch, which still deletes at most `batch_size` rows
    of the model itself per statement.
    """
    if batch_size <= 0 or batch_size > BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {BATCH_SIZE}")
    model = queryset.model
    label = model._meta.label
    total = 0
    while True:
        batch = queryset.order_by("pk").values("pk")[:batch_size]
        with transaction.atomic():
            _, per_model = model._base_manager.filter(pk__in=batch).delete()
        deleted = per_model.get(label, 0)
        if deleted == 0:  # nothing left (or someone else deleted it first)
            return total
        total += deleted
        if progress is not None:
            progress(total)
