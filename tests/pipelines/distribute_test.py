"""--strategy: TF_CONFIG roles, the TPU error, jit resolution, and the one generic loop
(pipelines.loop) against fit, with a GAN, on two logical CPUs and on two worker processes."""
import json
import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines import distribute, loop
from pipelines.artifacts import PipelineError

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}


def _tf_config(index, workers=2, task_type="worker", chief=False):
    cluster = {"worker": [f"127.0.0.1:{1000 + i}" for i in range(workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:999"]
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize("tf_config, expected", [
    ("", ("worker", 0, 1, True)),                                        # no TF_CONFIG: a lone chief
    (_tf_config(0), ("worker", 0, 2, True)),                             # worker 0 is the chief
    (_tf_config(1), ("worker", 1, 2, False)),
    (_tf_config(0, chief=True), ("worker", 0, 3, False)),                # an explicit chief task wins
    (_tf_config(0, chief=True, task_type="chief"), ("chief", 0, 3, True)),
    (_tf_config(0, task_type="evaluator"), ("evaluator", 0, 2, False)),
])
def test_worker_info_reads_tf_config(tf_config, expected):
    info = distribute.worker_info(tf_config)
    assert (info.task_type, info.task_index, info.num_workers, info.is_chief) == expected


def test_bad_tf_config_is_one_line(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(PipelineError, match="TF_CONFIG is not valid JSON"):
        distribute.is_chief()


def test_non_chief_worker_gets_scratch_root_and_no_evaluator_or_pusher(tmp_path):
    from pipelines.config import build_config

    cfg = build_config("resnet18_cifar10", {"paths": {"pipeline_root": str(tmp_path / "runs")}})
    chief = distribute.worker_info(_tf_config(0))
    assert distribute.worker_config(cfg, chief) is cfg
    other = distribute.worker_config(cfg, distribute.worker_info(_tf_config(1)))
    assert other.components == ("ExampleGen", "Transform", "Trainer")
    assert os.path.isdir(other.paths.pipeline_root) and "kcv-worker1-" in other.paths.pipeline_root
    assert other.paths.pipeline_root != cfg.paths.pipeline_root
    assert other.paths.serving_model_dir == cfg.paths.serving_model_dir


def test_tpu_strategy_without_a_tpu_is_one_clear_line():
    with pytest.raises(PipelineError) as err:
        distribute.make_strategy("tpu")
    message = str(err.value)
    assert message.startswith("--strategy=tpu: no TPU found (") and "\n" not in message


def test_resolve_jit():
    assert distribute.resolve_jit("true", "default") is True
    assert distribute.resolve_jit("false", "default") is False
    # auto: XLA only on a GPU, and never under multi-device strategies; this machine has no GPU
    assert distribute.resolve_jit("auto", "default") is bool(tf.config.list_logical_devices("GPU"))
    assert distribute.resolve_jit("auto", "mirrored") is False


@pytest.mark.parametrize("flags, expected", [("fpu avx512f avx512_bf16 amx_tile", True),
                                              ("fpu amx_tile amx_bf16", True),
                                              ("fpu avx2 avx512f avx512_vnni", False)])
def test_cpu_has_bf16_reads_the_cpuinfo_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    assert distribute.cpu_has_bf16(str(cpuinfo)) is expected
    assert distribute.cpu_has_bf16(str(tmp_path / "missing")) is False  # not Linux: float32


def test_resolve_policy(monkeypatch):
    assert [distribute.resolve_policy(f) for f in ("none", "float16", "bfloat16")] == [
        "float32", "mixed_float16", "mixed_bfloat16"]
    if tf.config.list_logical_devices("GPU"):
        assert distribute.resolve_policy("auto") == "mixed_float16"
        return
    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: True)
    assert distribute.resolve_policy("auto") == "mixed_bfloat16"
    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: False)
    assert distribute.resolve_policy("auto") == "float32"  # emulated bfloat16 would be slower


def _tiny_classifier(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")], jit_compile=False)
    return model


def _data(n=32, batch=8):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(n, 6, 6, 3)).astype("float32")
    y = (np.arange(n) % 3).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=1).batch(batch, drop_remainder=True)


def test_loop_trains_exactly_like_fit_on_one_device():
    # 32 examples / batch 8 = 4 steps per epoch, 2 epochs, validation on 16 examples (two batches).
    fitted = _tiny_classifier()
    history_fit = fitted.fit(_data().repeat(), epochs=2, steps_per_epoch=4, validation_data=_data(16), verbose=0)
    looped = _tiny_classifier()
    history_loop = loop.train(looped, _data().repeat(), epochs=2, steps_per_epoch=4, validation_data=_data(16),
                              verbose=0)
    assert sorted(history_loop.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for key in history_fit.history:
        np.testing.assert_allclose(history_loop.history[key], history_fit.history[key], rtol=1e-6, atol=1e-7)
    for a, b in zip(fitted.variables + fitted.optimizer.variables, looped.variables + looped.optimizer.variables):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-7, err_msg=a.path)
    assert int(looped.optimizer.iterations) == 8
    initial = _tiny_classifier()
    assert np.abs(looped.get_layer("dense").kernel.numpy() - initial.get_layer("dense").kernel.numpy()).max() > 1e-3


def test_loop_starts_mid_epoch_and_stops_on_request():
    class StopAt(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.batches = []

        def on_train_batch_end(self, batch, logs=None):
            self.batches.append(batch)
            if len(self.batches) == 3:
                self.model.stop_training = True

    model, stop = _tiny_classifier(), StopAt()
    # initial_step 6 with 4 steps per epoch: epoch 1 (0-based) at batch 2; the third batch stops it.
    history = loop.train(model, _data().repeat(), epochs=3, steps_per_epoch=4, initial_step=6, callbacks=[stop],
                         verbose=0)
    assert stop.batches == [2, 3, 0] and len(history.history["loss"]) == 2
    assert int(model.optimizer.iterations) == 3


def test_loop_drives_the_gan_train_step():
    from kcv.models import get_model

    gan = get_model("gan_gaussian", seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(0.05, name="d_adam"),
                g_optimizer=keras.optimizers.Adam(0.005, name="g_adam"))
    points = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    history = loop.train(gan, tf.data.Dataset.from_tensor_slices(points).batch(16).repeat(), epochs=2,
                         steps_per_epoch=4, verbose=0)
    assert sorted(history.history) == ["d_loss", "g_loss"]
    assert all(np.isfinite(v) for vals in history.history.values() for v in vals)
    # 2 epochs x 4 steps: each of the two optimizers stepped 8 times
    assert int(gan.d_optimizer.iterations) == 8 and int(gan.g_optimizer.iterations) == 8
    # the state a backup keeps covers both optimizers and the noise seed generator
    paths = [v.path for v in loop.state_variables(gan)]
    assert "noise_seed_generator/seed_generator_state" in paths
    assert any(p.startswith("d_adam/") for p in paths) and any(p.startswith("g_adam/") for p in paths)


_MIRRORED_LOOP = textwrap.dedent("""
    import os
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from absl import logging
    from pipelines import loop
    tf.config.experimental.enable_op_determinism()

    def build(batch_norm):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((6, 6, 3))
        x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
        if batch_norm == "keras":
            x = keras.layers.BatchNormalization(name="bn")(x)
        elif batch_norm == "fused":  # kcv's (TinySSD, DCGAN, fast_cifar)
            from kcv.layers.fused_batch_norm import FusedBatchNorm
            x = FusedBatchNorm(name="bn")(x)
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
        model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))
        # CoupledSGD's decay (added per replica before Keras sums the replicas' gradients) must
        # count once, not once per replica: lr 0.5 x l2 0.05 shrinks w by 2.5 % a step.
        from kcv.optim.coupled_decay import CoupledSGD
        model.compile(optimizer=CoupledSGD(0.5, momentum=0.9, l2=0.05),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
        return model

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 6, 6, 3)).astype("float32")
    y = (np.arange(32) % 3).astype("int32")

    def train(strategy, batch_norm):
        with strategy.scope():
            model = build(batch_norm)
        # a new dataset per run: a shuffle's seed generator belongs to the dataset object, so a
        # second iterator over the same object would see another order
        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(32, seed=1).batch(8, drop_remainder=True)
        loop.train(model, data.repeat(), epochs=2, steps_per_epoch=4, verbose=0)
        return model

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    initial = build(False)
    one = train(tf.distribute.get_strategy(), False)
    logging.set_verbosity(logging.INFO)
    two = train(mirrored, False)
    moved = max(np.abs(a.numpy() - b.numpy()).max() for a, b in zip(initial.weights, one.weights))
    diff = max(np.abs(a.numpy() - b.numpy()).max() for a, b in zip(one.weights, two.weights))
    print("MOVED", moved, "DIFF", diff)

    # BatchNorm: each replica updates its own moving statistics; the loop syncs them, so both
    # replicas end with the same values (else the export would keep replica 0's only).
    for kind in ("keras", "fused"):
        bn = train(mirrored, kind).get_layer("bn")
        copies = [c.numpy() for c in mirrored.experimental_local_results(bn.moving_mean.value)]
        print(f"BN_COPIES_{kind}", len(copies), float(np.abs(copies[0] - copies[1]).max()),
              float(np.abs(copies[0]).max()))
""")


def test_mirrored_on_two_logical_cpus_matches_one_device():
    out = subprocess.run([sys.executable, "-c", _MIRRORED_LOOP], capture_output=True, text=True, timeout=300,
                         env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    # the global batch of 8 goes to the two replicas as 4 + 4
    assert "pipelines.loop: 2 replica(s); global batch 8 split into 4 per replica" in out.stderr
    words = out.stdout.split()
    moved, diff = float(words[words.index("MOVED") + 1]), float(words[words.index("DIFF") + 1])
    # 8 SGD steps, lr 0.5: weights move by > 0.01; two replicas summing half-batch gradients match
    # one device to float32 rounding (measured ~1e-6), well inside the stated tolerance 1e-4.
    assert moved > 1e-2 and diff < 1e-4, (moved, diff)
    for kind in ("keras", "fused"):
        copies = words[words.index(f"BN_COPIES_{kind}") + 1:][:3]
        assert int(copies[0]) == 2 and float(copies[1]) == 0.0 and float(copies[2]) > 0.0, (kind, copies)


# ---- large: the pipeline on two logical CPUs and on two worker processes -------------------------
_MIRRORED_PIPELINE = textwrap.dedent("""
    import json, os, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from absl import logging
    from kcv.models.registry import register
    from pipelines.config import build_config
    from pipelines.runner import run_pipeline
    logging.set_verbosity(logging.INFO)

    @register("plain_cnn_for_mirrored_test")
    def plain_cnn(num_classes=10, input_shape=(32, 32, 3)):
        # no BatchNorm: its batch statistics are per replica, which no strategy can make equal
        inputs = keras.Input(input_shape)
        x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
        x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes)(x))

    root = sys.argv[1]
    cfg = build_config("resnet18_cifar10", {
        "paths": {"pipeline_root": os.path.join(root, "runs")}, "data": {"embedded_examples": 100},
        "training": {"epochs": 2, "batch_size": 10, "lr": 0.05}, "runtime": {"deterministic": True},
        "model": {"name": "plain_cnn_for_mirrored_test"}})
    data = run_pipeline(cfg.replace(components=["ExampleGen", "Transform"]))
    weights = {}
    for strategy in ("default", "mirrored"):
        record = run_pipeline(cfg.replace(**{"components": ["Trainer"], "runtime.strategy": strategy}),
                              continue_run=data.run_id)
        out = record.artifacts["model"]
        weights[strategy] = keras.saving.load_model(os.path.join(out, "model.keras")).get_weights()
        summary = json.load(open(os.path.join(out, "training_summary.json")))
        print("SUMMARY", strategy, summary["replicas"], summary["per_replica_batch"])
    print("DIFF", max(np.abs(a - b).max() for a, b in zip(weights["default"], weights["mirrored"])))
""")


@pytest.mark.large
def test_pipeline_trainer_mirrored_on_two_logical_cpus(tmp_path):
    out = subprocess.run([sys.executable, "-c", _MIRRORED_PIPELINE, str(tmp_path)], capture_output=True,
                         text=True, timeout=600, env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "strategy mirrored with 2 replica(s): global batch 10, 5 per replica" in out.stderr
    assert "pipelines.loop: 2 replica(s); global batch 10 split into 5 per replica" in out.stderr
    assert "SUMMARY default 1 10" in out.stdout and "SUMMARY mirrored 2 5" in out.stdout
    diff = float(out.stdout.split("DIFF")[1].split()[0])
    assert diff < 1e-4, diff  # 18 steps; measured ~5e-6 (float32 summation order)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.large
def test_two_worker_processes_train_identically_and_push_once(tmp_path):
    from pipelines import loop as loop_lib

    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    serving = tmp_path / "saved_models" / "mw"
    procs, logs = [], []
    try:
        for index in range(2):
            env = {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            log = open(tmp_path / f"worker{index}.log", "w+")
            logs.append(log)
            # the same command on both workers, as on two machines (each with its own --pipeline_root)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "pipelines.train", "--experiment=resnet18_cifar10", "--model=simple_cnn",
                 "--embedded_examples=100", "--epochs=2", "--batch_size=10", "--min_accuracy=0",
                 "--strategy=multi_worker", "--deterministic", f"--pipeline_root={tmp_path}/w{index}/runs",
                 f"--serving_model_dir={serving}"], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
        for proc in procs:
            proc.wait(timeout=540)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    texts = []
    for log in logs:
        log.seek(0)
        texts.append(log.read())
        log.close()
    assert [p.returncode for p in procs] == [0, 0], texts[0][-3000:] + texts[1][-3000:]
    for text in texts:  # 2 workers x 1 CPU: global batch 10 -> 5 per replica
        assert "pipelines.loop: 2 replica(s); global batch 10 split into 5 per replica" in text
    # worker 1 trained in lock step but wrote nothing lasting and ran no Evaluator/Pusher
    assert "worker 0 is not the chief" not in texts[0] and "worker 1 is not the chief" in texts[1]
    assert "Pusher:" not in texts[1] and not os.path.exists(tmp_path / "w1" / "runs" / "Trainer")
    digest1 = texts[1].split("weights sha256 ")[1].split()[0]
    # the chief exported the model; its weights are the ones worker 1 held
    record = [ln.split("run record: ")[1] for ln in texts[0].splitlines() if ln.startswith("run record: ")][0]
    model_dir = json.load(open(record))["artifacts"]["model"]
    summary = json.load(open(os.path.join(model_dir, "training_summary.json")))
    assert summary["workers"] == 2 and summary["replicas"] == 2 and summary["per_replica_batch"] == 5
    exported = keras.saving.load_model(os.path.join(model_dir, "model.keras"), compile=False)
    assert loop_lib.weights_digest(exported) == summary["weights_sha256"] == digest1
    # exactly one version pushed
    assert sorted(d for d in os.listdir(serving) if not d.startswith(".")) == ["1"]


@pytest.mark.large
def test_kcv_train_strategy_tpu_without_a_tpu_fails_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pipelines.train", "--experiment=resnet18_cifar10", "--strategy=tpu",
                          f"--pipeline_root={tmp_path}/runs", f"--serving_model_dir={tmp_path}/saved_models/m"],
                         capture_output=True, text=True, timeout=600, env=ENV, cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("kcv-train: error: ") and "--strategy=tpu: no TPU found (" in last
    # checked before any data work (kcv-train calls distribute.setup first)
    assert not os.path.exists(tmp_path / "runs" / "ExampleGen")


_MIRRORED_RETINANET = textwrap.dedent("""
    import json, os, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from absl import logging
    from pipelines.config import build_config
    from pipelines.runner import run_pipeline
    logging.set_verbosity(logging.INFO)

    root = sys.argv[1]
    cfg = build_config("retinanet_bananas", {
        "paths": {"pipeline_root": os.path.join(root, "runs"),
                  "serving_model_dir": os.path.join(root, "saved_models", "retinanet_bananas")},
        "data": {"embedded_examples": 32}, "model": {"image_size": (64, 64)},
        "training": {"epochs": 2, "batch_size": 8}, "runtime": {"strategy": "mirrored"}})
    cfg = cfg.replace(**{"model.kwargs": {"head_width": 8, "head_convs": 1}, "evaluation.min_accuracy": 0.0})
    record = run_pipeline(cfg)
    summary = json.load(open(os.path.join(record.artifacts["model"], "training_summary.json")))
    print("SUMMARY", summary["replicas"], summary["per_replica_batch"],
          all(np.isfinite(v) for v in summary["history"]["loss"]))
    loaded = tf.saved_model.load(os.path.join(cfg.paths.serving_model_dir, "1"))
    out = loaded.signatures["serving_images"](images=tf.zeros([2, 64, 64, 3], tf.uint8))
    print("SERVED", tuple(out["boxes"].shape), out["num_detections"].dtype.name)
""")


@pytest.mark.large  # keras-cv's RetinaNet through the whole pipeline on two replicas: ~2 minutes
def test_retinanet_pipeline_mirrored_on_two_logical_cpus_pushes_a_detector(tmp_path):
    out = subprocess.run([sys.executable, "-c", _MIRRORED_RETINANET, str(tmp_path)], capture_output=True,
                         text=True, timeout=900, env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "strategy mirrored with 2 replica(s): global batch 8, 4 per replica" in out.stderr
    # BatchNorm statistics are per replica, so the run cannot equal one device's; it must train and push
    assert "SUMMARY 2 4 True" in out.stdout and "SERVED (2, 100, 4) int32" in out.stdout, out.stdout
