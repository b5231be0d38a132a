from django.urls import URLPattern, URLResolver, path

from metrics import console, detail, views
from opsconsole.admintools import guarded_page

VIEW_PERMISSION = "metrics.view_performancemetric"


def _guarded(view: detail.View) -> detail.View:
    return guarded_page(view, VIEW_PERMISSION, forbid_non_staff=True)


urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics", views.metrics_view, name="metrics"),
    path(
        "console/metrics/",
        guarded_page(
            console.metrics_console, "metrics.view_performancemetric", forbid_non_staff=True
        ),
        name="metrics-console",
    ),
    path("console/metrics/routes/", _guarded(detail.routes_page), name="metrics-routes"),
    path("console/metrics/slow/", _guarded(detail.slow_page), name="metrics-slow"),
    path("console/metrics/tasks/", _guarded(detail.tasks_page), name="metrics-tasks"),
    path("console/metrics/reports/", _guarded(detail.reports_page), name="metrics-reports"),
]
