"""experiments/views/data.py: downloading a run's artifacts."""

from __future__ import annotations

import pytest
from django.urls import reverse

from experiments.models import Artifact
from tests.experiments.views.conftest import executed, write_artifact
from tests.factories import smoke_spec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]


def test_artifact_download_is_an_attachment_and_missing_ones_are_404(client, hypothesis, author, settings):
    run = executed(smoke_spec(hypothesis, author), author)
    content = b'{"loss": [1.0, 0.5]}'
    write_artifact(settings, run, "loss-curve", content)
    response = client.get(reverse("artifact-download", kwargs={"pk": run.pk, "name": "loss-curve"}))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-loss-curve.json"'
    assert response["Content-Type"] == "application/json"

    assert client.get(reverse("artifact-download", kwargs={"pk": run.pk, "name": "nope"})).status_code == 404
    gone = write_artifact(settings, run, "gone", b"{}")
    (settings.ARTIFACT_ROOT / gone.path).unlink()
    assert client.get(reverse("artifact-download", kwargs={"pk": run.pk, "name": "gone"})).status_code == 404
    Artifact.objects.filter(pk=gone.pk).update(path="../../etc/passwd")
    assert client.get(reverse("artifact-download", kwargs={"pk": run.pk, "name": "gone"})).status_code == 404
