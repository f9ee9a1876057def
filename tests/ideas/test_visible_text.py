"""Titles and names need visible text: the pages and the API refuse invisible ones alike, naming the field."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from experiments.models import Dataset, ExperimentSpec
from experiments.services import dataset_upload, spec_create
from ideas.models import Collection, Idea, Tag
from ideas.services import idea_create, idea_update
from ideas.text import has_visible_text
from tests.api.conftest import assert_error, client_for
from tests.factories import IdeaFactory

INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c\u200d",  # zero-width non-joiner and joiner
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark
    "\u00ad",  # soft hyphen
    "\u200b \u200b",
    " \t ",
    "\u0301\u0308",  # combining marks with nothing to sit on
    "\x01\x7f",  # controls
    "\u202e",  # right-to-left override
    "\u3164",  # Hangul filler
    "\u2800",  # braille blank
]


@pytest.mark.parametrize("text", INVISIBLE)
def test_invisible_text_has_no_visible_text(text):
    assert not has_visible_text(text)


@pytest.mark.parametrize("text", ["a", "\u200bHi\u200b", "é", "e\u0301", "日本語", "😀", "#1", "-"])
def test_letters_digits_symbols_and_emoji_are_visible(text):
    assert has_visible_text(text)


@pytest.mark.django_db
@pytest.mark.parametrize("title", INVISIBLE)
def test_idea_services_refuse_an_invisible_title(title, user):
    with pytest.raises(ValidationError) as error:
        idea_create(author=user, title=title, kind="hypothesis")
    assert "title" in error.value.message_dict
    idea = IdeaFactory(author=user, title="Kept")
    with pytest.raises(ValidationError):
        idea_update(idea=idea, user=user, title=title)
    idea.refresh_from_db()
    assert idea.title == "Kept"
    assert Idea.objects.count() == 1


@pytest.mark.django_db
def test_api_refuses_an_invisible_idea_title_and_stores_nothing(user):
    client = client_for(user)
    body = assert_error(
        client.post("/api/ideas/", {"title": "\u200b\u200d\ufeff", "kind": "hypothesis"}, format="json"),
        400,
        field="title",
    )
    assert "visible text" in body["errors"]["title"][0]
    idea = IdeaFactory(author=user, title="Kept")
    assert_error(client.patch(f"/api/ideas/{idea.pk}/", {"title": "\u2060\u00ad"}, format="json"), 400, field="title")
    assert list(Idea.objects.values_list("title", flat=True)) == ["Kept"]


@pytest.mark.django_db
def test_api_refuses_invisible_tag_and_collection_names(user):
    client = client_for(user)
    for field in ("tags", "collections"):
        payload = {"title": "Real", "kind": "hypothesis", field: ["\u200b\u200c"]}
        assert_error(client.post("/api/ideas/", payload, format="json"), 400, field=field)
    assert (Idea.objects.count(), Tag.objects.count(), Collection.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_page_form_refuses_an_invisible_title_next_to_the_field(client, user):
    client.force_login(user)
    response = client.post(reverse("idea-create"), {"title": "\u200b\u200b", "kind": "hypothesis"})
    assert response.status_code == 400  # the form again, with the error
    assert "visible text" in response.content.decode()
    assert not Idea.objects.exists()


@pytest.mark.django_db
def test_spec_title_must_be_visible_in_the_service_and_the_api(user, idea):
    with pytest.raises(ValidationError) as error:
        spec_create(idea=idea, user=user, title="\u200b\u2060", kind="smoke")
    assert "title" in error.value.message_dict
    response = client_for(user).post(
        "/api/experiments/", {"idea": idea.pk, "title": "\ufeff\u00ad", "kind": "smoke"}, format="json"
    )
    assert_error(response, 400, field="title")
    assert not ExperimentSpec.objects.exists()


@pytest.mark.django_db
def test_dataset_name_must_be_visible(user, settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path
    with pytest.raises(ValidationError) as error:
        dataset_upload(user=user, name="\u200b", uploaded_file=SimpleUploadedFile("a.txt", b"some text"))
    assert "name" in error.value.message_dict
    response = client_for(user).post(
        "/api/datasets/",
        {"name": "\u200d\u200c", "file": SimpleUploadedFile("a.txt", b"some text")},
        format="multipart",
    )
    assert_error(response, 400, field="name")
    assert not Dataset.objects.exists()
