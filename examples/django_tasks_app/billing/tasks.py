"""Django Tasks, run by ``python manage.py conveyor_worker
conveyor.integrations.django_tasks:worker``."""

from __future__ import annotations

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the backport
    from django_tasks import task

from .errors import PaymentDeclined


@task(priority=5)
def add(a: int, b: int) -> int:
    return a + b


@task()
def charge(amount: int) -> None:
    raise PaymentDeclined(f"card declined for {amount}")


@task(queue_name="emails", takes_context=True)
def receipt(context, order_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from .models import Order

    order = Order.objects.get(pk=order_id)  # the ORM works in the worker
    return {"order": order.pk, "attempt": context.attempt}


@task()
async def shout(text: str) -> str:
    return text.upper()
