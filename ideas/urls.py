"""Page routes of the catalogue and its accounts.

Action routes (/ideas/<pk>/edit/, vote/, status/) come before the canonical
/ideas/<pk>/<slug>/, and `unique_slug` never hands out those words as slugs.
"""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from ideas.views import accounts, catalogue, editing, votes

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="idea-list", permanent=False)),
    path("ideas/", catalogue.idea_list_page, name="idea-list"),
    path("ideas/new/", editing.idea_create_page, name="idea-create"),
    path("ideas/n/<int:number>/", catalogue.idea_by_number, name="idea-by-number"),
    path("ideas/<int:pk>/", catalogue.idea_permalink, name="idea-permalink"),
    path("ideas/<int:pk>/edit/", editing.idea_edit_page, name="idea-edit"),
    path("ideas/<int:pk>/vote/", votes.idea_vote_action, name="idea-vote"),
    path("ideas/<int:pk>/status/", editing.idea_status_change, name="idea-status"),
    path("ideas/<int:pk>/<slug:slug>/", catalogue.idea_detail_page, name="idea-detail"),
    path("accounts/signup/", accounts.signup_page, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
