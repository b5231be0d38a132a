"""Queues and tasks: failed tasks recorded from Celery's signals, per-task runtime per minute,
and the console page that shows workers, queues and failures and retries or discards them."""
