"""Two kcv-train runs started at the same moment on one pipeline root stay apart.

Each run's Evaluator and Pusher must consume that run's own model and examples (read from the
run records), and the two pushes must be two distinct, complete versions.
"""
import json
import os
import subprocess
import sys

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_two_runs_at_once_evaluate_and_push_their_own_models(tmp_path):
    root, serving = tmp_path / "runs", tmp_path / "saved_models" / "m"
    common = ["--experiment=resnet18_cifar10", "--model=simple_cnn", "--embedded_examples=100", "--epochs=1",
              "--batch_size=10", "--min_accuracy=0", "--max_regression=1", f"--pipeline_root={root}",
              f"--serving_model_dir={serving}"]
    procs = [subprocess.Popen([sys.executable, "-m", "pipelines.train", *common, f"--seed={seed}"], cwd=tmp_path,
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (1, 2)]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    records = [json.load(open(root / "runs" / f)) for f in sorted(os.listdir(root / "runs")) if f.endswith(".json")]
    assert len(records) == 2 and {r["config"]["runtime"]["seed"] for r in records} == {1, 2}
    versions = set()
    for r in records:
        c = r["components"]
        assert r["status"] == "complete" and r["run_id"] in r["artifacts"]["model"]
        examples, model = c["ExampleGen"]["outputs"]["examples"], c["Trainer"]["outputs"]["model"]
        assert c["Transform"]["inputs"] == {"examples": examples}
        assert c["Trainer"]["inputs"]["examples"] == examples
        assert c["Evaluator"]["inputs"]["examples"] == examples and c["Evaluator"]["inputs"]["model"] == model
        assert c["Pusher"]["inputs"]["model"] == model
        assert c["Pusher"]["inputs"]["blessing"] == c["Evaluator"]["outputs"]["blessing"]
        metrics = json.load(open(os.path.join(c["Evaluator"]["outputs"]["evaluation"], "metrics.json")))
        assert metrics["model"] == model and metrics["examples_dir"] == examples
        pushed = json.load(open(os.path.join(c["Pusher"]["outputs"]["pushed"], "pushed.json")))
        assert pushed["model"] == model and pushed["version"] == c["Pusher"]["version"]
        versions.add(pushed["version"])
        # what was pushed is this run's SavedModel, byte for byte
        assert open(os.path.join(serving, str(pushed["version"]), "saved_model.pb"), "rb").read() == \
            open(os.path.join(model, "Format-Serving", "saved_model.pb"), "rb").read()
    assert versions == {1, 2}
    assert records[0]["source_fingerprint"] != records[1]["source_fingerprint"]  # different seeds, different data
