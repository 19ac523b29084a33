"""The Pusher: blessed models only, complete versions, distinct versions under concurrency."""
import json
import os
import subprocess
import sys

import pytest

from pipelines.artifacts import PipelineError
from pipelines.components import pusher


def _saved_model(folder, payload=b"graph"):
    os.makedirs(os.path.join(folder, "variables"), exist_ok=True)
    with open(os.path.join(folder, "saved_model.pb"), "wb") as f:
        f.write(payload)
    with open(os.path.join(folder, "variables", "variables.index"), "wb") as f:
        f.write(payload * 1000)
    return folder


def _blessing(folder, blessed, reason="accuracy 0.9 >= 0.3"):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "BLESSED" if blessed else "NOT_BLESSED"), "w") as f:
        f.write(json.dumps({"model": "m", "reason": reason}))
    return folder


def test_not_blessed_is_refused_with_the_evaluators_reason(tmp_path):
    with pytest.raises(PipelineError, match="model not blessed, nothing pushed: accuracy 0.1 is below"):
        pusher.blessed_reason(_blessing(str(tmp_path / "b"), False, "accuracy 0.1 is below the threshold"))
    assert pusher.blessed_reason(_blessing(str(tmp_path / "ok"), True)) == "accuracy 0.9 >= 0.3"


def test_push_numbers_versions_and_copies_every_file(tmp_path):
    source = _saved_model(str(tmp_path / "model"))
    target = str(tmp_path / "saved_models" / "m")
    os.makedirs(os.path.join(target, ".tmp-7-killed"))  # a killed push's leftover
    assert [pusher.push(source, target, "r1"), pusher.push(source, target, "r2")] == [1, 2]
    assert sorted(d for d in os.listdir(target) if not d.startswith(".")) == ["1", "2"]
    assert not [d for d in os.listdir(target) if d.startswith(".tmp-")]
    assert open(os.path.join(target, "2", "variables", "variables.index"), "rb").read() == b"graph" * 1000


def test_models_config_lists_models_with_versions(tmp_path):
    root = tmp_path / "saved_models"
    _saved_model(str(root / "b" / "1"))
    _saved_model(str(root / "a" / "3"))
    (root / "empty").mkdir()
    text = open(pusher.write_models_config(str(root))).read()
    assert text.index('name: "a"') < text.index('name: "b"') and '"empty"' not in text
    assert 'base_path: "/models/a"' in text and text.count("config {") == 2


def test_concurrent_pushes_get_distinct_complete_versions(tmp_path):
    """8 Pusher processes at once on one serving folder: 8 distinct versions, each a whole copy."""
    source = _saved_model(str(tmp_path / "model"), payload=os.urandom(1 << 16))
    target = str(tmp_path / "saved_models" / "m")
    code = "import sys; from pipelines.components import pusher; print(pusher.push(*sys.argv[1:]))"
    procs = [subprocess.Popen([sys.executable, "-c", code, source, target, f"run{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, [err[-500:] for _, err in outs]
    versions = [int(out.strip().splitlines()[-1]) for out, _ in outs]
    assert sorted(versions) == list(range(1, 9))
    expected = open(os.path.join(source, "variables", "variables.index"), "rb").read()
    for v in versions:
        assert open(os.path.join(target, str(v), "variables", "variables.index"), "rb").read() == expected
    assert not [d for d in os.listdir(target) if d.startswith(".tmp-")]


def test_a_blessing_of_another_model_is_refused(tmp_path):
    blessing = _blessing(str(tmp_path / "b"), True)  # its verdict is on model "m"
    with pytest.raises(PipelineError, match="is for m, not .*other: run the Evaluator on this model first"):
        pusher.blessed_reason(blessing, str(tmp_path / "other"))


def test_pipeline_push_and_a_refused_model(pipeline_run, pipeline_copy):
    from pipelines.runner import run_pipeline

    shared_cfg, shared = pipeline_run
    pushed = json.load(open(os.path.join(shared.artifacts["pushed"], "pushed.json")))
    assert pushed["version"] == 1 and pushed["model"] == shared.artifacts["model"]
    assert pushed["pushed_to"] == os.path.join(shared_cfg.paths.serving_model_dir, "1")
    config = open(pushed["models_config"]).read()
    assert 'name: "resnet18_cifar10"' in config and 'base_path: "/models/resnet18_cifar10"' in config
    cfg, parent = pipeline_copy
    before = sorted(os.listdir(cfg.paths.serving_model_dir))
    strict = cfg.replace(**{"components": ["Evaluator", "Pusher"], "evaluation.min_accuracy": 1.01})
    with pytest.raises(PipelineError, match="model not blessed, nothing pushed: accuracy .* below the threshold"):
        run_pipeline(strict, continue_run=parent)
    assert sorted(os.listdir(cfg.paths.serving_model_dir)) == before
    for dirpath, dirnames, _ in os.walk(cfg.paths.pipeline_root):  # nothing half-written left anywhere
        assert not [d for d in dirnames if d.startswith(".tmp")], dirpath
