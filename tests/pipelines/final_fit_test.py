"""--final_fit: the blessed recipe retrained on train + eval by the Trainer's code, and that model pushed."""
import json
import os

import keras
import pytest

from pipelines import loop
from pipelines.artifacts import NotBlessedError, PipelineError
from pipelines.components.pusher import fingerprint
from pipelines.runner import planned_steps, run_pipeline
from tests.pipelines.conftest import small_config


def _json(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def final_run(tmp_path_factory):
    cfg = small_config(str(tmp_path_factory.mktemp("final_fit")), **{"training.final_fit": True})
    return cfg, run_pipeline(cfg)


def test_the_record_names_the_validated_and_the_pushed_model(final_run):
    cfg, record = final_run
    steps = record.data["components"]
    assert record.data["steps"] == ["ExampleGen", "Transform", "Trainer", "Evaluator", "FinalFit", "Pusher"]
    assert record.data["components_requested"] == list(cfg.components)  # FinalFit is not a component to ask for
    model, final = steps["Trainer"]["outputs"]["model"], steps["FinalFit"]["outputs"]["final_model"]
    assert model != final and record.artifacts["model"] == model and record.artifacts["final_model"] == final
    assert steps["Evaluator"]["inputs"]["model"] == model  # the validated one
    assert steps["FinalFit"]["inputs"]["model"] == model and steps["FinalFit"]["inputs"]["blessing"] == \
        steps["Evaluator"]["outputs"]["blessing"]
    assert steps["FinalFit"]["refit_of"] == model
    assert steps["Pusher"]["inputs"] == {"model": model, "blessing": steps["Evaluator"]["outputs"]["blessing"],
                                         "final_model": final}
    assert steps["Pusher"]["pushed_model"] == final and steps["Pusher"]["validated_model"] == model
    pushed = _json(os.path.join(steps["Pusher"]["outputs"]["pushed"], "pushed.json"))
    assert pushed["model"] == final and pushed["validated_model"] == model and pushed["final_fit"]
    assert "the final fit" in steps["Pusher"]["summary"]


def test_the_pushed_savedmodel_is_the_refit_trained_on_train_plus_eval(final_run):
    cfg, record = final_run
    model, final = record.artifacts["model"], record.artifacts["final_model"]
    version = os.path.join(cfg.paths.serving_model_dir, "1")
    assert fingerprint(version) == fingerprint(os.path.join(final, "Format-Serving"))
    assert fingerprint(version) != fingerprint(os.path.join(model, "Format-Serving"))
    counts = _json(os.path.join(record.artifacts["examples"], "counts.json"))
    validated = _json(os.path.join(model, "training_summary.json"))
    refit = _json(os.path.join(final, "training_summary.json"))
    assert validated["train_examples"] == counts["train"] == 180
    assert refit["train_examples"] == counts["train"] + counts["eval"] == 200
    assert refit["splits"] == {"train": 180, "eval": 20} and refit["refit_of"] == model
    assert refit["steps_per_epoch"] == 200 // 16 and validated["steps_per_epoch"] == 180 // 16
    assert refit["seed"] == validated["seed"] and refit["examples"] == record.artifacts["examples"]
    assert "val_loss" in validated["history"] and "val_loss" not in refit["history"]  # it trains on the eval split
    weights = loop.weights_digest(keras.saving.load_model(os.path.join(final, "model.keras")))
    assert weights == refit["weights_sha256"] == record.data["components"]["FinalFit"]["weights_sha256"]
    assert weights != validated["weights_sha256"] == refit["validated_weights_sha256"]
    lineage = _json(os.path.join(version, "assets.extra", "kcv_lineage.json"))  # served beside the model
    assert lineage["final_fit"] and lineage["refit_of"] == model and lineage["train_examples"] == 200
    metrics = _json(os.path.join(record.artifacts["evaluation"], "metrics.json"))
    assert lineage["validated"]["accuracy"] == metrics["accuracy"]
    # no backup and no temporary examples folder are left
    root = cfg.paths.pipeline_root
    assert not [d for d in os.listdir(os.path.join(root, "Trainer", "model_run")) if d.startswith("backup")]
    assert os.listdir(os.path.join(root, "Trainer", "final_model")) == [record.run_id]
    assert os.path.isfile(os.path.join(record.artifacts["final_model_run"], "training_log.csv"))


def test_a_served_final_fit_is_judged_by_its_held_out_score_not_rescored(final_run):
    """The served version trained on this eval split: the Evaluator compares against the score its
    recipe had before the refit instead of scoring it on examples it has seen."""
    cfg, parent = final_run
    record = run_pipeline(cfg.replace(components=["Evaluator"]), continue_run=parent.run_id)
    metrics = _json(os.path.join(record.artifacts["evaluation"], "metrics.json"))
    held_out = _json(os.path.join(parent.artifacts["evaluation"], "metrics.json"))["accuracy"]
    assert metrics["baseline"]["final_fit"] and metrics["baseline"]["comparable"]
    assert metrics["baseline"]["accuracy"] == held_out and "held-out score" in metrics["baseline"]["reason"]


def test_a_recipe_not_blessed_is_not_refit(pipeline_copy):
    cfg, parent = pipeline_copy
    cfg = cfg.replace(**{"components": ["Evaluator", "Pusher"], "training.final_fit": True,
                         "evaluation.min_accuracy": 1.01})
    with pytest.raises(NotBlessedError, match="recipe not blessed, so not refit and nothing pushed: accuracy"):
        run_pipeline(cfg, continue_run=parent)
    root = cfg.paths.pipeline_root
    assert not os.path.exists(os.path.join(root, "Trainer"))  # nothing trained, nothing exported
    assert sorted(d for d in os.listdir(cfg.paths.serving_model_dir) if not d.startswith(".")) == ["1"]


def test_the_final_fit_runs_only_where_it_feeds_the_pusher(tmp_path):
    cfg = small_config(str(tmp_path), **{"training.final_fit": True})
    assert planned_steps(cfg) == ("ExampleGen", "Transform", "Trainer", "Evaluator", "FinalFit", "Pusher")
    assert planned_steps(cfg.replace(components=["Pusher"])) == ("FinalFit", "Pusher")
    assert planned_steps(cfg.replace(components=["Trainer", "Evaluator"])) == ("Trainer", "Evaluator")
    assert "FinalFit" not in planned_steps(cfg.replace(**{"training.final_fit": False}))
    with pytest.raises(PipelineError, match="--final_fit is not supported with --strategy=multi_worker"):
        run_pipeline(cfg.replace(**{"runtime.strategy": "multi_worker"}))
    assert not os.path.exists(tmp_path / "runs")
