"""The runner: what a continued run inherits, and the errors of a run that cannot continue."""
import os

import pytest

from pipelines.artifacts import PipelineError
from pipelines.runner import run_pipeline, upstream_artifacts


def test_a_continued_run_inherits_only_what_comes_before_its_first_component():
    assert upstream_artifacts(("ExampleGen",)) == ()
    assert upstream_artifacts(("Trainer", "Pusher")) == ("examples", "transform")
    assert upstream_artifacts(("Pusher",)) == ("examples", "transform", "model", "model_run", "evaluation", "blessing",
                                               "final_model", "final_model_run")
    # with --final_fit a Pusher-only run refits first: it does not inherit its parent's final model
    assert upstream_artifacts(("FinalFit", "Pusher")) == ("examples", "transform", "model", "model_run", "evaluation",
                                                         "blessing")


def test_a_retrained_model_is_not_pushed_on_its_parents_blessing(pipeline_copy):
    cfg, parent = pipeline_copy
    with pytest.raises(PipelineError, match="Pusher needs the blessing artifact, and run .* will have none"):
        run_pipeline(cfg.replace(components=["Trainer", "Pusher"]), continue_run=parent)
    assert sorted(d for d in os.listdir(cfg.paths.serving_model_dir) if not d.startswith(".")) == ["1"]
    assert not os.path.exists(os.path.join(cfg.paths.pipeline_root, "Trainer"))  # refused before any training


def test_pusher_alone_pushes_the_parents_blessed_model(pipeline_copy):
    cfg, parent = pipeline_copy
    record = run_pipeline(cfg.replace(components=["Pusher"]), continue_run=parent)
    # the parent's model is version 1 already: same fingerprint, not pushed again
    assert record.data["components"]["Pusher"]["version"] == 1
    assert record.data["components"]["Pusher"]["already_served"]
    assert record.data["components"]["Pusher"]["inputs"]["model"] == record.artifacts["model"]


def test_run_id_with_a_run_that_starts_at_example_gen_is_an_error(pipeline_copy):
    cfg, parent = pipeline_copy
    with pytest.raises(PipelineError, match=f"--run_id={parent} names a run to continue, but --components starts "
                                            "with ExampleGen"):
        run_pipeline(cfg, continue_run=parent)


def test_nothing_to_continue_is_one_line(tmp_path):
    from tests.pipelines.conftest import small_config

    cfg = small_config(str(tmp_path)).replace(components=["Evaluator", "Pusher"])
    with pytest.raises(PipelineError, match="holds no complete run with examples, model: run the whole pipeline"):
        run_pipeline(cfg)
