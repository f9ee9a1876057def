"""NUL characters in addresses, oversized bodies and odd /api/ paths get a clear 4xx, never a 500."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from experiments.models import Dataset
from experiments.services import spec_create
from ideas.models import Idea
from tests.api.conftest import assert_error, client_for
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

PAGE_FILTERS = ["tag", "collection", "author", "q", "kind", "status", "sort", "page"]
API_QUERIES = [
    "/api/ideas/?search=%00",
    "/api/ideas/?tag=%00",
    "/api/ideas/?collection=a%00b",
    "/api/ideas/?author=%00",
    "/api/ideas/export/?format=%00",
    "/api/tags/?x=%00",
    "/api/runs/?status=%00",
    "/api/experiments/?idea=%00",
    "/api/datasets/?page=%00",
    "/api/experiment-kinds/?x=%00",
    "/api/schema/?format=%00",
]


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


def assert_refused_page(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert "That did not work" in text
    for word in words:
        assert word in text, text
    return text


@pytest.mark.parametrize("name", PAGE_FILTERS)
def test_a_nul_in_a_page_filter_is_a_400_naming_it(client, name):
    assert_refused_page(client.get(f"/ideas/?{name}=x%00y"), 400, f"Parameter {name}:", "NUL")


@pytest.mark.parametrize("url", ["/runs/?status=%00", "/datasets/?page=%00", "/accounts/login/?next=%00"])
def test_a_nul_in_any_page_query_is_a_400(client, url):
    assert_refused_page(client.get(url), 400, "NUL")


def test_a_nul_in_a_parameter_name_is_named_escaped(client):
    text = assert_refused_page(client.get("/ideas/?ta%00g=x"), 400)
    assert "ta\\x00g" in text and "\x00" not in text


@pytest.mark.parametrize("url", API_QUERIES)
def test_a_nul_in_any_api_query_is_a_json_400_naming_the_parameter(anon_client, url):
    name = url.split("?")[1].split("=")[0]
    body = assert_error(anon_client.get(url), 400, field=name, code="invalid")
    assert body["detail"] == f"Invalid input: {name}."
    assert "NUL" in body["errors"][name][0]


def test_a_nul_in_an_api_write_query_is_refused_before_anything_is_stored(user):
    response = client_for(user).post("/api/ideas/?x=%00", {"title": "T", "kind": "hypothesis"}, format="json")
    assert_error(response, 400, field="x")
    assert not Idea.objects.exists()


def test_a_nul_in_an_artifact_name_is_a_404_on_the_page_and_in_the_api(client, anon_client, user, idea):
    spec = spec_create(idea=idea, user=user, title="Count", kind="smoke")
    run = spec.runs.create(kind="smoke", params={}, seed=0, spec_hash="x", created_by=user)
    assert_refused_page(client.get(f"/runs/{run.pk}/artifacts/x%00/"), 404, "NUL")
    body = assert_error(anon_client.get(f"/api/runs/{run.pk}/artifacts/x%00/"), 404, code="not_found")
    assert "NUL" in body["detail"]


@pytest.mark.parametrize("path", ["/api/foo%0Abar/", "/api/ideas/%0A/", "/api/%0D%0A", "/api/ideas/1%0A/"])
def test_api_paths_with_newlines_are_json_404s(anon_client, path):
    body = assert_error(anon_client.get(path), 404, code="not_found")
    assert body["detail"].startswith("No API endpoint at /api/")


def test_nul_in_page_form_fields_is_a_form_error_not_a_500(client, user):
    client.force_login(user)
    response = client.post(reverse("idea-create"), {"title": "A\x00B", "kind": "hypothesis", "body": "x"})
    assert response.status_code == 400
    assert "Null characters are not allowed" in response.content.decode()
    assert not Idea.objects.exists()


def test_nul_in_the_sign_up_form_is_a_form_error(client):
    response = client.post(reverse("signup"), {"username": "new\x00user", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code in (200, 400)
    assert "Null characters are not allowed" in response.content.decode()
    assert not get_user_model().objects.filter(username__startswith="new").exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "T", "kind": "hypothesis", "body": "a\x00b"}, "body"),
        ({"title": "T", "kind": "hypothesis", "tags": ["a\x00"]}, "tags.0"),
        ({"title": "T", "kind": "hypothesis", "collections": ["\x00"]}, "collections.0"),
    ],
)
def test_nul_in_api_body_fields_is_a_400_naming_the_field(user, payload, field):
    assert_error(client_for(user).post("/api/ideas/", payload, format="json"), 400, field=field)
    assert not Idea.objects.exists()


# --- bodies over DATA_UPLOAD_MAX_MEMORY_SIZE -------------------------------------------------------


@pytest.fixture
def small_body_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    return 2000


def test_an_oversized_json_body_is_a_json_413(user, small_body_limit):
    payload = {"title": "T", "kind": "hypothesis", "body": "x" * 3000}
    body = assert_error(client_for(user).post("/api/ideas/", payload, format="json"), 413, code="request_too_large")
    assert "2,000 bytes" in body["detail"]
    assert not Idea.objects.exists()


def test_an_oversized_page_form_post_is_a_413_page(client, user, small_body_limit):
    client.force_login(user)
    response = client.post(reverse("idea-create"), {"title": "T", "kind": "hypothesis", "body": "x" * 3000})
    assert_refused_page(response, 413, "2,000 bytes")
    assert not Idea.objects.exists()


def test_oversized_multipart_fields_are_a_json_413(user, small_body_limit, settings, tmp_path):
    settings.ARTIFACT_ROOT = tmp_path
    payload = {"name": "n", "description": "d" * 3000, "file": SimpleUploadedFile("a.txt", b"text")}
    response = client_for(user).post("/api/datasets/", payload, format="multipart")
    assert_error(response, 413, code="request_too_large")
    assert not Dataset.objects.exists()


def test_a_dataset_file_larger_than_the_body_limit_still_uploads(user, small_body_limit, settings, tmp_path):
    """Files do not count towards DATA_UPLOAD_MAX_MEMORY_SIZE; DATASET_MAX_BYTES is their limit."""
    settings.ARTIFACT_ROOT = tmp_path
    payload = {"name": "big", "file": SimpleUploadedFile("a.txt", b"word " * 2000)}
    response = client_for(user).post("/api/datasets/", payload, format="multipart")
    assert response.status_code == 201, response.content
    assert Dataset.objects.get().size == 10_000
