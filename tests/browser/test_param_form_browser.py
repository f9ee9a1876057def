"""The add-an-experiment form in a real browser: params built from the kind's JSON Schema (nested
fields with their defaults, a data source that swaps its fields, advanced JSON), refused in the
browser when out of bounds, and the server's messages beside the fields they name.

Drives the Debian Chromium at /usr/bin/chromium through Playwright against pytest-django's live
server, like test_experiment_browser.py. Screenshots land in /tmp/param-form-*.png.
"""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from experiments.engine.registry import registry
from experiments.models import ExperimentSpec
from experiments.services import dataset_upload
from ideas.models import IdeaKind
from ideas.services import idea_create
from tests.conftest import needs_chromium
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def researcher(db):
    return UserFactory(username="researcher")


@pytest.fixture
def idea(researcher):
    return idea_create(
        author=researcher,
        title="Induction heads need two layers",
        kind=IdeaKind.HYPOTHESIS,
        body="A one-layer attention-only model cannot compose heads, so it has no induction head.",
        tags=["interpretability"],
    )


def log_in(page, user, then: str) -> None:
    page.goto(f"/accounts/login/?next={then}")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{then}")


def param(page, path: str):
    """The control of one param, by its dotted path."""
    return page.locator(f'.js-param-builder [data-param-path="{path}"]')


def messages_beside(page, path: str) -> str:
    return page.locator(f'.param-field[data-path="{path}"] > .errorlist').inner_text()


def add_url(idea) -> str:
    return f"/ideas/{idea.pk}/experiments/new/"


def test_nested_fields_with_defaults_and_a_data_source_choice_make_the_spec(
    page, live_server, researcher, idea, settings, tmp_path
):
    settings.ARTIFACT_ROOT = tmp_path
    corpus = dataset_upload(
        user=researcher,
        name="Tiny Shakespeare",
        uploaded_file=SimpleUploadedFile("s.txt", b"First Citizen:\nSpeak, speak.\n" * 50, "text/plain"),
    )
    log_in(page, researcher, f"{add_url(idea)}?kind=train_transformer")

    # Nested fields, filled with the kind's defaults; the JSON waits behind the advanced toggle.
    assert page.locator(".js-param-json").is_hidden()
    assert page.get_by_role("button", name="Advanced: edit JSON").is_visible()
    model = page.locator('fieldset.param-group[data-path="model"]')
    assert model.locator("legend").first.inner_text() == "Model"
    n_heads = param(page, "model.n_heads")
    assert n_heads.input_value() == "4"  # the training default's model, not a NativeConfig's own 8
    assert n_heads.get_attribute("min") == "1" and n_heads.get_attribute("max") == "32"
    steps = page.get_by_label("Steps", exact=True)
    assert steps.input_value() == "3000" and steps.get_attribute("step") == "1"
    assert "Default: 3000." in page.locator('.param-field[data-path="steps"] .helptext').inner_text()
    assert "Peak learning rate (AdamW)." in page.locator('.param-field[data-path="lr"] .helptext').inner_text()
    assert param(page, "model.attn_only").is_checked()
    assert param(page, "data.source").locator("option:checked").inner_text() == "induction_training"
    assert param(page, "data.min_segment").input_value() == "8"
    page.screenshot(path="/tmp/param-form-defaults.png", full_page=True)

    # Change a nested field and the data source: the text corpus' own fields replace the synthetic data's.
    page.get_by_label("Title", exact=True).fill("Char-level 2L model on Shakespeare")
    steps.fill("500")
    param(page, "data.source").select_option(label="text_corpus")
    assert param(page, "data.min_segment").count() == 0
    param(page, "data.dataset").fill(str(corpus.pk))
    param(page, "data.tokenizer").select_option(label="char")
    assert param(page, "data.vocab_size").input_value() == "1024"
    page.screenshot(path="/tmp/param-form-changed.png", full_page=True)
    page.get_by_role("button", name="Add experiment").click()
    page.wait_for_url(f"**{idea.get_absolute_url()}#experiments")

    spec = ExperimentSpec.objects.get()
    assert spec.kind == "train_transformer" and spec.params["steps"] == 500
    assert spec.params["data"] == {
        "source": "text_corpus",
        "dataset": corpus.pk,
        "tokenizer": "char",
        "vocab_size": 1024,
    }
    assert spec.params["model"]["n_heads"] == 4 and spec.params["lr"] == 0.003
    # The card lists what differs from the defaults, nothing else.
    assert page.locator(f"#spec-{spec.pk} code.param").all_inner_texts() == [
        "data.source = text_corpus",
        f"data.dataset = {corpus.pk}",
        "data.tokenizer = char",
        "steps = 500",
    ]


def test_bad_input_is_refused_beside_its_field_in_the_browser_and_by_the_server(page, live_server, researcher, idea):
    log_in(page, researcher, add_url(idea))
    assert page.get_by_label("Kind of experiment").input_value() == "head_detection"  # a light kind first
    page.get_by_label("Title", exact=True).fill("Heads of a random model")

    # Out of bounds: refused here, with the message beside the field, and nothing is sent.
    n_layers = param(page, "model.config.n_layers")
    assert n_layers.input_value() == "2"
    n_layers.fill("13")
    n_layers.press("Tab")
    assert messages_beside(page, "model.config.n_layers") == "Must be at most 12."
    assert n_layers.get_attribute("aria-invalid") == "true"
    url = page.url
    page.get_by_role("button", name="Add experiment").click()
    assert page.url == url and not ExperimentSpec.objects.exists()
    assert page.evaluate("document.activeElement.dataset.paramPath") == "model.config.n_layers"
    page.screenshot(path="/tmp/param-form-refused.png", full_page=True)
    n_layers.fill("2")
    assert page.locator('.param-field[data-path="model.config.n_layers"] > .errorlist').is_hidden()

    # Within bounds but too short a context for the sequences: only the server knows; its message
    # comes back beside the field its path names.
    param(page, "model.config.n_ctx").fill("16")
    with page.expect_navigation():
        page.get_by_role("button", name="Add experiment").click()
    assert not ExperimentSpec.objects.exists()
    assert "the model's context is 16" in messages_beside(page, "data.half_length")
    assert page.locator("#id_params_error").is_hidden()  # nothing left without a field
    assert param(page, "model.config.n_ctx").input_value() == "16"  # what was sent stays
    page.screenshot(path="/tmp/param-form-server-error.png", full_page=True)

    # Advanced: the JSON follows the fields, and the fields follow the JSON while it is valid.
    page.get_by_role("button", name="Advanced: edit JSON").click()
    textarea = page.get_by_label("Parameters as JSON")
    assert textarea.is_visible() and page.locator(".js-param-builder").is_hidden()
    params = json.loads(textarea.input_value())
    assert params["model"]["config"]["n_ctx"] == 16 and params["data"]["half_length"] == 31
    params["model"]["config"]["n_ctx"] = 128
    params["data"]["half_length"] = 20
    textarea.fill(json.dumps(params))
    page.get_by_role("button", name="Back to the fields").click()
    assert param(page, "model.config.n_ctx").input_value() == "128"
    assert param(page, "data.half_length").input_value() == "20"

    page.get_by_role("button", name="Advanced: edit JSON").click()
    textarea.fill('{"model": {"source": "native"')
    page.get_by_role("button", name="Back to the fields").click()
    assert "Not valid JSON" in page.locator(".js-param-json .errorlist").inner_text()
    assert textarea.is_visible()  # stays until it is fixed
    page.get_by_role("button", name="Add experiment").click()
    assert not ExperimentSpec.objects.exists()  # broken JSON is not sent either
    textarea.fill(json.dumps(params))
    page.get_by_role("button", name="Add experiment").click()
    page.wait_for_url(f"**{idea.get_absolute_url()}#experiments")
    spec = ExperimentSpec.objects.get()
    assert spec.params["model"]["config"]["n_ctx"] == 128 and spec.params["data"]["half_length"] == 20


@pytest.mark.parametrize(
    "kind",
    [
        "grokking_modular_addition", "model_diff", "finetune_comparison", "activation_inversion", "causal_tracing",
        "ioi", "ioi_replication", "attribution_patching",
    ],
)  # fmt: skip
def test_each_kind_that_trains_its_own_model_builds_its_form_and_submits_its_defaults(
    page, live_server, researcher, idea, kind
):
    log_in(page, researcher, f"{add_url(idea)}?kind={kind}")
    assert page.locator(".js-param-builder .param-field").count() > 3  # fields, not a bare JSON box
    page.get_by_label("Title", exact=True).fill(f"Defaults of {kind}")
    page.get_by_role("button", name="Add experiment").click()
    page.wait_for_url(f"**{idea.get_absolute_url()}#experiments")
    spec = ExperimentSpec.objects.get()
    assert spec.kind == kind and spec.params == registry.get(kind).normalized_params(
        registry.get(kind).parse_params({})
    )
