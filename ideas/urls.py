"""Page routes; the views are filled in with the pages."""

from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="idea-list", permanent=False)),
]
