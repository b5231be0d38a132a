from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from orders.models import Order


def order_list(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"orders": list(Order.objects.values("id", "customer", "quantity"))})


def order_detail(request: HttpRequest, pk: int) -> JsonResponse:
    order = get_object_or_404(Order, pk=pk)
    return JsonResponse({"id": order.pk, "customer": order.customer})


def checkout(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("checkout lost the basket of order 7")
