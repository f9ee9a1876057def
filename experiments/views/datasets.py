"""/datasets/: the uploaded datasets (text corpora and prompt sets), how a spec references each, and the upload form.

Uploading and deleting are plain form POSTs that answer with a redirect and a message. A
refused upload shows the form again with the service's message next to its field (400);
deleting a dataset that queued or running runs read is refused with a 409 that names them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from experiments.engine.evals.prompt_sets import SHIPPED
from experiments.errors import DatasetInUse
from experiments.models import Dataset, DatasetFormat
from experiments.selectors import dataset_get, dataset_list
from experiments.services import dataset_delete, dataset_upload, user_can_delete_dataset
from experiments.services.datasets import DESCRIPTION_MAX, NAME_MAX
from experiments.services.prompt_sets import MAX_RECORDS
from pages.shortcuts import refused


class DatasetUploadForm(forms.Form):
    """The shape of an upload; `dataset_upload` checks the file itself."""

    name = forms.CharField(max_length=NAME_MAX, help_text="How people will recognise it, e.g. “Tiny Shakespeare”.")
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Where the text comes from, its licence, how it was cleaned.",
    )
    file = forms.FileField(
        allow_empty_file=True,  # the service's own message says the file is empty
        widget=forms.ClearableFileInput(attrs={"accept": ".txt,.jsonl,.csv,text/plain,text/csv,application/jsonl"}),
    )
    format = forms.ChoiceField(
        required=False,
        choices=[("", "From the file name (.jsonl, .csv, else text)"), *DatasetFormat.choices],
        help_text="A text corpus, or a prompt set: JSONL (one JSON object a line) or CSV (a header row first).",
    )
    fields = forms.CharField(
        required=False,
        max_length=1000,
        label="Fields (a prompt set)",
        help_text="The fields every record has, separated by commas, e.g. “statement, label”. Leave empty for text.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        limit = filesizeformat(settings.DATASET_MAX_BYTES)
        self.fields[
            "file"
        ].help_text = (
            f"A UTF-8 file of at most {limit}, without NUL characters: text (.txt) or a prompt set (.jsonl, .csv)."
        )

    def add_service_errors(self, error: ValidationError) -> None:
        """Each message of the service's ValidationError next to its field (the rest above the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, field_messages in error.message_dict.items():
            for message in field_messages:
                self.add_error(field if field in self.fields else None, message)


@dataclass(frozen=True)
class DatasetRow:
    """One dataset as a line of the list."""

    dataset: Dataset
    can_delete: bool

    @property
    def reference(self) -> str:
        return json.dumps(self.dataset.reference)  # '{"source": "text_corpus", "dataset": 3}'

    @property
    def records(self) -> str:
        return f"{self.dataset.n_records or 0:,}"

    @property
    def lines(self) -> str:
        return f"{self.dataset.n_lines:,}"

    @property
    def characters(self) -> str:
        return f"{self.dataset.n_characters:,}"


def _list_page(request: HttpRequest, form: DatasetUploadForm, *, status: int = 200) -> HttpResponse:
    rows = [DatasetRow(dataset, user_can_delete_dataset(request.user, dataset)) for dataset in dataset_list()]
    context = {
        "rows": rows,
        "form": form,
        "max_records": f"{MAX_RECORDS:,}",
        "max_bytes": filesizeformat(settings.DATASET_MAX_BYTES),
        "shipped": list(SHIPPED.values()),
    }
    return render(request, "experiments/dataset_list.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def dataset_list_page(request: HttpRequest) -> HttpResponse:
    """GET /datasets/: every dataset, newest first, and the upload form; POST uploads one (signed in)."""
    if request.method != "POST":
        return _list_page(request, DatasetUploadForm())
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("dataset-list"))
    form = DatasetUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            dataset = dataset_upload(
                user=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                uploaded_file=form.cleaned_data["file"],
                format=form.cleaned_data["format"],
                fields=form.cleaned_data["fields"],
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(
                request,
                f"Uploaded dataset {dataset.pk}, “{dataset.name}”. "
                f"Use it in a spec as {json.dumps(dataset.reference)}.",
            )
            return redirect(f"{reverse('dataset-list')}#dataset-{dataset.pk}")
    return _list_page(request, form, status=400)


@require_POST
def dataset_delete_action(request: HttpRequest, pk: int) -> HttpResponse:
    """POST /datasets/<pk>/delete/: its uploader or staff delete it (others get the 403 page)."""
    back = reverse("dataset-list")
    if not request.user.is_authenticated:
        return redirect_to_login(back)
    try:
        dataset = dataset_get(pk=pk)
    except Dataset.DoesNotExist:
        raise Http404(f"There is no dataset {pk}.") from None
    name = dataset.name
    try:
        dataset_delete(dataset=dataset, user=request.user)  # PermissionDenied -> the 403 page
    except DatasetInUse as error:
        return refused(request, " ".join(error.messages), status=409, back=back)
    messages.success(request, f"Deleted dataset {pk}, “{name}”.")
    return redirect(back)
