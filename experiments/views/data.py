"""What the pages fetch rather than show: a run's artifact files.

(A run's live status for static/js/runs.js is the API's run representation, served
without throttles at /runs/<id>/status.json by `api.views.runs.RunLiveStatus`.)
"""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest

from experiments.downloads import ArtifactNotFound, artifact_download


def artifact_download_page(request: HttpRequest, pk: int, name: str) -> FileResponse:
    """GET /runs/<pk>/artifacts/<name>/: the file as an attachment; 404 when the row or the file is missing."""
    try:
        return artifact_download(run_id=pk, name=name)
    except ArtifactNotFound as error:
        raise Http404(str(error)) from None
