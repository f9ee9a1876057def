"""Forms of the catalogue pages: submitting and editing an idea, changing its status, signing up.

The forms only check the shape of the input; the services decide what is allowed,
and `add_service_errors` puts their ValidationError messages next to the fields.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from ideas.models import Idea, IdeaKind, IdeaStatus


def add_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Attach a service's ValidationError to the form: to its field where the form has one, else to the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else NON_FIELD_ERRORS, messages)


def split_tags(raw: str) -> list[str]:
    """'interpretability, induction heads,' -> ['interpretability', 'induction heads']."""
    return [name.strip() for name in raw.split(",") if name.strip()]


class IdeaForm(forms.Form):
    title = forms.CharField(max_length=Idea._meta.get_field("title").max_length)
    kind = forms.ChoiceField(
        choices=IdeaKind.choices,
        widget=forms.RadioSelect,
        initial=IdeaKind.OPEN_ENDED,
        help_text="A hypothesis can be supported or refuted by experiments; an open-ended idea is a direction.",
    )
    body = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 14}),
        help_text="Markdown. Write “idea #131” to link to another idea of the catalogue.",
    )
    tags = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Comma-separated, for example: interpretability, induction heads",
    )

    @classmethod
    def initial_for(cls, idea: Idea) -> dict[str, str]:
        """The form's initial values for editing `idea`."""
        return {
            "title": idea.title,
            "kind": idea.kind,
            "body": idea.body,
            "tags": ", ".join(tag.name for tag in idea.tags.all()),
        }

    def tag_names(self) -> list[str]:
        return split_tags(self.cleaned_data.get("tags", ""))


class StatusForm(forms.Form):
    """A staff member moves an idea to another of its kind's statuses, saying why."""

    status = forms.ChoiceField(choices=())
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text="Why: the evidence, a run, a discussion. Kept in the idea's status history.",
    )

    def __init__(self, *args, idea: Idea, **kwargs) -> None:
        kwargs.setdefault("initial", {"status": idea.status})
        kwargs.setdefault("auto_id", "id_status_%s")  # distinct ids beside the page's other forms
        super().__init__(*args, **kwargs)
        # Only the statuses of this idea's kind: a hypothesis is never "resolved".
        self.fields["status"].choices = [(value, IdeaStatus(value).label) for value in idea.allowed_statuses]


class SignupForm(UserCreationForm):
    """Django's sign-up form: a username (unique, case-insensitively) and a password twice,
    checked by AUTH_PASSWORD_VALIDATORS. The view creates the user through `user_create`."""
