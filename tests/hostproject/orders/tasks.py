from celery import shared_task

from orders.models import Order


@shared_task(name="orders.tasks.count_orders")
def count_orders() -> int:
    return Order.objects.count()
