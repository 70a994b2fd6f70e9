"""A view that writes an order and enqueues its receipt only once the order is committed."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse

from conveyor.integrations.django import enqueue_on_commit

from .models import Order
from .tasks import receipt


def place_order(request: HttpRequest) -> JsonResponse:
    with transaction.atomic():
        order = Order.objects.create(item=request.GET.get("item", "book"))
        enqueue_on_commit(receipt, order.pk)  # a Django task; a Conveyor queue works too
        if request.GET.get("fail"):
            raise RuntimeError("rolled back: no receipt")
    return JsonResponse({"order": order.pk}, status=201)
