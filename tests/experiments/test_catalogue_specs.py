"""The shipped catalogue comes with its first idea's experiment attached and ready to run."""

import pytest
from django.core.management import CommandError, call_command

from experiments.models import ExperimentSpec
from tests.factories import IdeaFactory, UserFactory

pytestmark = pytest.mark.django_db


# Every catalogue idea an experiment on the platform can test, with the kind its spec runs. #11 ("complicated models
# are harder to evaluate") stays a catalogue entry: no experiment here tests it.
RUNNABLE = {
    1: "attention_depth_comparison",
    2: "train_transformer",
    3: "attribution_patching",
    4: "model_diff",
    5: "grokking_modular_addition",
    6: "ioi_replication",
    7: "causal_tracing",
    8: "ioi",
    9: "finetune_comparison",
    10: "persona_truthfulness",
    14: "refusal_rate",
    15: "framing_conformity",
    16: "persona_truthfulness",
    18: "activation_inversion",
}
BEHAVIOURAL = (10, 14, 15, 16)


def test_each_runnable_idea_gets_its_spec_once(capsys):
    call_command("import_ideas", "ideas/fixtures/ai_safety_ideas.txt", verbosity=0)
    UserFactory(username="demo")
    call_command("attach_catalogue_experiments", "--user", "demo")
    call_command("attach_catalogue_experiments", "--user", "demo")
    specs = {spec.idea.legacy_number: spec for spec in ExperimentSpec.objects.select_related("idea")}
    assert {number: spec.kind for number, spec in specs.items()} == RUNNABLE
    assert specs[1].params["depths"] == [1, 2, 3, 4] and specs[1].params["training"]["steps"] == 3000
    assert f"attached 0, already there {len(RUNNABLE)}" in capsys.readouterr().out
    for spec in specs.values():
        assert spec.description and spec.params  # normalized: every default filled in
        # A hypothesis' spec pre-registers what would support or refute it; an open question's need not.
        assert (spec.criterion is not None) == (spec.idea.kind == "hypothesis"), spec.idea.legacy_number
    assert specs[9].criterion["metric"] == "new_circuit_fraction" and specs[9].criterion["if_met"] == "supports"
    assert specs[6].criterion["metric"] == "replication_score" and specs[6].criterion["threshold"] == 0.5


def test_behavioural_specs_read_the_evaluation_model_and_pre_register_an_interval_bound(
    settings, tmp_path, monkeypatch
):
    settings.EVAL_MODEL_DIR = tmp_path / "eval-lm"
    monkeypatch.setenv("PRETRAINED_MODEL_DIRS", str(tmp_path))
    call_command("import_ideas", "ideas/fixtures/ai_safety_ideas.txt", verbosity=0)
    UserFactory(username="demo")
    call_command("attach_catalogue_experiments", "--user", "demo")
    specs = {spec.idea.legacy_number: spec for spec in ExperimentSpec.objects.select_related("idea")}
    for number in BEHAVIOURAL:
        spec = specs[number]
        assert spec.params["model"] == {"source": "pretrained", "name": str(tmp_path / "eval-lm")}
        # "Supported" means the pre-registered test passed: the interval's lower bound, not the point estimate.
        assert spec.criterion["metric"] == "effect_ci_low" and spec.criterion["comparator"] == ">"
        assert spec.criterion["if_met"] == "supports" and spec.criterion["otherwise"] == "inconclusive"
    assert specs[14].criterion["threshold"] == 0.5 and specs[15].criterion["threshold"] == 0
    assert specs[10].params["test"] == "bootstrap" and len(specs[10].params["personas"]) == 5
    assert specs[16].params["personas"] == ["friendly and truthful"]
    assert specs[14].params["data"] is None  # the user supplies the request set


def test_attaching_needs_the_catalogue_and_the_user():
    with pytest.raises(CommandError, match="No user"):
        call_command("attach_catalogue_experiments", "--user", "nobody")
    UserFactory(username="demo")
    with pytest.raises(CommandError, match="import the catalogue"):
        call_command("attach_catalogue_experiments", "--user", "demo")
    assert not ExperimentSpec.objects.exists()


def test_make_run_with_debug_off_skips_the_demo_login_and_the_specs_it_would_author(settings, capsys):
    settings.DEBUG = False
    call_command("import_ideas", "ideas/fixtures/ai_safety_ideas.txt", verbosity=0)
    call_command("ensure_demo_user", "--skip-if-debug-off")
    call_command("attach_catalogue_experiments", "--user", "demo", "--if-user-exists")
    out = capsys.readouterr().out
    assert "no demo login made" in out and "catalogue experiments not attached" in out
    assert not ExperimentSpec.objects.exists()
    with pytest.raises(CommandError, match="DJANGO_DEBUG is off"):
        call_command("ensure_demo_user")  # asked for outright, it is still refused


def test_a_non_finite_number_in_a_specs_file_is_refused_as_such(tmp_path):
    # Python's json module reads NaN and Infinity, which JSON itself has no words for.
    IdeaFactory(legacy_number=1)
    UserFactory(username="demo")
    path = tmp_path / "specs.json"
    path.write_text('[{"legacy_number": 1, "title": "T", "kind": "train_transformer", "params": {"lr": NaN}}]')
    with pytest.raises(CommandError, match=r"params\.lr.*Input should be a finite number"):
        call_command("attach_catalogue_experiments", str(path), "--user", "demo")
    assert not ExperimentSpec.objects.exists()
