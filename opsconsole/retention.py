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

    Each batch selects primary keys first, then deletes by key, in its own transaction.
    Django's `delete()` still runs cascades and signals for the batch; use `raw=True`
    querysets with no relations for the fastest path.
    """
    if batch_size <= 0 or batch_size > BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {BATCH_SIZE}")
    model = queryset.model
    total = 0
    while True:
        pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return total
        with transaction.atomic():
            deleted, _ = model._base_manager.filter(pk__in=pks).delete()
        total += len(pks)
        if progress is not None:
            progress(total)
        if deleted == 0:  # someone else deleted them first; avoid spinning
            return total
