from django.contrib import admin
from django.urls import include, path

from api.views.runs import RunLiveStatus
from config import health, metrics

urlpatterns = [
    # Answered first by config.probes.ProbeMiddleware (no host check, session or throttle); routed for reverse().
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    # The pages' live run updates (static/js/runs.js): the API's run representation, without its throttles.
    path("runs/<int:pk>/status.json", RunLiveStatus.as_view(), name="run-status-json"),
    path("", include("experiments.urls")),
    path("", include("ideas.urls")),
]
