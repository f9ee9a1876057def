"""Signing up. Logging in and out are Django's own views (see ideas/urls.py)."""

from __future__ import annotations

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from ideas.forms import SignupForm
from ideas.services.accounts import user_create
from pages.shortcuts import safe_next


def signup_page(request: HttpRequest) -> HttpResponse:
    """/accounts/signup/: create an account, log in, go back where the reader came from."""
    if request.user.is_authenticated:
        return redirect(safe_next(request, default="idea-list"))
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_create(username=form.cleaned_data["username"], password=form.cleaned_data["password1"])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(safe_next(request, default="idea-list"))
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form, "next": safe_next(request, "")}, status=status)
