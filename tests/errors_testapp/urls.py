"""A tiny application whose view fails, reporting to Ops Console with the stock sentry-sdk."""

from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path

from opsconsole.urls import urlpatterns as console_urls


def checkout(request: HttpRequest) -> HttpResponse:
    cart_total = 0
    return HttpResponse(str(100 / cart_total))


urlpatterns: list[URLPattern | URLResolver] = [path("shop/checkout/", checkout), *console_urls]
