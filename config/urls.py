from django.contrib import admin
from django.urls import include, path

from api.views.runs import RunLiveStatus

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    # The pages' live run updates (static/js/runs.js): the API's run representation, without its throttles.
    path("runs/<int:pk>/status.json", RunLiveStatus.as_view(), name="run-status-json"),
    path("", include("experiments.urls")),
    path("", include("ideas.urls")),
]
