"""`Idea.excerpt`: the list's plain-text preview, stored with the body by every path that writes one."""

from __future__ import annotations

import importlib
import json
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from ideas.admin import IdeaAdmin
from ideas.models import Idea
from ideas.rendering import plain_excerpt
from ideas.services import catalogue_export, catalogue_import, catalogue_read, idea_create, idea_update
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

BODY = "Look for **induction** heads in [small models](https://example.org).\n\n<b>bold</b> " + "word " * 80
NEW_BODY = "Now about *grokking*."


def stored_excerpt(idea: Idea) -> str:
    return Idea.objects.values_list("excerpt", flat=True).get(pk=idea.pk)


def test_create_stores_the_plain_excerpt_of_the_body(user):
    idea = idea_create(author=user, title="Induction", kind="hypothesis", body=BODY)
    assert stored_excerpt(idea) == plain_excerpt(BODY)
    assert stored_excerpt(idea).startswith("Look for induction heads in small models. bold word")
    assert stored_excerpt(idea).endswith("…") and len(stored_excerpt(idea)) <= 220


def test_update_of_the_body_replaces_the_excerpt_and_other_edits_keep_it(user):
    idea = idea_create(author=user, title="Induction", kind="hypothesis", body=BODY)
    idea_update(idea=idea, user=user, title="Renamed")
    assert stored_excerpt(idea) == plain_excerpt(BODY)
    idea_update(idea=idea, user=user, body=NEW_BODY)
    assert stored_excerpt(idea) == "Now about grokking."
    idea_update(idea=idea, user=user, body="")
    assert stored_excerpt(idea) == ""


def test_import_stores_excerpts_of_new_ideas_and_of_changed_bodies(user):
    idea = idea_create(author=user, title="Induction", kind="hypothesis", body=BODY)
    document = json.loads(catalogue_export(file_format="json"))
    Idea.objects.all().delete()

    catalogue_import(catalogue=catalogue_read(data=json.dumps(document).encode(), file_format="json"))
    [created] = Idea.objects.all()
    assert stored_excerpt(created) == plain_excerpt(BODY)

    document["ideas"][0]["body"] = NEW_BODY
    summary = catalogue_import(catalogue=catalogue_read(data=json.dumps(document).encode(), file_format="json"))
    assert summary.updated == 1
    assert stored_excerpt(created) == "Now about grokking."
    assert idea.pk != created.pk


def test_admin_save_stores_the_excerpt_of_the_edited_body(user):
    idea = idea_create(author=user, title="Induction", kind="hypothesis", body=BODY)
    idea.body = NEW_BODY
    request = RequestFactory().post(reverse("admin:ideas_idea_change", args=[idea.pk]))
    request.user = StaffFactory(is_superuser=True)
    IdeaAdmin(Idea, admin.site).save_model(request, idea, form=None, change=True)
    assert stored_excerpt(idea) == "Now about grokking."


def test_migration_fills_the_excerpts_of_existing_ideas(user):
    first = idea_create(author=user, title="One", kind="hypothesis", body=BODY)
    second = idea_create(author=user, title="Two", kind="hypothesis", body=NEW_BODY)
    Idea.objects.update(excerpt="")  # as the rows were before the column existed
    migration = importlib.import_module("ideas.migrations.0004_idea_excerpt")

    migration.fill_excerpts(apps, SimpleNamespace(connection=connection))

    assert stored_excerpt(first) == plain_excerpt(BODY)
    assert stored_excerpt(second) == "Now about grokking."


def test_list_page_shows_the_stored_excerpt_not_one_rendered_from_the_body(client, user):
    idea = idea_create(author=user, title="Induction", kind="hypothesis", body=NEW_BODY)
    Idea.objects.filter(pk=idea.pk).update(excerpt="The stored preview.")
    html = client.get(reverse("idea-list")).content.decode()
    assert '<p class="excerpt">The stored preview.</p>' in html
    assert "grokking" not in html
