from django.urls import URLPattern, URLResolver, path

from errors import views

app_name = "errors"
urlpatterns: list[URLPattern | URLResolver] = [
    path("api/<int:project_id>/envelope/", views.envelope_view, name="envelope"),
    path("api/<int:project_id>/store/", views.store_view, name="store"),
]
