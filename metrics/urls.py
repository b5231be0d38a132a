from django.urls import URLPattern, URLResolver, path

from metrics import console, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics", views.metrics_view, name="metrics"),
    path("console/metrics/", console.metrics_console, name="metrics-console"),
]
