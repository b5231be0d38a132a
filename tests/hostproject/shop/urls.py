from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),  # the shop's admin, which is also the console
    path("", include("opsconsole.urls_host")),  # step 3: /health/..., /metrics, ingest API
    path("", include("orders.urls")),
]
