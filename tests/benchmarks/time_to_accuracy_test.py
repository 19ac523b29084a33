"""time_to_accuracy.py: exits 0 without the data; its fixed held-out split never overlaps training."""
import argparse
import importlib.util
import io
import os
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "time_to_accuracy.py")


def _module():
    spec = importlib.util.spec_from_file_location("time_to_accuracy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_the_data_it_says_so_and_exits_0(tmp_path):
    proc = subprocess.run([sys.executable, SCRIPT, f"--data={tmp_path}/absent.tar.gz", f"--work_dir={tmp_path}/w"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "is not here; nothing to measure" in proc.stdout
    assert not os.path.exists(tmp_path / "w")


def test_fixed_split_is_files_4000_and_up_and_disjoint_from_training(tmp_path):
    data = tmp_path / "cifar.tar.gz"
    with tarfile.open(data, "w:gz") as tar:
        for c in ("cat", "dog"):
            for i in (0, 1, 2, 4000, 4001):
                info = tarfile.TarInfo(f"train/{c}/{i:04d}.jpg")
                payload = f"{c}{i}".encode()
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    args = argparse.Namespace(data=str(data), work_dir=str(tmp_path / "w"), train_images=4, test_images=4)
    train_dir, test_dir = _module()._prepare(args)
    listing = {d: {c: sorted(os.listdir(os.path.join(d, c))) for c in ("cat", "dog")} for d in (train_dir, test_dir)}
    assert listing[train_dir] == {"cat": ["0000.jpg", "0001.jpg"], "dog": ["0000.jpg", "0001.jpg"]}
    assert listing[test_dir] == {"cat": ["4000.jpg", "4001.jpg"], "dog": ["4000.jpg", "4001.jpg"]}
    with open(os.path.join(test_dir, "dog", "4001.jpg"), "rb") as f:
        assert f.read() == b"dog4001"


def test_where_the_time_goes_comes_from_this_runs_record_and_seeds_are_summarised(tmp_path):
    import json
    import time

    module = _module()
    runs = tmp_path / "runs"
    runs.mkdir()
    old = runs / "old.json"
    old.write_text(json.dumps({"components": {"Trainer": {"seconds": 1.0}}}))
    os.utime(old, (1, 1))  # an earlier run in the same root must not be reported
    started = time.time() - 5
    (runs / "new.json").write_text(json.dumps({"components": {
        "ExampleGen": {"seconds": 12.5}, "Trainer": {"seconds": 600.0}, "Evaluator": {"status": "failed"}}}))
    assert module._component_seconds(str(tmp_path), started) == {"ExampleGen": 12.5, "Trainer": 600.0}
    assert module._component_seconds(str(tmp_path), time.time() + 60) == {}
    assert module._spread([0.9]) == "0.9000"
    assert module._spread([0.92, 0.94, 0.93]) == "0.9300 ± 0.0100 (min 0.9200)"


def test_trainer_split_sums_the_phases_of_the_model_this_runs_record_names(tmp_path):
    import json
    import time

    module = _module()
    started = time.time() - 5
    model, refit = tmp_path / "Trainer" / "model" / "run1", tmp_path / "Trainer" / "final_model" / "run1"
    for folder, scale in ((model, 1.0), (refit, 100.0)):
        folder.mkdir(parents=True)
        phases = [{"seconds": {"input": 1.0 * scale, "step": 100.0, "validation": 10.0, "other": 2.0}},
                  {"seconds": {"input": 0.5 * scale, "step": 50.0, "validation": 5.0, "other": 1.0}}]
        (folder / "training_summary.json").write_text(json.dumps({"phases": phases}))
    (tmp_path / "runs").mkdir()
    # the refit's summary is newer, but the record's `model` is the Trainer's
    (tmp_path / "runs" / "run1.json").write_text(json.dumps({"artifacts": {"model": str(model)}}))
    assert module._trainer_seconds(str(tmp_path), started) == {"input": 1.5, "step": 150.0, "validation": 15.0,
                                                               "other": 3.0}
    assert module._trainer_seconds(str(tmp_path), time.time() + 60) == {}  # no record of this run


def test_seconds_to_target_is_the_first_epoch_at_or_above_it():
    module = _module()
    curve = [(1, 60.0, 0.80), (2, 120.0, 0.9399), (3, 180.0, 0.94), (4, 240.0, 0.95)]
    assert module.seconds_to(curve, 0.94) == 180.0
    assert module.seconds_to([(1, 300.0, 0.95), (1, 200.0, 0.94)], 0.94) == 200.0  # two phases: the earliest time
    assert module.seconds_to(curve, 0.96) is None
    assert module.format_seconds_to(curve, 0.94) == "180"
    assert module.format_seconds_to(curve, 0.96) == "not reached (best 0.9500)"
    assert module.format_seconds_to([], 0.94) == "no curve"
