"""The Pusher: blessed models only, complete versions, distinct versions under concurrency."""
import json
import os
import subprocess
import sys

import pytest

from pipelines.artifacts import NotBlessedError, PipelineError
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
    with pytest.raises(NotBlessedError, match="model not blessed, nothing pushed: accuracy 0.1 is below"):
        pusher.blessed_reason(_blessing(str(tmp_path / "b"), False, "accuracy 0.1 is below the threshold"))
    assert pusher.blessed_reason(_blessing(str(tmp_path / "ok"), True)) == "accuracy 0.9 >= 0.3"


def test_push_numbers_versions_and_copies_every_file(tmp_path):
    source = _saved_model(str(tmp_path / "model"))
    target = str(tmp_path / "saved_models" / "m")
    os.makedirs(os.path.join(target, ".tmp-7-killed"))  # a killed push's leftover
    assert [pusher.push(source, target, "r1"), pusher.push(source, target, "r2")] == [(1, False), (2, False)]
    assert sorted(d for d in os.listdir(target) if not d.startswith(".")) == ["1", "2"]
    assert not [d for d in os.listdir(target) if d.startswith(".tmp-")]
    assert open(os.path.join(target, "2", "variables", "variables.index"), "rb").read() == b"graph" * 1000


def _server_config_class():
    """tensorflow.serving.ModelServerConfig, built from its .proto's field numbers
    (tensorflow_serving/config/model_server_config.proto: ModelConfig name=1, base_path=2,
    model_platform=4; ModelConfigList config=1; ModelServerConfig model_config_list=1)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="kcv_test_model_server_config.proto", package="tensorflow.serving",
                                              syntax="proto3")
    for name, fields in (("ModelConfig", [("name", 1, F.TYPE_STRING, None, F.LABEL_OPTIONAL),
                                          ("base_path", 2, F.TYPE_STRING, None, F.LABEL_OPTIONAL),
                                          ("model_platform", 4, F.TYPE_STRING, None, F.LABEL_OPTIONAL)]),
                         ("ModelConfigList", [("config", 1, F.TYPE_MESSAGE, ".tensorflow.serving.ModelConfig",
                                               F.LABEL_REPEATED)]),
                         ("ModelServerConfig", [("model_config_list", 1, F.TYPE_MESSAGE,
                                                 ".tensorflow.serving.ModelConfigList", F.LABEL_OPTIONAL)])):
        message = file.message_type.add(name=name)
        for field, number, kind, type_name, label in fields:
            message.field.add(name=field, number=number, type=kind, label=label, **({"type_name": type_name}
                                                                                      if type_name else {}))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.ModelServerConfig"))


def test_models_config_parses_as_tf_servings_model_server_config(tmp_path):
    from google.protobuf import text_format

    path = str(tmp_path / "saved_models" / "models.config")
    os.makedirs(os.path.dirname(path))
    pusher.write_models_config(path, "resnet18_cifar10", "/models/resnet18_cifar10")
    pusher.write_models_config(path, 'odd "name"', "/srv/models/odd")
    pusher.write_models_config(path, "resnet18_cifar10", "/models/resnet18_cifar10")  # again: one entry
    config = text_format.Parse(open(path).read(), _server_config_class()())
    entries = [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config]
    assert entries == [('odd "name"', "/srv/models/odd", "tensorflow"),
                       ("resnet18_cifar10", "/models/resnet18_cifar10", "tensorflow")]
    assert pusher.read_models_config(path) == {'odd "name"': "/srv/models/odd",
                                               "resnet18_cifar10": "/models/resnet18_cifar10"}


def test_concurrent_pushes_get_distinct_complete_versions(tmp_path):
    """8 Pusher processes at once on one serving folder: 8 distinct versions, each a whole copy."""
    source = _saved_model(str(tmp_path / "model"), payload=os.urandom(1 << 16))
    target = str(tmp_path / "saved_models" / "m")
    code = "import sys; from pipelines.components import pusher; print(pusher.push(*sys.argv[1:])[0])"
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
    assert pushed["version"] == 1 and pushed["model"] == shared.artifacts["model"] and not pushed["already_served"]
    assert pushed["pushed_to"] == os.path.join(shared_cfg.paths.serving_model_dir, "1")
    assert pushed["models_config"] == os.path.join(os.path.dirname(shared_cfg.paths.serving_model_dir), "models.config")
    assert pusher.read_models_config(pushed["models_config"]) == {"resnet18_cifar10": "/models/resnet18_cifar10"}
    cfg, parent = pipeline_copy
    before = sorted(os.listdir(cfg.paths.serving_model_dir))
    strict = cfg.replace(**{"components": ["Evaluator", "Pusher"], "evaluation.min_accuracy": 1.01})
    with pytest.raises(NotBlessedError, match="model not blessed, nothing pushed: accuracy .* below the threshold"):
        run_pipeline(strict, continue_run=parent)
    assert sorted(os.listdir(cfg.paths.serving_model_dir)) == before
    for dirpath, dirnames, _ in os.walk(cfg.paths.pipeline_root):  # nothing half-written left anywhere
        assert not [d for d in dirnames if d.startswith(".tmp")], dirpath


def test_the_same_model_again_is_already_served_not_a_new_version(pipeline_copy, tmp_path):
    from pipelines.runner import run_pipeline

    cfg, parent = pipeline_copy
    config = str(tmp_path / "elsewhere" / "serving.config")
    record = run_pipeline(cfg.replace(**{"components": ["Pusher"], "paths.models_config": config,
                                         "paths.serving_base_path": "/srv/tf/"}), continue_run=parent)
    c = record.data["components"]["Pusher"]
    assert c["already_served"] and c["version"] == 1 and c["summary"].startswith("already served as version 1")
    assert sorted(d for d in os.listdir(cfg.paths.serving_model_dir) if not d.startswith(".")) == ["1"]
    assert pusher.read_models_config(config) == {"resnet18_cifar10": "/srv/tf/resnet18_cifar10"}


def test_a_final_model_must_be_the_refit_of_the_blessed_one(tmp_path):
    final = tmp_path / "final"
    final.mkdir()
    (final / "training_summary.json").write_text(json.dumps({"refit_of": str(tmp_path / "model-a")}))
    pusher.check_final_model(str(final), str(tmp_path / "model-a"))
    with pytest.raises(PipelineError, match="is the refit of .*model-a, not of the blessed .*model-b"):
        pusher.check_final_model(str(final), str(tmp_path / "model-b"))
    with pytest.raises(PipelineError, match="has no readable training_summary.json"):
        pusher.check_final_model(str(tmp_path / "nothing"), str(tmp_path / "model-a"))
