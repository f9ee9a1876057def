"""The catalogue in a real browser: search, open an idea, log in, vote without a reload.

Drives the Debian Chromium at /usr/bin/chromium through Playwright against pytest-django's
live server. Screenshots land in /tmp/catalogue.png (the list) and /tmp/catalogue-detail.png.
"""

from __future__ import annotations

import re

import pytest

from ideas.models import Idea, IdeaKind, IdeaStatus
from ideas.services import idea_create, idea_link_add, idea_set_status
from tests.conftest import needs_chromium
from tests.factories import PASSWORD, StaffFactory, UserFactory

pytestmark = [pytest.mark.browser, needs_chromium]


def make_catalogue():
    """A few ideas that read like the real catalogue."""
    staff = StaffFactory(username="maintainer")
    induction = idea_create(
        author=staff,
        title="Investigate how 3-layer and 4-layer attention-only models differ from 2L",
        kind=IdeaKind.OPEN_ENDED,
        body=(
            "How do deeper attention-only models differ from 2L?\n\n"
            "- Look for **composition scores** between heads\n"
            "- Do the *PCA of logits* technique and look for more kinks\n"
            "- Ablate a single head and find the heads that matter that are not `induction heads`\n\n"
            "See idea #2 for the automated version."
        ),
        tags=["interpretability", "induction heads", "attention"],
        collections=["interpretability-hackathon"],
    )
    circuits = idea_create(
        author=staff,
        title="Automate ways to find specific circuits",
        kind=IdeaKind.OPEN_ENDED,
        body="Automated ways to analyse attention patterns to find kinds of heads: translation, few-shot.",
        tags=["interpretability", "circuits"],
    )
    hypothesis = idea_create(
        author=staff,
        title="Sparse autoencoder features are more monosemantic than neurons",
        kind=IdeaKind.HYPOTHESIS,
        body="Compare interpretability scores of SAE features and of MLP neurons on the same layer.",
        tags=["sparse autoencoders"],
    )
    archived = idea_create(
        author=staff,
        title="Reward model overoptimisation in toy RLHF",
        kind=IdeaKind.HYPOTHESIS,
        body="An old question, kept for the record.",
        tags=["rlhf"],
    )
    Idea.objects.filter(pk=induction.pk).update(legacy_number=1, imported_votes=6, score=6)
    Idea.objects.filter(pk=circuits.pk).update(legacy_number=2, imported_votes=4, score=4)
    Idea.objects.filter(pk=hypothesis.pk).update(imported_votes=2, score=2)
    idea_link_add(source=circuits, target=induction, link_type="expands")
    idea_set_status(idea=hypothesis, status=IdeaStatus.IN_PROGRESS, user=staff, reason="A run is training.")
    idea_set_status(idea=archived, status=IdeaStatus.ARCHIVED, user=staff, reason="Superseded.")
    return induction


def score_of(page) -> int:
    return int(page.locator(".idea-header .vote-score").inner_text())


def test_search_open_log_in_and_vote_without_a_reload(page, live_server):
    induction = make_catalogue()
    user = UserFactory(username="researcher")

    page.goto("/ideas/")
    assert page.locator(".idea-row").count() == 4
    assert page.get_by_role("link", name="AI Safety Ideas").is_visible()

    page.get_by_label("Search ideas").fill("induction")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"search=induction"))
    rows = page.locator(".idea-row")
    assert rows.count() == 1
    page.get_by_role("link", name=induction.title).click()
    page.wait_for_url(f"**{induction.get_absolute_url()}")
    assert page.locator("h1").inner_text() == induction.title
    assert page.locator(".idea-body strong", has_text="composition scores").is_visible()
    assert page.locator("#experiments").inner_text().endswith("No experiments yet.")

    # Voting anonymously: vote.js gets a 401 and takes the reader to the login page, then back.
    page.locator(".idea-header .vote-button").click()
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{induction.get_absolute_url()}")
    assert page.locator(".who").inner_text().startswith("researcher")

    # Voting logged in: the score and the button change in place, with no navigation.
    url_before, score_before = page.url, score_of(page)
    page.evaluate("window.__still_this_page = true")
    button = page.locator(".idea-header .vote-button")
    assert button.get_attribute("aria-pressed") == "false"
    button.click()
    page.wait_for_function(
        "n => document.querySelector('.idea-header .vote-score').textContent.trim() === String(n)", arg=score_before + 1
    )
    assert score_of(page) == score_before + 1
    assert button.get_attribute("aria-pressed") == "true"
    assert page.url == url_before
    assert page.evaluate("window.__still_this_page") is True
    page.screenshot(path="/tmp/catalogue-detail.png", full_page=True)

    # Unvote in place too, then the list shows the new state after a normal load.
    button.click()
    page.wait_for_function(
        "n => document.querySelector('.idea-header .vote-score').textContent.trim() === String(n)", arg=score_before
    )
    assert button.get_attribute("aria-pressed") == "false"
    button.click()
    page.wait_for_function("() => document.querySelector('.idea-header .vote-button').ariaPressed === 'true'")

    page.goto("/ideas/")
    first = page.locator(".idea-row").first
    assert first.locator(".idea-title a").inner_text() == induction.title
    assert first.locator(".vote-button").get_attribute("aria-pressed") == "true"
    assert page.locator(".vote-button[disabled]").count() == 1  # the archived idea
    page.screenshot(path="/tmp/catalogue.png", full_page=True)
