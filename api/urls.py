"""Routes under /api/ (namespace "api"); anything else under /api/ is a JSON 404."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from api.views import auth, datasets, experiments, export, ideas, links, not_found, runs, status, taxonomy, votes

app_name = "api"

urlpatterns = [
    path("ideas/", ideas.IdeaListCreate.as_view(), name="idea-list"),
    path("ideas/export/", export.IdeaExport.as_view(), name="idea-export"),
    path("ideas/<int:pk>/", ideas.IdeaDetail.as_view(), name="idea-detail"),
    path("ideas/<int:pk>/vote/", votes.IdeaVote.as_view(), name="idea-vote"),
    path("ideas/<int:pk>/status/", status.IdeaStatusChange.as_view(), name="idea-status"),
    path("ideas/<int:pk>/status-history/", status.IdeaStatusHistory.as_view(), name="idea-status-history"),
    path("ideas/<int:pk>/links/", links.IdeaLinkCreate.as_view(), name="idea-links"),
    path("tags/", taxonomy.TagList.as_view(), name="tag-list"),
    path("collections/", taxonomy.CollectionList.as_view(), name="collection-list"),
    path("auth/token/", auth.TokenCreate.as_view(), name="token"),
    path("experiment-kinds/", experiments.KindList.as_view(), name="experiment-kind-list"),
    path("experiment-kinds/<str:key>/", experiments.KindDetail.as_view(), name="experiment-kind-detail"),
    path("experiments/", experiments.SpecListCreate.as_view(), name="experiment-list"),
    path("experiments/<int:pk>/", experiments.SpecDetail.as_view(), name="experiment-detail"),
    path("experiments/<int:pk>/runs/", experiments.SpecRunTrigger.as_view(), name="experiment-runs"),
    path("runs/", runs.RunList.as_view(), name="run-list"),
    path("runs/<int:pk>/", runs.RunDetail.as_view(), name="run-detail"),
    path("runs/<int:pk>/cancel/", runs.RunCancel.as_view(), name="run-cancel"),
    path("runs/<int:pk>/artifacts/<str:name>/", runs.RunArtifactDownload.as_view(), name="run-artifact"),
    path("datasets/", datasets.DatasetListCreate.as_view(), name="dataset-list"),
    path("datasets/<int:pk>/", datasets.DatasetDetail.as_view(), name="dataset-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as its own request (?script): no inline script.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # [\s\S], not ".": a path with a newline under /api/ is a JSON 404 too.
    re_path(r"^[\s\S]*$", not_found.ApiNotFound.as_view(), name=not_found.NOT_FOUND_NAME),
]
