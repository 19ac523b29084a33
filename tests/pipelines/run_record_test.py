"""Run records: what a run consumed and produced, by name; continuation; newest complete run."""
import json
import os

import pytest

from pipelines.artifacts import PipelineError
from pipelines.run_record import COMPLETE, FAILED, RunRecord, newest_complete, record_path


def _run(root, run_id, produced, parent=None, status=COMPLETE):
    record = RunRecord.create(root, run_id, {"experiment": "e"}, tuple(produced), parent)
    for name, outputs in produced.items():
        record.start(name)
        record.finish(name, record.inputs_for(name, ()), outputs, f"{name} ok")
    record.close(status)
    return record


def test_record_file_holds_components_inputs_outputs_and_timings(tmp_path):
    root = str(tmp_path)
    record = RunRecord.create(root, "r1", {"experiment": "e", "training": {"lr": 0.1}}, ("ExampleGen", "Transform"))
    record.start("ExampleGen")
    record.finish("ExampleGen", {}, {"examples": "/x/examples/r1"}, "10 train / 2 eval", {"source_fingerprint": "ab"})
    record.start("Transform")
    inputs = record.inputs_for("Transform", ("examples",))
    record.finish("Transform", inputs, {"transform": "/x/transform/r1"}, "stats")
    record.close(COMPLETE)
    data = json.load(open(record_path(root, "r1")))
    assert data["status"] == COMPLETE and data["config"]["training"]["lr"] == 0.1
    assert data["components"]["Transform"]["inputs"] == {"examples": "/x/examples/r1"}
    assert data["components"]["Transform"]["outputs"] == {"transform": "/x/transform/r1"}
    assert data["components"]["ExampleGen"]["source_fingerprint"] == "ab"
    assert data["components"]["ExampleGen"]["seconds"] >= 0 and data["finished"] >= data["started"]
    assert data["artifacts"] == {"examples": "/x/examples/r1", "transform": "/x/transform/r1"}
    assert not [f for f in os.listdir(tmp_path / "runs") if f.endswith(".tmp")]  # written whole


def test_a_continued_run_starts_with_exactly_its_parents_artifacts(tmp_path):
    root = str(tmp_path)
    parent = _run(root, "r1", {"ExampleGen": {"examples": "/e/r1"}, "Trainer": {"model": "/m/r1"}})
    _run(root, "r2", {"ExampleGen": {"examples": "/e/r2"}, "Trainer": {"model": "/m/r2"}})  # newer, not named
    child = RunRecord.create(root, "r3", {}, ("Evaluator",), parent=RunRecord.load(root, "r1"))
    assert child.inputs_for("Evaluator", ("examples", "model")) == {"examples": "/e/r1", "model": "/m/r1"}
    assert child.data["parent_run"] == parent.run_id


def test_missing_input_names_the_artifact_and_the_run(tmp_path):
    root = str(tmp_path)
    _run(root, "r1", {"ExampleGen": {"examples": "/e/r1"}})
    child = RunRecord.create(root, "r2", {}, ("Evaluator",), parent=RunRecord.load(root, "r1"))
    with pytest.raises(PipelineError, match="Evaluator needs the model artifact, and run r2 has none"):
        child.inputs_for("Evaluator", ("examples", "model"))


def test_newest_complete_skips_running_failed_and_unreadable_records(tmp_path):
    root = str(tmp_path)
    assert newest_complete(root) is None
    _run(root, "20260101T000000000000Z-aaaaaa", {"ExampleGen": {"examples": "/e/1"}})
    _run(root, "20260101T000000000001Z-aaaaaa", {"ExampleGen": {"examples": "/e/2"}}, status=FAILED)
    RunRecord.create(root, "20260101T000000000002Z-aaaaaa", {}, ())  # still running
    (tmp_path / "runs" / "20260101T000000000003Z-aaaaaa.json").write_text("{half")
    assert newest_complete(root) == "20260101T000000000000Z-aaaaaa"


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(PipelineError, match=r"no run record .*nope.json \(--run_id names a run under"):
        RunRecord.load(str(tmp_path), "nope")


def test_fail_marks_component_and_run(tmp_path):
    record = RunRecord.create(str(tmp_path), "r1", {}, ("Trainer",))
    record.start("Trainer")
    record.fail("Trainer", {"examples": "/e"}, "PipelineError: loss became NaN")
    data = json.load(open(record.path))
    assert data["status"] == FAILED and data["components"]["Trainer"]["status"] == FAILED
    assert data["components"]["Trainer"]["error"] == "PipelineError: loss became NaN"
