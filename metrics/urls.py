from django.urls import URLPattern, URLResolver, path

from metrics import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics", views.metrics_view, name="metrics"),
]
