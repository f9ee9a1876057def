"""The engine without Django: registry, params, runtime context, executor."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from pydantic import BaseModel, Field
from safetensors.torch import load_file

from experiments.engine.errors import ArtifactError, DuplicateKind, InvalidParams, RunCancelled, UnknownKind
from experiments.engine.executor import BadResult, execute
from experiments.engine.params import KindParams
from experiments.engine.registry import Kind, KindResult, Registry, registry
from experiments.engine.runtime import MemoryReporter, RunContext


class TinyParams(KindParams):
    n: int = Field(1, ge=1, le=10)


def tiny_kind(
    key: str = "tiny", run=lambda params, ctx: KindResult(findings=["n is set"], metrics={"n": params.n})
) -> Kind:
    return Kind(key=key, title="Tiny", doc="A test kind.", params_model=TinyParams, metrics={"n": "n"}, run=run)


def make_ctx(tmp_path, seed: int = 0, reporter=None) -> RunContext:
    return RunContext(seed=seed, device="cpu", artifact_dir=tmp_path / "artifacts", reporter=reporter)


def test_registering_a_key_twice_raises():
    reg = Registry()
    reg.register(tiny_kind())
    with pytest.raises(DuplicateKind):
        reg.register(tiny_kind())


def test_unknown_key_raises_a_named_error_listing_the_known_ones():
    with pytest.raises(UnknownKind) as excinfo:
        registry.get("induction_magic")
    assert "induction_magic" in str(excinfo.value) and "smoke" in str(excinfo.value)


def test_params_must_be_frozen_and_forbid_extra_fields():
    class Loose(BaseModel):
        n: int = 1

    with pytest.raises(ValueError, match="frozen"):
        Kind(key="loose", title="", doc="", params_model=Loose, metrics={}, run=lambda p, c: KindResult())


def test_params_are_strict_about_json_types():
    smoke = registry.get("smoke")
    with pytest.raises(InvalidParams) as excinfo:
        smoke.parse_params({"steps": True, "delay_seconds": "0.5", "fail_at_step": "3"})
    assert set(excinfo.value.errors) == {"steps", "delay_seconds", "fail_at_step"}
    assert smoke.parse_params({"steps": 3, "delay_seconds": 0}).delay_seconds == 0.0  # an int is a fine float
    with pytest.raises(InvalidParams) as excinfo:
        registry.get("train_transformer").parse_params(
            {"model": {"n_layers": False}, "data": {"source": "induction_training", "min_segment": "8"}}
        )
    assert set(excinfo.value.errors) == {"model.n_layers", "data.induction_training.min_segment"}


@pytest.mark.parametrize(
    ("key", "params", "field"),
    [
        ("smoke", {"delay_seconds": float("nan")}, "delay_seconds"),
        ("train_transformer", {"lr": float("nan")}, "lr"),
        ("train_transformer", {"lr": float("inf")}, "lr"),
        ("train_transformer", {"weight_decay": float("-inf")}, "weight_decay"),
        ("attention_depth_comparison", {"training": {"lr": float("nan")}}, "training.lr"),
    ],
)
def test_params_refuse_non_finite_numbers_as_such(key, params, field):
    with pytest.raises(InvalidParams) as excinfo:
        registry.get(key).parse_params(params)
    # Said as what it is, not as a bound it happens to miss ("less than or equal to 1").
    assert excinfo.value.errors == {field: ["Input should be a finite number"]}


def test_params_that_allow_non_finite_numbers_are_refused_at_registration():
    class Lenient(KindParams):
        model_config = {**KindParams.model_config, "allow_inf_nan": True}

    with pytest.raises(ValueError, match="NaN"):
        Kind(key="lenient", title="", doc="", params_model=Lenient, metrics={}, run=lambda p, c: KindResult())


def test_every_kind_registers_from_one_list():
    from experiments.engine.kinds import KIND_MODULES, register_kinds

    assert register_kinds() is registry  # already done, and again is harmless
    assert registry.keys() == sorted(module.KEY for module in KIND_MODULES)


def test_invalid_params_name_every_bad_field():
    smoke = registry.get("smoke")
    with pytest.raises(InvalidParams) as excinfo:
        smoke.parse_params({"steps": 0, "delay_seconds": 1000, "shell": "rm -rf /"})
    assert set(excinfo.value.errors) == {"steps", "delay_seconds", "shell"}
    with pytest.raises(InvalidParams) as excinfo:
        smoke.parse_params(["not", "an", "object"])
    assert "params" in excinfo.value.errors


def test_every_registered_kind_documents_itself_and_bounds_its_params():
    for kind in registry:
        assert kind.doc and kind.metrics and kind.device in ("cpu", "gpu")
        schema = kind.params_schema()
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            if prop.get("type") == "integer":
                assert "maximum" in prop, f"{kind.key}.{name} has no upper bound"


def test_seeds_make_a_run_repeat_exactly(tmp_path):
    smoke = registry.get("smoke")
    params = smoke.parse_params({"steps": 2})
    first = execute(smoke, params, make_ctx(tmp_path, seed=3)).metrics
    again = execute(smoke, params, make_ctx(tmp_path, seed=3)).metrics
    other = execute(smoke, params, make_ctx(tmp_path, seed=4)).metrics
    assert first == again
    assert first["torch_draw"] != other["torch_draw"]


def test_progress_metrics_and_cancellation_go_through_the_reporter(tmp_path):
    reporter = MemoryReporter()
    smoke = registry.get("smoke")
    result = execute(smoke, smoke.parse_params({"steps": 4}), make_ctx(tmp_path, reporter=reporter))
    assert result.metrics["sum_of_steps"] == 10
    assert [f for f, _ in reporter.progress_log] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert [(n, s) for n, _, s in reporter.metrics] == [("count", 1), ("count", 2), ("count", 3), ("count", 4)]

    reporter.cancel = True
    with pytest.raises(RunCancelled):
        execute(smoke, smoke.parse_params({"steps": 4}), make_ctx(tmp_path, reporter=reporter))


def test_progress_never_moves_backwards(tmp_path):
    reporter = MemoryReporter()
    ctx = make_ctx(tmp_path, reporter=reporter)
    ctx.progress(0.5, "half")
    ctx.progress(0.2, "oops")
    ctx.progress(7, "over")
    assert [f for f, _ in reporter.progress_log] == [0.5, 0.5, 1.0]


def test_artifacts_json_tensors_and_plotly(tmp_path):
    ctx = make_ctx(tmp_path)
    rec = ctx.save_artifact("summary", {"heads": [[0, 1]], "score": np.float32(0.5)})
    assert rec.artifact_type == "json"
    assert json.loads((ctx.artifact_dir / rec.path).read_text()) == {"heads": [[0, 1]], "score": 0.5}

    scores = torch.arange(6.0).reshape(2, 3)
    rec = ctx.save_artifact("scores", {"induction": scores, "previous": np.ones((2, 3), dtype=np.float32)})
    loaded = load_file(str(ctx.artifact_dir / rec.path))
    assert torch.equal(loaded["induction"], scores) and loaded["previous"].shape == (2, 3)
    assert rec.size > 0 and len(rec.sha256) == 64

    rec = ctx.save_artifact("loss-curve", go.Figure(go.Scatter(x=[1, 2], y=[3, 1])))
    assert rec.artifact_type == "plotly" and rec.path.endswith(".plotly.json")
    assert json.loads((ctx.artifact_dir / rec.path).read_text())["data"][0]["y"] == [3, 1]


@pytest.mark.parametrize("name", ["../escape", "", "a/b", "x" * 101])
def test_artifact_names_are_checked(tmp_path, name):
    with pytest.raises(ArtifactError):
        make_ctx(tmp_path).save_artifact(name, {"a": 1})


def test_artifact_names_are_unique_and_values_must_be_json(tmp_path):
    ctx = make_ctx(tmp_path)
    ctx.save_artifact("a", [1])
    with pytest.raises(ArtifactError):
        ctx.save_artifact("a", [2])
    with pytest.raises(ArtifactError):
        ctx.save_artifact("b", {"x": float("nan")})


def test_non_finite_metrics_are_recorded_as_missing(tmp_path):
    kind = tiny_kind(run=lambda params, ctx: KindResult(findings=["diverged"], metrics={"n": float("nan"), "ok": 2}))
    assert execute(kind, kind.parse_params({}), make_ctx(tmp_path)).metrics == {"n": None, "ok": 2.0}


def test_a_kind_returning_something_else_is_a_bad_result(tmp_path):
    kind = tiny_kind(run=lambda params, ctx: {"n": 1})
    with pytest.raises(BadResult):
        execute(kind, kind.parse_params({}), make_ctx(tmp_path))


def test_a_kind_may_lower_but_never_raise_its_time_limits():
    smoke = registry.get("smoke")
    assert smoke.time_limits(smoke.parse_params({})) == (smoke.soft_time_limit, smoke.time_limit)
    assert smoke.time_limits(smoke.parse_params({"time_limit_seconds": 5})) == (5, 5)


# -- findings, parts and the log -------------------------------------------------------------------


def test_a_kind_must_state_its_findings(tmp_path):
    kind = tiny_kind(run=lambda params, ctx: KindResult(metrics={"n": 1}))
    with pytest.raises(BadResult, match="findings"):
        execute(kind, kind.parse_params({}), make_ctx(tmp_path))


def test_a_headline_must_name_a_saved_artifact(tmp_path):
    kind = tiny_kind(run=lambda params, ctx: KindResult(findings=["x"], headline="missing_chart"))
    with pytest.raises(BadResult, match="missing_chart"):
        execute(kind, kind.parse_params({}), make_ctx(tmp_path))


def test_each_finished_part_is_reported_at_once_with_its_series_artifacts_and_prefixed_metrics(tmp_path):
    reporter = MemoryReporter()
    ctx = make_ctx(tmp_path, reporter=reporter)
    smoke = registry.get("smoke")
    result = execute(smoke, smoke.parse_params({"steps": 6, "parts": 3}), ctx)
    assert [p["key"] for p in reporter.parts] == ["P1", "P2", "P3"]
    assert reporter.parts[1]["metrics"] == {"steps": 2, "sum": 3 + 4}
    assert reporter.parts[1]["findings"] == ["Counted steps 3 to 4; their sum is 7."]
    assert result.metrics["P2_sum"] == 7 and result.metrics["sum_of_steps"] == 21
    assert [step for step, _ in ctx.series["P3/count"]] == [5, 6]  # series are named per part
    assert result.findings[0] == "Counted 6 steps; their sum is 21, as expected."


def test_a_part_that_fails_is_not_reported_and_the_parts_before_it_are_kept(tmp_path):
    reporter = MemoryReporter()
    ctx = make_ctx(tmp_path, reporter=reporter)
    smoke = registry.get("smoke")
    with pytest.raises(RuntimeError, match="step 5"):
        execute(smoke, smoke.parse_params({"steps": 6, "parts": 3, "fail_at_step": 5}), ctx)
    assert [p["key"] for p in ctx.parts] == ["P1", "P2"] == [p["key"] for p in reporter.parts]


def test_artifacts_saved_inside_a_part_belong_to_it(tmp_path):
    ctx = make_ctx(tmp_path)
    with ctx.part("L2", "2 layers") as part:
        record = ctx.save_artifact("L2-scores", {"a": 1})
    ctx.save_artifact("comparison", {"b": 2})
    assert record.meta == {"part": "L2"} and part.artifacts == ["L2-scores"]
    assert ctx.artifacts["comparison"].meta == {}


@pytest.mark.parametrize("key", ["2L", "L-2", "", "L" * 40])
def test_a_part_key_must_be_usable_as_a_metric_prefix(tmp_path, key):
    with pytest.raises(ValueError, match="Part key"), make_ctx(tmp_path).part(key, "x"):
        pass


def test_the_log_keeps_stages_not_every_step_and_never_a_server_path(tmp_path):
    reporter = MemoryReporter()
    ctx = make_ctx(tmp_path, reporter=reporter)
    for step in range(1, 50):
        ctx.progress(step / 100, f"step {step}/100, loss {3 - step / 50:.3f}")
    ctx.progress(0.6, "scoring heads")
    ctx.log("could not read /srv/app/artifacts/runs/7/1/x.safetensors: missing", level="warning")
    messages = [entry["message"] for entry in ctx.log_entries]
    assert messages == [
        "step 1/100, loss 2.980",
        "scoring heads",
        "could not read …: missing",
    ]
    assert ctx.log_entries[-1]["level"] == "warning" and reporter.log_entries == ctx.log_entries


def test_a_long_log_keeps_its_beginning_and_its_end(tmp_path):
    from experiments.engine.runtime import LOG_HEAD, MAX_LOG_ENTRIES

    ctx = make_ctx(tmp_path)
    for i in range(MAX_LOG_ENTRIES + 50):
        ctx.log(f"line {i}")
    assert len(ctx.log_entries) == MAX_LOG_ENTRIES and ctx.log_left_out == 50
    assert ctx.log_entries[LOG_HEAD - 1]["message"] == f"line {LOG_HEAD - 1}"
    assert ctx.log_entries[-1]["message"] == f"line {MAX_LOG_ENTRIES + 49}"


def test_warnings_a_kind_raises_go_to_its_log(tmp_path):
    import warnings

    def warns(params, ctx):
        warnings.warn("the corpus is tiny", UserWarning, stacklevel=1)
        return KindResult(findings=["ok"])

    ctx = make_ctx(tmp_path)
    execute(tiny_kind(run=warns), TinyParams(), ctx)
    assert {"level": "warning", "message": "UserWarning: the corpus is tiny"}.items() <= ctx.log_entries[0].items()


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("could not read /srv/app/artifacts/runs/7/1/x.safetensors: missing", "could not read …: missing"),
        ('File "/home/u/site-packages/a.py", line 3', 'File "…", line 3'),
        ("C:\\Users\\x\\f.txt is locked", "… is locked"),
        ("https://huggingface.co/gpt2/resolve/main", "https://huggingface.co/gpt2/resolve/main"),
        ("depths 1/2/4 done", "depths 1/2/4 done"),
        ("and/or/not", "and/or/not"),
        ("step 3/10", "step 3/10"),
    ],
)
def test_paths_are_hidden_and_nothing_else_is(message, shown):
    from experiments.engine.runtime import without_paths

    assert without_paths(message) == shown
