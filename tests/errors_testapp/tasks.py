from celery import shared_task


@shared_task(name="tests.errors_testapp.tasks.charge_card")
def charge_card(invoice_id: int) -> None:
    raise RuntimeError(f"card declined for invoice {invoice_id}")
