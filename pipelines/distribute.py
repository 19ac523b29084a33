"""--strategy, --mixed_precision, --jit_compile, --seed and --deterministic made real.

Multi-worker training (`--strategy=multi_worker`) reads TF_CONFIG: every worker runs the same
kcv-train command; worker 0 (or the task of type "chief") is the chief. Only the chief writes the
Trainer's model artifact, evaluates and pushes; the others train in lock step and write to a
temporary folder that is deleted (TensorFlow's advice for saving under MultiWorkerMirroredStrategy).

MultiWorkerMirroredStrategy must exist before the process runs its first TensorFlow op (TF raises
"Collective ops must be configured at program startup"), and ExampleGen/Transform run ops before
the Trainer. So kcv-train calls `setup(cfg.runtime.strategy)` first; `make_strategy` then hands the
Trainer that same instance; `worker_config` gives non-chief workers a scratch pipeline root and
drops the chief-only components.
"""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from typing import Iterator

from absl import logging

from pipelines.artifacts import PipelineError

# Components that only the chief runs under multi_worker (they write lasting, shared results).
CHIEF_ONLY = ("Evaluator", "Pusher")

# multi_worker and tpu: one strategy per process (collectives / the TPU system are set up once).
_PROCESS_STRATEGIES: dict[str, object] = {}


@dataclasses.dataclass(frozen=True)
class Worker:
    """Who this process is in a TF_CONFIG cluster (a lone process is the chief of 1 worker)."""
    task_type: str
    task_index: int
    num_workers: int
    is_chief: bool


def worker_info(tf_config: str | None = None) -> Worker:
    """This process's place in the TF_CONFIG cluster; no TF_CONFIG = a lone chief.

    The chief is the task of type "chief" when the cluster has one, else worker 0, as in
    tf.distribute. Other task types (e.g. "evaluator") are never the chief.
    """
    raw = os.environ.get("TF_CONFIG", "") if tf_config is None else tf_config
    if not raw.strip():
        return Worker("worker", 0, 1, True)
    try:
        spec = json.loads(raw)
        cluster, task = spec.get("cluster", {}), spec.get("task", {})
        task_type, index = str(task.get("type", "worker")), int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError) as err:
        raise PipelineError(f"TF_CONFIG is not valid JSON with cluster/task: {err}") from None
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    chief = task_type == "chief" or ("chief" not in cluster and task_type == "worker" and index == 0)
    return Worker(task_type, index, max(workers, 1), chief)


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a non-chief task."""
    return worker_info().is_chief


def setup(strategy_name: str) -> Worker:
    """Call once at program start, before any TensorFlow op: creates the multi-worker strategy
    (which must configure collectives first) and says whether this process is the chief."""
    worker = worker_info()
    if strategy_name == "tpu":
        make_strategy(strategy_name)  # no TPU: fail in one line before any data work
    if strategy_name == "multi_worker":
        make_strategy(strategy_name)
        logging.info("multi_worker: %s %d of %d workers%s", worker.task_type, worker.task_index,
                     worker.num_workers, " (chief)" if worker.is_chief else "")
    return worker


def worker_config(cfg, worker: Worker):
    """The config this process runs (None: nothing): the chief's is `cfg`; another worker gets a private scratch
    --pipeline_root (deleted when the process exits) and no Evaluator/Pusher, so workers sharing a
    --pipeline_root never race on it and exactly one model is evaluated and pushed. The other
    workers' ExampleGen reproduces the chief's examples (same flags and seed -> same records)."""
    if worker.is_chief:
        return cfg
    scratch = tempfile.mkdtemp(prefix=f"kcv-{worker.task_type}{worker.task_index}-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    components = [c for c in cfg.components if c not in CHIEF_ONLY]
    if not components:
        return None  # e.g. --components=Evaluator,Pusher: nothing for this worker to do
    logging.info("%s %d is not the chief: artifacts go to %s (deleted at exit); %s run on the chief only",
                 worker.task_type, worker.task_index, scratch, " and ".join(CHIEF_ONLY))
    return cfg.replace(**{"paths.pipeline_root": scratch, "components": components})


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
        if name not in _PROCESS_STRATEGIES:
            try:
                _PROCESS_STRATEGIES[name] = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as err:  # "Collective ops must be configured at program startup"
                raise PipelineError(f"--strategy=multi_worker: {str(err).splitlines()[0]} (create it with "
                                    "pipelines.distribute.setup() before any TensorFlow op)") from None
        return _PROCESS_STRATEGIES[name]
    if name == "tpu":
        if name not in _PROCESS_STRATEGIES:  # the TPU system is initialised once per process
            try:
                resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
                tf.config.experimental_connect_to_cluster(resolver)
                tf.tpu.experimental.initialize_tpu_system(resolver)
            except Exception as err:  # no TPU here: one line, not a traceback (measured: fails at once)
                first = (str(err).splitlines() or [""])[0][:120]
                raise PipelineError(f"--strategy=tpu: no TPU found ({type(err).__name__}: {first})") from None
            _PROCESS_STRATEGIES[name] = tf.distribute.TPUStrategy(resolver)
        return _PROCESS_STRATEGIES[name]
    raise PipelineError(f"unknown --strategy {name!r}")


POLICIES = {"none": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
# CPU flags (Linux /proc/cpuinfo) of hardware bfloat16 matrix units: AMX tiles or AVX512-BF16.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 in hardware (False where cpuinfo cannot be read)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_policy(flag: str) -> str:
    """The Keras dtype policy of --mixed_precision. auto: mixed_float16 on a GPU, mixed_bfloat16
    on CPUs with bfloat16 hardware (cifar10_fast's net trains 2.5x faster so, on an AMX Xeon,
    BUILD.md), float32 elsewhere (emulated bfloat16 is slower than float32)."""
    if flag != "auto":
        return POLICIES[flag]
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def set_precision_and_seed(mixed_precision: str, seed: int, deterministic: bool) -> None:
    """Global dtype policy (--mixed_precision resolved), seeds of Python/NumPy/TensorFlow, and TensorFlow op determinism."""
    import keras
    import tensorflow as tf

    policy = resolve_policy(mixed_precision)
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    logging.info("precision policy %s, seed %d, op determinism %s", policy, seed, deterministic)


@contextlib.contextmanager
def precision_and_seed(mixed_precision: str, seed: int, deterministic: bool) -> Iterator[None]:
    """set_precision_and_seed for the duration of a block; the previous dtype policy and
    determinism setting come back afterwards (both are process-global in Keras/TensorFlow)."""
    import keras
    from tensorflow.python.framework import config as tf_config  # is/disable_op_determinism

    previous_policy = keras.mixed_precision.global_policy().name
    was_deterministic = tf_config.is_op_determinism_enabled()
    set_precision_and_seed(mixed_precision, seed, deterministic)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if deterministic and not was_deterministic:
            tf_config.disable_op_determinism()


def resolve_jit(flag: str, strategy_name: str) -> bool:
    """auto: XLA on GPUs (measured faster there); off on CPU and under multi-device strategies,
    where jit_compile=True fails on logical CPUs (DESIGN.md section 7)."""
    import tensorflow as tf

    if flag == "true":
        if strategy_name in ("mirrored", "multi_worker") and not tf.config.list_logical_devices("GPU"):
            logging.warning("--jit_compile=true under --strategy=%s on CPUs: XLA may fail to compile "
                            "the collective ops; --jit_compile=auto turns it off here", strategy_name)
        return True
    if flag == "false":
        return False
    return bool(tf.config.list_logical_devices("GPU")) and strategy_name in ("default", "one_device")
