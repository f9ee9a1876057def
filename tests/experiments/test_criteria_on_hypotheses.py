"""Criteria are for hypotheses: the add-an-experiment page and the catalogue command set none on open-ended ideas."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from experiments.models import ExperimentSpec
from ideas.models import IdeaKind
from tests.factories import IdeaFactory, StaffFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

SUPPORT_IF_FIVE_STEPS = {"metric": "steps_completed", "comparator": ">=", "threshold": 5, "if_met": "supports"}


@pytest.fixture
def author(db):
    return UserFactory(username="author")


def add_url(idea) -> str:
    return reverse("spec-create", kwargs={"pk": idea.pk})


@pytest.mark.parametrize("who", ["author", "staff"])
def test_spec_form_offers_no_criterion_on_an_open_ended_idea(client, author, who):
    idea = IdeaFactory(kind=IdeaKind.OPEN_ENDED, author=author)
    client.force_login(author if who == "author" else StaffFactory())
    html = client.get(add_url(idea), {"kind": "smoke"}).content.decode()
    assert 'name="params"' in html
    assert 'name="criterion.metric"' not in html and "supports the hypothesis" not in html
    assert "Criteria are for hypotheses: this idea is open-ended" in html


def test_spec_form_still_offers_the_criterion_on_a_hypothesis(client, author):
    client.force_login(author)
    html = client.get(add_url(IdeaFactory(kind=IdeaKind.HYPOTHESIS, author=author)), {"kind": "smoke"}).content.decode()
    assert 'name="criterion.metric"' in html and "supports the hypothesis" in html
    assert "Criteria are for hypotheses" not in html


def test_a_criterion_posted_for_an_open_ended_idea_is_ignored_by_the_form(client, author):
    """The page has no criterion fields there: a hand-made post with them gets a spec without one."""
    idea = IdeaFactory(kind=IdeaKind.OPEN_ENDED, author=author)
    client.force_login(author)
    data = {"kind": "smoke", "title": "Count", "seed": "0", "params": '{"steps": 3}'}
    data |= {f"criterion.{name}": str(value) for name, value in SUPPORT_IF_FIVE_STEPS.items()}
    response = client.post(add_url(idea), data)
    assert response.status_code == 302, response.content.decode()
    assert ExperimentSpec.objects.get().criterion is None


def test_catalogue_command_refuses_a_criterion_on_an_open_ended_idea(tmp_path):
    IdeaFactory(kind=IdeaKind.OPEN_ENDED, legacy_number=7)
    UserFactory(username="demo", is_staff=True)
    entries = [{"legacy_number": 7, "title": "Count", "kind": "smoke", "criterion": SUPPORT_IF_FIVE_STEPS}]
    path = tmp_path / "specs.json"
    path.write_text(json.dumps(entries))
    with pytest.raises(CommandError, match=r"entry 1: .*'criterion': \['Criteria are for hypotheses"):
        call_command("attach_catalogue_experiments", str(path), "--user", "demo")
    assert not ExperimentSpec.objects.exists()


def test_shipped_catalogue_specs_put_criteria_only_on_hypotheses():
    call_command("import_ideas", "ideas/fixtures/ai_safety_ideas.txt", verbosity=0)
    UserFactory(username="demo")
    call_command("attach_catalogue_experiments", "--user", "demo")
    assert ExperimentSpec.objects.exists()
    on_other_ideas = ExperimentSpec.objects.exclude(idea__kind=IdeaKind.HYPOTHESIS).filter(criterion__isnull=False)
    assert not on_other_ideas.exists()
