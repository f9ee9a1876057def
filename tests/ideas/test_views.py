"""The catalogue pages end to end: list, detail, writing, status changes, votes, accounts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ideas.models import Idea, IdeaKind, IdeaStatus, StatusChange, Vote
from ideas.services import idea_create, idea_link_add, idea_set_status, idea_vote
from tests.factories import CollectionFactory, IdeaFactory, StaffFactory, TagFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("idea-list")


def titles(response) -> list[str]:
    return [idea.title for idea in response.context["page"].object_list]


def vote_url(idea: Idea) -> str:
    return reverse("idea-vote", kwargs={"pk": idea.pk})


# --- list -------------------------------------------------------------------------------------------------


def test_root_redirects_to_the_list(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == LIST


def test_list_row_shows_score_vote_button_badges_tags_and_a_plain_excerpt(client):
    idea = IdeaFactory(
        title="Induction heads in 2L models",
        kind=IdeaKind.OPEN_ENDED,
        status=IdeaStatus.IN_PROGRESS,
        body="Look for **induction** heads.\n\n<b>bold</b>",
        imported_votes=7,
    )
    idea.tags.add(TagFactory(name="interpretability"))
    html = client.get(LIST).content.decode()
    assert f'href="{idea.get_absolute_url()}"' in html
    assert '<output class="vote-score" aria-live="polite" title="Score">7</output>' in html
    assert 'aria-pressed="false"' in html
    assert "badge kind kind-open_ended" in html and "Open-ended" in html
    assert "status-in_progress" in html and "In progress" in html
    assert ">interpretability</a>" in html
    assert "Look for induction heads. bold" in html  # markdown and html stripped
    assert "<strong>induction</strong>" not in html


def test_list_filters_by_kind_status_tag_and_collection(client):
    tag, collection = TagFactory(name="probing"), CollectionFactory(name="hackathon")
    hypothesis = IdeaFactory(title="A hypothesis", kind=IdeaKind.HYPOTHESIS)
    open_ended = IdeaFactory(title="An open question", kind=IdeaKind.OPEN_ENDED, status=IdeaStatus.RESOLVED)
    tagged = IdeaFactory(title="Tagged", kind=IdeaKind.OPEN_ENDED)
    tagged.tags.add(tag)
    collected = IdeaFactory(title="Collected")
    collected.collections.add(collection)

    assert set(titles(client.get(LIST, {"kind": "hypothesis"}))) == {"A hypothesis", "Collected"}
    assert titles(client.get(LIST, {"status": "resolved"})) == [open_ended.title]
    assert titles(client.get(LIST, {"tag": "probing"})) == ["Tagged"]
    assert titles(client.get(LIST, {"collection": "hackathon"})) == ["Collected"]
    assert titles(client.get(LIST, {"kind": "open_ended", "tag": "probing"})) == ["Tagged"]
    assert hypothesis.title not in titles(client.get(LIST, {"kind": "open_ended"}))


def test_list_offers_tags_and_collections_with_counts_and_shows_active_filters(client):
    tag = TagFactory(name="probing")
    for idea in IdeaFactory.create_batch(2):
        idea.tags.add(tag)
    CollectionFactory(name="hackathon").ideas.add(IdeaFactory())
    html = client.get(LIST, {"tag": "probing"}).content.decode()
    assert '<option value="probing" selected>probing (2)</option>' in html
    assert "hackathon (1)</option>" in html
    assert 'aria-label="Active filters"' in html and "Tag: <strong>probing</strong>" in html


def test_list_search_matches_title_and_body(client):
    IdeaFactory(title="Induction heads form in two-layer models", body="")
    IdeaFactory(title="Probing", body="We look for induction circuits with probes.")
    IdeaFactory(title="Unrelated", body="Reward modelling.")
    response = client.get(LIST, {"search": "induction"})
    assert response.status_code == 200
    assert set(titles(response)) == {"Induction heads form in two-layer models", "Probing"}
    assert "Ideas matching “induction”" in response.content.decode()
    assert titles(client.get(LIST, {"search": "nothing-like-this"})) == []


def test_list_sorts_by_score_newest_and_title(client):
    old = IdeaFactory(title="Beta", imported_votes=5)
    new = IdeaFactory(title="Alpha", imported_votes=1)
    top = IdeaFactory(title="Gamma", imported_votes=9)
    now = timezone.now()
    for age, idea in ((3, old), (1, new), (2, top)):
        Idea.objects.filter(pk=idea.pk).update(created_at=now - dt.timedelta(days=age))

    assert titles(client.get(LIST)) == ["Gamma", "Beta", "Alpha"]  # "Top" by default
    assert titles(client.get(LIST, {"ordering": "-score"})) == ["Gamma", "Beta", "Alpha"]
    assert titles(client.get(LIST, {"ordering": "-created"})) == ["Alpha", "Gamma", "Beta"]
    assert titles(client.get(LIST, {"ordering": "title"})) == ["Alpha", "Beta", "Gamma"]


def test_list_paginates_with_the_configured_page_size(client, settings):
    settings.IDEAS_PAGE_SIZE = 2
    for n in range(5):
        IdeaFactory(title=f"Idea {n}", imported_votes=10 - n)
    first = client.get(LIST, {"kind": "hypothesis"})
    assert titles(first) == ["Idea 0", "Idea 1"]
    html = first.content.decode()
    assert 'href="?kind=hypothesis&amp;page=2"' in html  # filters survive paging
    assert titles(client.get(LIST, {"kind": "hypothesis", "page": 3})) == ["Idea 4"]
    assert titles(client.get(LIST, {"page": 99})) == ["Idea 4"]  # past the end: the last page
    assert titles(client.get(LIST, {"page": "x"})) == ["Idea 0", "Idea 1"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kind": "poem"}, "Unknown kind &#x27;poem&#x27;"),
        ({"status": "done"}, "Unknown status &#x27;done&#x27;"),
        ({"ordering": "votes"}, "Unknown ordering &#x27;votes&#x27;"),
        ({"tag": "no-such-tag"}, "No tag with slug &#x27;no-such-tag&#x27;"),
        ({"collection": "nope"}, "No collection with slug &#x27;nope&#x27;"),
        ({"search": "x" * 201}, "At most 200 characters"),
        ({"search": "w " * 33}, "At most 32 words (this search has 33)."),
        ({"search": "a\x01b"}, "Control characters are not allowed in a search."),
    ],
)
def test_list_with_a_bad_filter_is_a_400_that_says_why(client, params, message):
    IdeaFactory()
    response = client.get(LIST, params)
    assert response.status_code == 400
    html = response.content.decode()
    assert "These filters cannot be applied" in html
    assert message in html
    assert 'class="idea-list"' not in html


def _add_ideas(n: int, tags, collection, user=None) -> None:
    for idea in IdeaFactory.create_batch(n):
        idea.tags.add(*tags)
        idea.collections.add(collection)
        if user is not None and idea.pk % 2:
            idea_vote(idea=idea, user=user)


def _list_queries(client) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST, {"ordering": "-created"})
    assert response.status_code == 200
    return len(queries), len(response.context["page"].object_list)


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
def test_list_query_count_does_not_grow_with_the_number_of_ideas(client, settings, logged_in):
    settings.IDEAS_PAGE_SIZE = 20
    user = UserFactory() if logged_in else None
    if user is not None:
        client.force_login(user)
    tags, collection = [TagFactory(name=f"t{n}") for n in range(3)], CollectionFactory(name="c")

    _add_ideas(3, tags, collection, user)
    few, shown = _list_queries(client)
    assert shown == 3
    _add_ideas(22, tags, collection, user)
    many, shown = _list_queries(client)
    assert shown == 20
    assert few == many
    # count, page, tags, collections, tag list, collection list (+ session and user when logged in)
    assert many == (8 if logged_in else 6)


@pytest.mark.parametrize("page_size", [20, 50])
def test_list_page_reads_six_queries_and_no_bodies_at_page_sizes_20_and_50(
    client, settings, page_size, django_assert_num_queries
):
    settings.IDEAS_PAGE_SIZE = page_size
    tags, collection = [TagFactory(name=f"t{n}") for n in range(3)], CollectionFactory(name="c")
    _add_ideas(60, tags, collection)
    # tag list, collection list, count, page, tags, collections
    with django_assert_num_queries(6) as queries:
        response = client.get(LIST)
    assert len(response.context["page"].object_list) == page_size
    assert all('"ideas_idea"."body"' not in query["sql"] for query in queries)
    assert response.content.decode().count('<p class="excerpt">Some markdown body.</p>') == page_size


# --- detail -----------------------------------------------------------------------------------------------


def test_detail_shows_body_score_status_tags_collections_links_and_experiments(client, staff):
    idea = IdeaFactory(title="Main idea", body="# Plan\n\nSee idea #131 and idea #999.", imported_votes=3)
    idea.tags.add(TagFactory(name="circuits"))
    idea.collections.add(CollectionFactory(name="interpretability-hackathon"))
    expanded = IdeaFactory(title="Expanded one", legacy_number=131)
    duplicate_of_main = IdeaFactory(title="A duplicate")
    idea_link_add(source=idea, target=expanded, link_type="expands")
    idea_link_add(source=duplicate_of_main, target=idea, link_type="duplicates")
    idea_set_status(idea=idea, status=IdeaStatus.IN_PROGRESS, user=staff, reason="Started on it.")

    response = client.get(idea.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Plan</h1>" in html
    assert f'<a href="{expanded.get_absolute_url()}" rel="nofollow noopener noreferrer">idea #131</a>' in html
    assert "idea #999" in html and "idea #999</a>" not in html  # unknown numbers stay text
    assert '<output class="vote-score" aria-live="polite" title="Score">3</output>' in html
    assert "circuits</a>" in html and "interpretability-hackathon</a>" in html
    assert "This idea expands</span>" in html and "Expanded one</a>" in html
    assert "A duplicate</a>" in html and "duplicates this idea</span>" in html
    assert 'id="experiments"' in html and "No experiments yet." in html
    history = html[html.index('id="status-history"') :]
    assert "Open</span>" in history and "In progress</span>" in history
    assert f"by {staff.username}" in history and "Started on it." in history


def test_detail_with_an_old_slug_redirects_to_the_canonical_address(client, idea):
    response = client.get(reverse("idea-detail", kwargs={"pk": idea.pk, "slug": "old-title"}))
    assert response.status_code == 301
    assert response["Location"] == idea.get_absolute_url()


def test_short_and_legacy_addresses_redirect_to_the_idea(client):
    idea = IdeaFactory(legacy_number=131)
    short = client.get(reverse("idea-permalink", kwargs={"pk": idea.pk}))
    assert short.status_code == 301 and short["Location"] == idea.get_absolute_url()
    by_number = client.get(reverse("idea-by-number", kwargs={"number": 131}))
    assert by_number.status_code == 301 and by_number["Location"] == idea.get_absolute_url()
    assert client.get(reverse("idea-by-number", kwargs={"number": 7})).status_code == 404
    assert client.get(reverse("idea-permalink", kwargs={"pk": 999999})).status_code == 404
    assert client.get(reverse("idea-detail", kwargs={"pk": 999999, "slug": "x"})).status_code == 404


XSS_BODY = """
<script>alert('script')</script>
<img src=x onerror="alert('img')">
[click me](javascript:alert('md-link'))
<a href="javascript:alert('a-href')">a link</a>
<a href="JaVaScRiPt:alert('mixed-case')">mixed case</a>
<svg onload="alert('svg')"><circle r="1"/></svg>
<iframe src="https://evil.example/"></iframe>
<p style="background:url(javascript:alert('style'))">styled</p>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>
![pixel](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)
<div onclick="alert('click')" onmouseover="alert('hover')">div</div>
<object data="x.swf"></object><embed src="x.swf"><form action="https://evil.example/"><input></form>
<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')></style></mglyph></table></mtext></math>
"""


def test_detail_body_never_lets_script_or_dangerous_attributes_through(client):
    idea = IdeaFactory(title="<script>alert('title')</script>", body=XSS_BODY)
    html = client.get(idea.get_absolute_url()).content.decode()
    body = html[html.index('class="idea-body') : html.index('id="experiments"')]
    lowered = body.lower()
    for needle in ("<script", "<iframe", "<svg", "<object", "<embed", "<form", "<style", "<math"):
        assert needle not in lowered, needle
    for needle in ("onerror", "onload", "onclick", "onmouseover", "style=", "javascript:", "data:"):
        assert needle not in lowered, needle
    # The page has exactly the scripts it ships: vote.js and nothing the author wrote.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/vote.js" defer>']
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in html  # the title is escaped
    assert "<p>styled</p>" in body and ">a link</a>" in body  # harmless content survives


def test_detail_list_excerpt_escapes_html_in_the_body(client):
    IdeaFactory(body="<img src=x onerror=alert(1)> text &lt;script&gt;")
    html = client.get(LIST).content.decode()
    assert "onerror" not in html
    assert "<script>" not in html.split('class="idea-list"')[1]


# --- create and edit --------------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_log_in_to_submit_or_edit(client, idea):
    for url in (reverse("idea-create"), reverse("idea-edit", kwargs={"pk": idea.pk})):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={url}"
    response = client.post(reverse("idea-create"), {"title": "x", "kind": "hypothesis"})
    assert response.status_code == 302 and not Idea.objects.filter(title="x").exists()


def test_logged_in_user_submits_an_idea_with_comma_separated_tags(client, user):
    client.force_login(user)
    assert client.get(reverse("idea-create")).status_code == 200
    response = client.post(
        reverse("idea-create"),
        {"title": "Do SAEs find induction features?", "kind": "hypothesis", "body": "Body", "tags": "SAE, induction,"},
    )
    idea = Idea.objects.get(title="Do SAEs find induction features?")
    assert response.status_code == 302 and response["Location"] == idea.get_absolute_url()
    assert idea.author == user and idea.kind == "hypothesis" and idea.status == "open"
    assert sorted(tag.name for tag in idea.tags.all()) == ["SAE", "induction"]


def test_submit_errors_show_next_to_the_field(client, user):
    client.force_login(user)
    response = client.post(reverse("idea-create"), {"title": "   ", "kind": "poem", "tags": "ok, " + "x" * 70})
    assert response.status_code == 400
    form = response.context["form"]
    assert "title" in form.errors and "kind" in form.errors
    assert Idea.objects.count() == 0
    html = response.content.decode()
    assert 'class="field field-invalid"' in html and 'class="errorlist"' in html
    # An error only the service knows (the tag is too long) lands on the tags field.
    response = client.post(reverse("idea-create"), {"title": "Fine", "kind": "hypothesis", "tags": "x" * 70})
    assert response.status_code == 400
    assert "longer than 64 characters" in response.context["form"].errors["tags"][0]
    assert Idea.objects.count() == 0


def test_only_the_author_or_staff_may_edit(client):
    author, other, staff = UserFactory(), UserFactory(), StaffFactory()
    idea = idea_create(author=author, title="Original", kind="hypothesis", tags=["a"])
    url = reverse("idea-edit", kwargs={"pk": idea.pk})
    data = {"title": "Changed", "kind": "hypothesis", "body": "New body", "tags": "a, b"}

    client.force_login(other)
    assert client.get(url).status_code == 403
    assert client.post(url, data).status_code == 403
    idea.refresh_from_db()
    assert idea.title == "Original"

    client.force_login(author)
    page = client.get(url)
    assert page.status_code == 200 and page.context["form"].initial["tags"] == "a"
    response = client.post(url, data)
    assert response.status_code == 302 and response["Location"] == idea.get_absolute_url()
    idea.refresh_from_db()
    assert (idea.title, idea.body) == ("Changed", "New body")
    assert sorted(idea.tags.values_list("name", flat=True)) == ["a", "b"]

    client.force_login(staff)
    assert client.post(url, {**data, "title": "Staff edit"}).status_code == 302
    idea.refresh_from_db()
    assert idea.title == "Staff edit"


def test_edit_page_link_shows_only_to_those_who_may_edit(client, user):
    idea = idea_create(author=user, title="Mine", kind="hypothesis")
    edit_url = reverse("idea-edit", kwargs={"pk": idea.pk})
    assert edit_url not in client.get(idea.get_absolute_url()).content.decode()
    client.force_login(user)
    assert edit_url in client.get(idea.get_absolute_url()).content.decode()


def test_edit_to_a_kind_that_does_not_fit_the_status_shows_the_error(client, user, staff):
    idea = idea_create(author=user, title="Hyp", kind="hypothesis")
    idea_set_status(idea=idea, status=IdeaStatus.SUPPORTED, user=staff)
    client.force_login(user)
    response = client.post(reverse("idea-edit", kwargs={"pk": idea.pk}), {"title": "Hyp", "kind": "open_ended"})
    assert response.status_code == 400
    assert "is not a status of a open-ended idea" in response.content.decode()
    idea.refresh_from_db()
    assert idea.kind == "hypothesis"


def test_idea_titled_like_an_action_still_gets_its_own_page(client, user):
    idea = idea_create(author=user, title="Edit", kind="hypothesis")
    assert idea.slug != "edit"
    assert client.get(idea.get_absolute_url()).status_code == 200


# --- status -----------------------------------------------------------------------------------------------


def status_url(idea: Idea) -> str:
    return reverse("idea-status", kwargs={"pk": idea.pk})


def test_staff_change_status_with_a_reason_and_it_is_recorded(client, staff, idea):
    client.force_login(staff)
    page = client.get(idea.get_absolute_url()).content.decode()
    assert f'action="{status_url(idea)}"' in page
    assert '<option value="supported">' in page and '<option value="resolved">' not in page  # hypothesis statuses

    response = client.post(status_url(idea), {"status": "supported", "reason": "Run 12 met the criterion."})
    assert response.status_code == 302 and response["Location"] == idea.get_absolute_url()
    change = StatusChange.objects.get(idea=idea)
    assert (change.from_status, change.to_status, change.changed_by, change.reason) == (
        "open",
        "supported",
        staff,
        "Run 12 met the criterion.",
    )
    idea.refresh_from_db()
    assert idea.status == "supported"
    assert "Run 12 met the criterion." in client.get(idea.get_absolute_url()).content.decode()


def test_status_for_another_kind_or_without_reason_is_refused_on_the_form(client, staff, idea):
    client.force_login(staff)
    response = client.post(status_url(idea), {"status": "resolved", "reason": "Done."})
    assert response.status_code == 400
    assert "resolved is not one of the available choices" in response.content.decode()
    assert client.post(status_url(idea), {"status": "supported", "reason": ""}).status_code == 400
    assert not StatusChange.objects.exists()
    idea.refresh_from_db()
    assert idea.status == "open"


def test_only_staff_may_change_status(client, user, idea):
    anonymous = client.post(status_url(idea), {"status": "refuted", "reason": "x"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    client.force_login(user)
    assert client.post(status_url(idea), {"status": "refuted", "reason": "x"}).status_code == 403
    assert "Change status" not in client.get(idea.get_absolute_url()).content.decode()
    assert not StatusChange.objects.exists()


# --- votes ------------------------------------------------------------------------------------------------


def test_vote_and_unvote_with_a_plain_form_post_go_back_to_next(client, user):
    idea = IdeaFactory(imported_votes=4)
    client.force_login(user)
    response = client.post(vote_url(idea), {"action": "vote", "next": "/ideas/?page=2"})
    assert response.status_code == 302 and response["Location"] == "/ideas/?page=2"
    idea.refresh_from_db()
    assert idea.score == 5 and Vote.objects.filter(idea=idea, user=user).exists()
    html = client.get(idea.get_absolute_url()).content.decode()
    assert 'aria-pressed="true"' in html and 'name="action" value="unvote"' in html

    response = client.post(vote_url(idea), {"action": "unvote"})
    assert response.status_code == 302
    idea.refresh_from_db()
    assert idea.score == 4 and not Vote.objects.exists()


def test_vote_never_redirects_off_site(client, user, idea):
    client.force_login(user)
    response = client.post(vote_url(idea), {"action": "vote", "next": "https://evil.example/"})
    assert response.status_code == 302
    assert client.get(response["Location"], follow=True).request["PATH_INFO"] == idea.get_absolute_url()


def test_vote_widget_names_the_api_endpoint_vote_js_calls(client, user):
    idea = IdeaFactory(imported_votes=2)
    html = client.get(idea.get_absolute_url()).content.decode()
    assert f'data-api-url="{reverse("api:idea-vote", kwargs={"pk": idea.pk})}"' in html
    assert f'data-login-url="{reverse("login")}?next=' in html
    client.force_login(user)
    response = client.post(vote_url(idea), {"action": "boost"})
    assert response.status_code == 400 and "Unknown action" in response.content.decode()


def test_anonymous_vote_goes_to_log_in(client, idea):
    page = idea.get_absolute_url()
    response = client.post(vote_url(idea), {"action": "vote", "next": page})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={page}"
    assert not Vote.objects.exists()


def test_vote_on_an_archived_idea_is_a_400_with_the_reason(client, user):
    idea = IdeaFactory(status=IdeaStatus.ARCHIVED, imported_votes=1)
    html = client.get(idea.get_absolute_url()).content.decode()
    assert 'disabled title="Archived ideas cannot be voted on"' in html
    client.force_login(user)
    response = client.post(vote_url(idea), {"action": "vote"})
    assert response.status_code == 400 and "archived ideas cannot be voted on" in response.content.decode()
    idea.refresh_from_db()
    assert idea.score == 1 and not Vote.objects.exists()


def test_vote_only_accepts_post(client, user, idea):
    client.force_login(user)
    assert client.get(vote_url(idea)).status_code == 405


# --- accounts ---------------------------------------------------------------------------------------------


def test_sign_up_creates_the_account_and_logs_in(client, password):
    response = client.post(
        reverse("signup"), {"username": "ada", "password1": password, "password2": password, "next": "/ideas/new/"}
    )
    assert response.status_code == 302 and response["Location"] == "/ideas/new/"
    assert client.get(reverse("idea-create")).status_code == 200
    bad = client.post(reverse("signup"), {"username": "ADA", "password1": "x", "password2": "y"})
    assert bad.status_code == 302  # already logged in: back to the list
    client.logout()
    bad = client.post(reverse("signup"), {"username": "ADA", "password1": password, "password2": password})
    assert bad.status_code == 400 and "username" in bad.context["form"].errors


def test_log_in_and_log_out_from_the_header(client, user, password):
    assert "Log in</a>" in client.get(LIST).content.decode()
    response = client.post(reverse("login"), {"username": user.username, "password": password, "next": "/ideas/"})
    assert response.status_code == 302 and response["Location"] == "/ideas/"
    html = client.get(LIST).content.decode()
    assert user.username in html and f'action="{reverse("logout")}"' in html
    assert client.post(reverse("logout")).status_code == 302
    assert "Log in</a>" in client.get(LIST).content.decode()
