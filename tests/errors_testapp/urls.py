"""A tiny application whose view fails, reporting to Ops Console with the stock sentry-sdk."""

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, include, path


def checkout(request: HttpRequest) -> HttpResponse:
    cart_total = 0
    return HttpResponse(str(100 / cart_total))


urlpatterns: list[URLPattern | URLResolver] = [
    path("shop/checkout/", checkout),
    path("", include("opsconsole.urls")),
]
