"""--strategy, --mixed_precision, --jit_compile, --seed and --deterministic made real."""
from __future__ import annotations

from absl import logging

from pipelines.artifacts import PipelineError


def make_strategy(name: str):
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        device = "/gpu:0" if tf.config.list_logical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except Exception as err:  # no TPU here: one line, not a traceback
            raise PipelineError(f"--strategy=tpu: no TPU found ({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise PipelineError(f"unknown --strategy {name!r}")


def set_precision_and_seed(mixed_precision: str, seed: int, deterministic: bool) -> None:
    import keras
    import tensorflow as tf

    policy = {"none": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}[mixed_precision]
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    logging.info("precision policy %s, seed %d, op determinism %s", policy, seed, deterministic)


def resolve_jit(flag: str, strategy_name: str) -> bool:
    """auto: XLA on GPUs (measured faster there); off on CPU and under multi-device strategies,
    where jit_compile=True fails on logical CPUs (DESIGN.md section 7)."""
    import tensorflow as tf

    if flag == "true":
        return True
    if flag == "false":
        return False
    return bool(tf.config.list_logical_devices("GPU")) and strategy_name in ("default", "one_device")
