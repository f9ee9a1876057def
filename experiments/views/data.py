"""What the pages fetch rather than show: a run's live status as JSON, and its artifact files.

`run_status_json` answers static/js/runs.js with the same fields as `/api/runs/<id>/`
from the same selector, but without the API's throttles, so a page can poll every second.
"""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from experiments.models import Artifact, ExperimentRun
from experiments.selectors import artifact_get, run_get
from experiments.storage import artifact_file


def run_status(run: ExperimentRun) -> dict:
    """The fields runs.js reads: status, progress, verdict, error, metrics and series."""
    return {
        "id": run.pk,
        "status": run.status,
        "status_display": run.get_status_display(),
        "is_active": run.is_active,
        "progress": run.progress,
        "progress_message": run.progress_message,
        "attempts": run.attempts,
        "verdict": run.verdict,
        "error": run.error,
        "metrics": run.metrics,
        "series": run.series,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


@never_cache
def run_status_json(request: HttpRequest, pk: int) -> HttpResponse:
    """GET /runs/<pk>/status.json."""
    try:
        run = run_get(pk=pk)
    except ExperimentRun.DoesNotExist:
        return JsonResponse({"detail": f"There is no run {pk}."}, status=404)
    return JsonResponse(run_status(run))


def artifact_download(request: HttpRequest, pk: int, name: str) -> FileResponse:
    """GET /runs/<pk>/artifacts/<name>/: the file as an attachment; 404 when the row or the file is missing."""
    try:
        artifact = artifact_get(run_id=pk, name=name)
        path = artifact_file(artifact.path)
    except (Artifact.DoesNotExist, ValueError):
        raise Http404(f"Run {pk} has no artifact {name!r}.") from None
    if not path.is_file():
        raise Http404(f"Run {pk}'s artifact {name!r} is recorded but its file is gone.")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=_download_name(artifact.name, path),
        content_type=artifact.content_type or "application/octet-stream",
    )


def _download_name(name: str, path: Path) -> str:
    """The artifact's name, with the file's extension when the name has none: 'loss-curve.json'."""
    return name if Path(name).suffix or not path.suffix else f"{name}{path.suffix}"
