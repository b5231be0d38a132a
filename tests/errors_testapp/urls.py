"""A tiny application whose view fails, reporting to Ops Console with the stock sentry-sdk."""

import logging

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path


def checkout(request: HttpRequest) -> HttpResponse:
    logging.getLogger("shop.orders").info("checking out the cart")
    cart_total = 0
    return HttpResponse(str(100 / cart_total))


def order(request: HttpRequest, pk: int) -> HttpResponse:
    logging.getLogger("shop.orders").info("customer looked at order %s", pk)
    return HttpResponse(f"order {pk}")


urlpatterns: list[URLPattern | URLResolver] = [
    path("shop/checkout/", checkout),
    path("shop/orders/<int:pk>/", order),
    path("", include("opsconsole.urls")),
]
