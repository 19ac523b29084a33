"""kcv-train's flags and the one frozen config they resolve to.

Precedence: a flag given on the command line > the experiment preset > the flag's default. The
resolved config is written to <pipeline_root>/config.json before any component runs.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from absl import flags

from pipelines.experiments import EXPERIMENTS, get_experiment

COMPONENTS = ("ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher")
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
LR_SCHEDULES = ("constant", "step", "factor", "multistep", "cosine", "exponential", "poly")

FLAGS = flags.FLAGS

flags.DEFINE_string("experiment", None, f"Preset to run: {', '.join(sorted(EXPERIMENTS))}.")
flags.DEFINE_bool("list_experiments", False, "List the experiments with their data and book results, then exit.")
flags.DEFINE_string("data_dir", None, "Data folder for the experiment's source (Kaggle layout, class folders, "
                    "or tensorflow-datasets data_dir). Without it the embedded generated data is used.")
flags.DEFINE_bool("download", False, "Allow tensorflow-datasets to download missing data.")
flags.DEFINE_string("pipeline_root", None, "Artifact root (default runs/<experiment>).")
flags.DEFINE_string("serving_model_dir", None, "Where the Pusher puts versions (default saved_models/<experiment>).")
flags.DEFINE_string("model", None, "Registered model to train instead of the preset's (its preset arguments are "
                    "then dropped), e.g. simple_cnn for a quick check.")
flags.DEFINE_list("image_size", None, "H,W the model sees, overriding the preset (e.g. 64,64 for a quick run).")
flags.DEFINE_enum("backbone", None, ["resnet50", "resnet101", "resnet152", "densenet121", "mobilenet_v3_small",
                                     "mobilenet_v3_large", "efficientnet_b0"],
                  "Fine-tuning experiments: the keras.applications backbone (preset resnet50).")
flags.DEFINE_string("weights", None, "Fine-tuning experiments: imagenet (Keras cache; --download to fetch), a "
                    "local .h5 path, or none (random, for offline runs).")
flags.DEFINE_integer("trainable_layers", None, "Fine-tuning experiments: unfreeze the backbone's last N weighted "
                     "layers (BatchNorm stays in inference mode); 0 = frozen (preset).", lower_bound=0)
flags.DEFINE_bool("keep_imagenet_top", None, "Fine-tuning experiments: keep the backbone's 1000-way output as the "
                  "book does (needs 224x224) or use pooled features.")
flags.DEFINE_list("components", list(COMPONENTS), "Components to run, in pipeline order; the others are "
                  "read from their latest artifacts, e.g. --components=Evaluator,Pusher.")
flags.DEFINE_enum("strategy", "default", STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_integer("epochs", None, "Training epochs (preset).", lower_bound=1)
flags.DEFINE_integer("batch_size", None, "Global batch size; per replica it is this / replicas (preset).", lower_bound=1)
flags.DEFINE_enum("optimizer", None, ["sgd", "adam"], "Optimizer (preset).")
flags.DEFINE_float("lr", None, "Learning rate for the loss averaged over the batch (preset).", lower_bound=0.0)
flags.DEFINE_float("d_lr", None, "GANs: the discriminator's learning rate (0 = same as --lr) (preset).", lower_bound=0.0)
flags.DEFINE_float("momentum", None, "SGD momentum (preset).", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("weight_decay", None, "Weight decay added to the gradient, torch/mxnet style (preset).", lower_bound=0.0)
flags.DEFINE_string("lr_schedule", None, "Learning-rate schedule NAME[:key=value,...] with NAME one of "
                    f"{', '.join(LR_SCHEDULES)}, e.g. cosine:max_update=20,final_lr=0.01,warmup_steps=5 "
                    "(epochs); `step` takes --lr_period/--lr_decay (preset).")
flags.DEFINE_integer("lr_period", None, "Epochs between step decays (preset).", lower_bound=1)
flags.DEFINE_float("lr_decay", None, "Factor applied every lr_period epochs (preset).", lower_bound=0.0)
flags.DEFINE_float("valid_ratio", None, "Fraction of the smallest class held out per class for evaluation (preset).")
flags.DEFINE_float("min_accuracy", None, "Evaluator blesses only at or above this accuracy (preset).")
flags.DEFINE_float("max_regression", None, "Evaluator refuses a model worse than the last pushed one by more (preset).")
flags.DEFINE_integer("embedded_examples", None, "Size of the embedded generated data set (preset).", lower_bound=20)
flags.DEFINE_integer("steps_per_epoch", 0, "Cap on training steps per epoch (0 = the whole split).", lower_bound=0)
flags.DEFINE_integer("num_shards", 2, "TFRecord shards per split.", lower_bound=1)
flags.DEFINE_integer("seed", None, "Seed for splits, shuffling, augmentation and initialisation (preset, usually 0).")
flags.DEFINE_bool("deterministic", False, "Enable TensorFlow op determinism (slower).")
flags.DEFINE_enum("mixed_precision", "none", ["none", "float16", "bfloat16"],
                  "Mixed-precision compute dtype. bfloat16 measured ~1.5x faster training on CPUs with "
                  "AMX/AVX512-BF16; none (float32) reproduces the book's numbers.")
flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"], "XLA compilation of the train step.")
flags.DEFINE_integer("backup_steps", 0, "Also save the resumable training backup (<pipeline_root>/Trainer/model_run/"
                     "backup) every N steps, not only at epoch ends (0 = epoch ends only).", lower_bound=0)

TUNABLE = ("epochs", "batch_size", "optimizer", "lr", "d_lr", "momentum", "weight_decay", "lr_schedule", "lr_period",
           "lr_decay", "valid_ratio", "min_accuracy", "max_regression", "embedded_examples", "seed")


@dataclasses.dataclass(frozen=True)
class Config:
    experiment: str
    task: str
    model: str
    model_kwargs: dict
    source: str
    embedded: str
    embedded_source: str
    image_size: tuple
    channels: int
    augment: str
    resize_mode: str
    labelled: bool
    normalize: bool
    data_dir: str | None
    download: bool
    pipeline_root: str
    serving_model_dir: str
    components: tuple
    strategy: str
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    d_lr: float
    momentum: float
    weight_decay: float
    lr_schedule: str
    lr_period: int
    lr_decay: float
    valid_ratio: float
    min_accuracy: float
    max_regression: float
    embedded_examples: int
    steps_per_epoch: int
    num_shards: int
    seed: int
    deterministic: bool
    mixed_precision: str
    jit_compile: str
    book: str = ""
    backup_steps: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    def write(self, path: str | None = None) -> str:
        path = path or os.path.join(self.pipeline_root, "config.json")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.to_json() + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, path: str) -> "Config":
        with open(path) as f:
            data = json.load(f)
        data["image_size"] = tuple(data["image_size"])
        data["components"] = tuple(data["components"])
        return cls(**data)


def build_config(experiment: str, **overrides: Any) -> Config:
    """The config for `experiment` with keyword overrides (None = use the preset)."""
    exp = get_experiment(experiment)
    values: dict[str, Any] = dict(exp.defaults)
    if not overrides.get("data_dir"):
        embedded = dict(exp.embedded_defaults)
        if "image_size" in embedded:  # a preset size; an explicit --image_size still wins
            values["preset_image_size"] = embedded.pop("image_size")
        values.update(embedded)
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    model = values.pop("model", None) or exp.model
    model_kwargs = dict(exp.model_kwargs) if model == exp.model else {}
    for key in ("backbone", "weights", "keep_imagenet_top", "trainable_layers"):
        value = values.pop(key, None)
        if value is not None:
            if "backbone" not in model_kwargs:
                raise ValueError(f"--{key} applies to fine-tuning experiments (dog_breeds), not {exp.name}")
            model_kwargs[key] = None if (key == "weights" and str(value).lower() == "none") else value
    if "backbone" in model_kwargs:
        model_kwargs["allow_download"] = bool(values.get("download"))
    image_size = values.pop("image_size", None) or values.pop("preset_image_size", None)
    if image_size:
        try:
            image_size = tuple(int(v) for v in image_size)
            assert len(image_size) == 2 and min(image_size) > 0
        except (ValueError, AssertionError):
            raise ValueError(f"--image_size must be H,W with positive integers, got {','.join(map(str, image_size))}") from None
    else:
        image_size = tuple(exp.image_size)
    components = tuple(values.pop("components", COMPONENTS))
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise ValueError(f"unknown components {unknown}; use {', '.join(COMPONENTS)}")
    components = tuple(c for c in COMPONENTS if c in components)
    schedule_name = str(values["lr_schedule"]).partition(":")[0].strip()
    if schedule_name not in LR_SCHEDULES:
        raise ValueError(f"--lr_schedule {values['lr_schedule']!r}: unknown schedule; use one of {', '.join(LR_SCHEDULES)}")
    if not 0.0 < values["valid_ratio"] < 1.0:
        raise ValueError(f"--valid_ratio must be between 0 and 1, got {values['valid_ratio']}")
    return Config(
        experiment=exp.name, task=exp.task, model=model, model_kwargs=model_kwargs,
        source=exp.source, embedded=exp.embedded, embedded_source=exp.embedded_source,
        image_size=image_size, channels=exp.channels, augment=exp.augment,
        resize_mode=exp.resize_mode, labelled=exp.labelled, normalize=exp.normalize,
        data_dir=values.pop("data_dir", None), download=values.pop("download", False),
        pipeline_root=values.pop("pipeline_root", None) or os.path.join("runs", exp.name),
        serving_model_dir=values.pop("serving_model_dir", None) or os.path.join("saved_models", exp.name),
        components=components,
        strategy=values.pop("strategy", "default"),
        steps_per_epoch=values.pop("steps_per_epoch", 0), num_shards=values.pop("num_shards", 2),
        deterministic=values.pop("deterministic", False),
        mixed_precision=values.pop("mixed_precision", "none"), jit_compile=values.pop("jit_compile", "auto"),
        book=exp.book, backup_steps=values.pop("backup_steps", 0),
        **{k: values[k] for k in TUNABLE},
    )


def from_flags(flag_values=FLAGS) -> Config:
    """Resolve absl flags (explicitly given ones win over the preset) into a Config."""
    overrides: dict[str, Any] = {}
    for name in TUNABLE:
        if flag_values[name].present:
            overrides[name] = flag_values[name].value
    for name in ("model", "image_size", "backbone", "weights", "keep_imagenet_top", "trainable_layers", "data_dir", "download", "pipeline_root", "serving_model_dir", "components", "strategy",
                 "steps_per_epoch", "num_shards", "deterministic", "mixed_precision", "jit_compile",
                 "backup_steps"):
        overrides[name] = flag_values[name].value
    return build_config(flag_values.experiment, **overrides)
