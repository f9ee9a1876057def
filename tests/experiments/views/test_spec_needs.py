"""A spec that still needs something (a request set to upload, a model folder to copy in) says so on its card, and
a run of it is refused until it has it."""

import pytest
from rest_framework.test import APIClient

from experiments.models import ExperimentRun
from experiments.services import spec_create
from tests.factories import IdeaFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path))
    return tmp_path


def _spec(kind, params):
    user = UserFactory()
    idea = IdeaFactory(kind="hypothesis")
    spec = spec_create(idea=idea, user=user, title="Behaviour", kind=kind, params=params)
    return user, idea, spec


def test_a_refusal_spec_without_a_request_set_is_saved_but_not_run(client, models_dir):
    model = {"source": "pretrained", "name": str(models_dir / "eval-lm")}
    user, idea, spec = _spec("refusal_rate", {"model": model})
    page = client.get(idea.get_absolute_url()).content.decode()
    assert "Before it can run:" in page and "request set you upload" in page
    api = APIClient()
    api.force_authenticate(user)
    response = api.post(f"/api/experiments/{spec.pk}/runs/", {}, format="json")
    assert response.status_code == 400
    assert "request set you upload" in response.json()["errors"]["params.data"][0]
    assert not ExperimentRun.objects.exists()


def test_a_spec_on_a_model_folder_not_on_this_machine_says_what_to_put_there(client, models_dir):
    folder = models_dir / "eval-lm"
    _, idea, _ = _spec("framing_conformity", {"model": {"source": "pretrained", "name": str(folder)}})
    page = client.get(idea.get_absolute_url()).content.decode()
    assert f"It reads the pretrained model folder {folder}, which is not on this machine" in page
    assert "huggingface-cli download gpt2" in page
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert "Before it can run:" not in client.get(idea.get_absolute_url()).content.decode()
