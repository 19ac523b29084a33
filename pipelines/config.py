"""kcv-train's configuration: one typed, nested, frozen tree, each setting declared once.

A setting is a dataclass field made with `setting(...)`: its type (the annotation), default,
help, validation (choices, bounds, a check) and whether it is a command-line flag. The absl
flags are generated from these declarations (`define_flags`), presets are partial trees of the
same shape (pipelines/experiments.py), and `config.json` round-trips to an equal object.

Precedence: a flag given on the command line > the preset's embedded-data tree (only without
--data_dir) > the preset > the declaration's default.
"""
from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from typing import Any, Callable

from pipelines.artifacts import write_atomically

COMPONENTS = ("ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher")
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")
LR_SCHEDULES = ("constant", "step", "factor", "multistep", "cosine", "exponential", "poly", "triangular")
BACKBONES = ("resnet50", "resnet101", "resnet152", "densenet121", "mobilenet_v3_small", "mobilenet_v3_large",
             "efficientnet_b0")


class ConfigError(ValueError):
    """A setting is unknown, of the wrong type or out of range; the message is one line."""


def setting(default: Any = None, help: str = "", *, flag: str | bool = True, choices: tuple | None = None,
            lower: float | None = None, upper: float | None = None, open_bounds: bool = False,
            check: Callable[[Any], str | None] | None = None, fingerprint: bool = True) -> Any:
    """Declare one setting.

    flag: True = a flag named like the field, a string = that flag name, False = preset only.
    lower/upper: inclusive bounds (exclusive with open_bounds). check: returns an error or None.
    fingerprint: False for settings that do not change what is trained (paths, strategy,
      thresholds): a training backup is resumed only when every fingerprinted setting matches.
    """
    meta = dict(help=help, flag=flag, choices=choices, lower=lower, upper=upper, open_bounds=open_bounds,
                check=check, fingerprint=fingerprint)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _image_size(value) -> str | None:
    if value is not None and (len(value) != 2 or min(value) <= 0):
        return f"must be H,W with positive integers, got {','.join(map(str, value))}"
    return None


def _schedule(value: str) -> str | None:
    name = value.partition(":")[0].strip()
    return None if name in LR_SCHEDULES else f"{value!r}: unknown schedule; use one of {', '.join(LR_SCHEDULES)}"


def _components(value: tuple) -> str | None:
    unknown = [c for c in value if c not in COMPONENTS]
    if unknown:
        return f"unknown components {unknown}; use {', '.join(COMPONENTS)}"
    return None if value else f"must name at least one of {', '.join(COMPONENTS)}"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = setting("", "Data source, overriding the preset's: kaggle_cifar10, kaggle_dog, class_folders, "
                          "images, points_csv, bananas or tfds:<name> (a prepared tensorflow-datasets folder, "
                          "--data_dir or ~/tensorflow_datasets); checked against the task before any work.")
    embedded: str = setting("", "Embedded generator used without --data_dir (kcv.data.synthetic).", flag=False)
    data_dir: str | None = setting(None, "Data folder for the experiment's source (Kaggle layout, class folders, or "
                                   "tensorflow-datasets data_dir). Without it the embedded generated data is used.")
    download: bool = setting(False, "Allow tensorflow-datasets (and Keras weights) to download missing data.")
    embedded_examples: int = setting(1000, "Size of the embedded generated data set.", lower=20)
    valid_ratio: float = setting(0.1, "Fraction of the smallest class held out per class for evaluation.",
                                 lower=0.0, upper=1.0, open_bounds=True)
    num_shards: int = setting(2, "TFRecord shards per split.", lower=1, fingerprint=False)
    # kcv.data.images.DEFAULT_MAX_IMAGE_PIXELS (kcv is not imported before the flags parse)
    max_image_pixels: int = setting(40_000_000, "Largest image (width x height, read from its header before "
                                    "decoding) that ExampleGen reads and the exported bytes signatures accept.",
                                    lower=1, fingerprint=False)
    augment: str = setting("none", "Training augmentation, in tf.data (never in the exported model): classifiers "
                           "flip, cifar (the book's crop + flip), translate (flip + 2-pixel reflected shifts, the fast "
                           "recipes'), imagenet; detectors boxes (keras-cv flip, jittered resize and colour "
                           "jitter that move the boxes with the image); none. Checked against the task.",
                           choices=("none", "flip", "cifar", "translate", "imagenet", "boxes"))
    resize_mode: str = setting("stretch", "How images reach the model's size.", flag=False,
                               choices=("stretch", "center_crop"))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str = setting("", "Registered model to train instead of the preset's (its preset arguments are then "
                        "dropped), e.g. simple_cnn for a quick check.", flag="model")
    kwargs: dict = setting({}, "Builder keyword arguments.", flag=False)
    nms: str = setting("kcv", "Detectors: the non-maximum suppression inside the exported graph: kcv = the book's "
                       "class-agnostic greedy NMS (exact to the book), keras_cv = keras_cv.layers.NonMaxSuppression "
                       "(class-agnostic too; differs only at threshold edges). Only the export depends on it.", choices=("kcv", "keras_cv"), fingerprint=False)
    image_size: tuple[int, int] | None = setting(None, "H,W the model sees (e.g. 64,64 for a quick run).",
                                                 check=_image_size)
    channels: int = setting(3, "Image channels the model takes.", flag=False, lower=0)
    normalize: bool = setting(True, "Normalise inputs with the Transform statistics (False: the backbone carries "
                              "its own preprocessing).", flag=False)
    backbone: str | None = setting(None, "Fine-tuning experiments: the keras.applications backbone.", choices=BACKBONES)
    weights: str | None = setting(None, "Fine-tuning experiments: imagenet (Keras cache; --download to fetch), a "
                                  "local .h5 path, or none (random, for offline runs).")
    trainable_layers: int | None = setting(None, "Fine-tuning experiments: unfreeze the backbone's last N weighted "
                                           "layers (BatchNorm stays in inference mode); 0 = frozen.", lower=0)
    keep_imagenet_top: bool | None = setting(None, "Fine-tuning experiments: keep the backbone's 1000-way output "
                                             "as the book does (needs 224x224) or use pooled features.")
    submission: str = setting("labels", "Classifiers: the Kaggle submission the exported model makes in kcv-predict "
                              "(recorded in the SavedModel as submission_format): labels = `id,label` (CIFAR-10), "
                              "probabilities = `id,<class>...` in vocabulary order (dog breeds).",
                              choices=("labels", "probabilities"), fingerprint=False)
    test_time_flip: bool = setting(False, "Classifiers: the exported model (so serving and the Evaluator) averages "
                                   "the logits of each image and its left-right mirror; twice the inference "
                                   "cost. Training is unchanged.", fingerprint=False)
    test_time_translate: bool = setting(False, "Classifiers: the exported model also averages the image shifted by "
                                        "one pixel up-left and down-right (reflected border; their mirrors too "
                                        "with --test_time_flip), half weight against the unshifted views "
                                        "(airbench's test-time augmentation); 3x the inference cost of "
                                        "--test_time_flip alone.", fingerprint=False)

    def builder_kwargs(self, allow_download: bool) -> dict:
        """Keyword arguments for the registered builder: the preset's, plus the fine-tuning settings."""
        kwargs = dict(self.kwargs)
        if self.backbone is not None:
            for key in ("backbone", "weights", "keep_imagenet_top", "trainable_layers"):
                value = getattr(self, key)
                if value is not None:
                    kwargs[key] = None if (key == "weights" and value.lower() == "none") else value
            kwargs["allow_download"] = allow_download
        return kwargs


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    epochs: int = setting(10, "Training epochs.", lower=1)
    batch_size: int = setting(128, "Global batch size; per replica it is this / replicas.", lower=1)
    optimizer: str = setting("sgd", "Optimizer.", choices=("sgd", "adam"))
    lr: float = setting(0.1, "Learning rate for the loss averaged over the batch.", lower=0.0)
    d_lr: float = setting(0.0, "GANs: the discriminator's learning rate (0 = same as --lr).", lower=0.0)
    momentum: float = setting(0.0, "SGD momentum.", lower=0.0, upper=1.0)
    nesterov: bool = setting(False, "SGD: Nesterov momentum (the look-ahead gradient), as torch's and Keras' "
                             "nesterov=True.")
    label_smoothing: float = setting(0.0, "Classifiers: train against (1 - e) one-hot + e / classes (Szegedy et "
                                     "al. 2016); 0 = the plain cross-entropy.", lower=0.0, upper=1.0)
    weight_decay: float = setting(0.0, "Weight decay added to the gradient, torch/mxnet style.", lower=0.0)
    offset_lr_scale: float = setting(1.0, "SGD: multiply the learning rate of normalization offsets (every variable "
                                     "named beta) by this, not their weight decay (airbench's bias_scaler, 64).", lower=0.0,
                                     open_bounds=True)
    lookahead_every: int = setting(0, "SGD: every N updates average the weights into a slow copy and continue from "
                                   "it (Lookahead with airbench's rate, which rises as (step / total)^3 to "
                                   "--lookahead_decay^N; the final weights are the slow ones); 0 = off.", lower=0)
    lookahead_decay: float = setting(0.95, "SGD with --lookahead_every: the per-update decay of the slow weights "
                                     "at the end of training.", lower=0.0, upper=1.0, open_bounds=True)
    adam_beta_1: float = setting(0.9, "GANs: Adam's beta_1 (the book's DCGAN uses 0.5).", flag=False,
                                 lower=0.0, upper=1.0)
    lr_schedule: str = setting("constant", "Learning-rate schedule NAME[:key=value,...]. Counted in epochs (the "
                               f"book's, the rate changes only at epoch ends): {', '.join(LR_SCHEDULES)}, e.g. "
                               "cosine:max_update=20,final_lr=0.01,warmup_steps=5 (all in epochs); `step` takes "
                               "--lr_period/--lr_decay; `triangular` (times in epochs, fractions allowed) moves on "
                               "every update, a linear ramp to --lr over warmup_steps then down to final_lr at "
                               "max_update, e.g. triangular:max_update=8,warmup_steps=2. Counted in optimizer "
                               "steps (updates, as Keras' own schedules): the same names with the suffix _steps, every time "
                               "parameter in updates, "
                               "each also taking warmup_steps=N[,warmup_begin_lr=R] (a linear ramp over the first N "
                               "updates), e.g. cosine_steps:max_update=5000,final_lr=0.01,warmup_steps=500 or "
                               "constant_steps:warmup_steps=500.",
                               check=lambda v: None if v.partition(":")[0].strip().removesuffix("_steps")
                               in LR_SCHEDULES else f"{v!r}: unknown schedule; use one of {', '.join(LR_SCHEDULES)} "
                               "(per epoch), or one of them + _steps (per optimizer step)")
    lr_period: int = setting(1, "Epochs between step decays.", lower=1)
    lr_decay: float = setting(1.0, "Factor applied every lr_period epochs.", lower=0.0)
    steps_per_epoch: int = setting(0, "Cap on training steps per epoch (0 = the whole split).", lower=0)
    backup_steps: int = setting(0, "Also save the resumable training backup every N steps, not only at epoch "
                                "ends (0 = epoch ends only).", lower=0, fingerprint=False)
    fine_tune_epochs: int = setting(0, "Fine-tuning experiments: a second phase of N epochs after --epochs of the head "
                                    "alone on a frozen backbone, training the backbone's last --trainable_layers "
                                    "weighted layers too (BatchNorm stays in inference mode) at --lr x "
                                    "--fine_tune_lr_factor; 0 = one phase, --trainable_layers trainable throughout.",
                                    lower=0)
    fine_tune_lr_factor: float = setting(0.1, "Fine-tuning experiments: the second phase's learning rate as a "
                                         "fraction of --lr.", lower=0.0, upper=1.0)
    final_fit: bool = setting(False, "After the Evaluator blesses the recipe on the held-out split, retrain it on "
                              "every labelled example (train + eval; same settings, same seed) and push that model "
                              "instead, as the book's Kaggle sections do before predicting.", fingerprint=False)


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    min_accuracy: float = setting(0.2, "Evaluator blesses only at or above this value of the task's primary metric "
                                  "(accuracy, mAP@0.5, or the fraction of generator checks passed).",
                                  fingerprint=False)
    max_regression: float = setting(0.02, "Evaluator refuses a model worse than the last pushed one by more.",
                                    fingerprint=False)


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    strategy: str = setting("default", "tf.distribute strategy.", choices=STRATEGIES, fingerprint=False)
    seed: int = setting(0, "Seed for splits, shuffling, augmentation and initialisation.")
    deterministic: bool = setting(False, "Enable TensorFlow op determinism (slower).")
    mixed_precision: str = setting("none", "Mixed-precision compute dtype. bfloat16 measured ~1.5x faster training "
                                   "(ResNet-18) on CPUs with AMX/AVX512-BF16; none (float32) reproduces the book's "
                                   "numbers; auto: float16 on a GPU, bfloat16 on a CPU with bfloat16 hardware, "
                                   "else none (the run record stores the policy used).",
                                   choices=("none", "float16", "bfloat16", "auto"))
    jit_compile: str = setting("auto", "XLA compilation of the train step.", choices=("auto", "true", "false"),
                               fingerprint=False)


@dataclasses.dataclass(frozen=True)
class PathsConfig:
    pipeline_root: str = setting("", "Artifact root (default runs/<experiment>).", fingerprint=False)
    serving_model_dir: str = setting("", "Where the Pusher puts versions (default saved_models/<experiment>).",
                                     fingerprint=False)
    models_config: str = setting("", "TF Serving --model_config_file the Pusher keeps (default: models.config in "
                                 "the folder holding --serving_model_dir, e.g. saved_models/models.config).",
                                 fingerprint=False)
    serving_base_path: str = setting("/models", "Where TF Serving sees that folder (base_path in models.config; "
                                     "/models matches `docker run -v \"$PWD/saved_models:/models\"`).",
                                     fingerprint=False)


@dataclasses.dataclass(frozen=True)
class Config:
    experiment: str = setting("", "Preset to run (see --list_experiments).")
    task: str = setting("", "Task class (pipelines/tasks).", flag=False)
    book: str = setting("", "The book's reported result.", flag=False, fingerprint=False)
    components: tuple[str, ...] = setting(COMPONENTS, "Components to run, in pipeline order; the others' artifacts "
                                          "come from the run named by --run_id, e.g. --components=Evaluator,Pusher.",
                                          check=_components, fingerprint=False)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = dataclasses.field(default_factory=EvaluationConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    paths: PathsConfig = dataclasses.field(default_factory=PathsConfig)

    # ---- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples -> lists, as in config.json

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, tree: dict) -> "Config":
        """Strict: an unknown key or a wrong type is a ConfigError naming the setting."""
        return _build(cls, tree, "")

    def write(self, path: str) -> str:
        """Write config.json atomically (a unique temporary name: concurrent runs may share a root)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_atomically(path, self.to_json() + "\n")
        return path

    @classmethod
    def read(cls, path: str) -> "Config":
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def replace(self, **changes: Any) -> "Config":
        """A copy with dotted settings changed: cfg.replace(**{"training.epochs": 1})."""
        return Config.from_dict(merge(self.to_dict(), unflatten(changes)))

    def fingerprinted(self) -> dict:
        """The settings that determine what is trained (see `setting(fingerprint=...)`)."""
        return _fingerprinted(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "training": TrainingConfig,
            "evaluation": EvaluationConfig, "runtime": RuntimeConfig, "paths": PathsConfig}


# ---- building and checking ---------------------------------------------------------------------
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """`value` as type `hint` (JSON lists -> tuples, ints -> floats); ConfigError otherwise."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {type(value).__name__} {value!r}")
        item = args[0]
        return tuple(_coerce(v, item, where) for v in value)
    if hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{where} must be {hint.__name__}, got {type(value).__name__} {value!r}")
    return value


def _check(field: dataclasses.Field, value: Any, where: str) -> None:
    meta = field.metadata
    if value is None:
        return
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{where} must be one of {', '.join(meta['choices'])}, got {value!r}")
    lower, upper, open_ = meta.get("lower"), meta.get("upper"), meta.get("open_bounds")
    if lower is not None and (value <= lower if open_ else value < lower):
        raise ConfigError(f"{where} must be {'>' if open_ else '>='} {lower}, got {value}")
    if upper is not None and (value >= upper if open_ else value > upper):
        raise ConfigError(f"{where} must be {'<' if open_ else '<='} {upper}, got {value}")
    if meta.get("check"):
        problem = meta["check"](value)
        if problem:
            raise ConfigError(f"{where} {problem}")


def describe(section: str, field: dataclasses.Field) -> str:
    """How a setting is named in errors: `training.lr (--lr)`."""
    name = f"{section}.{field.name}" if section else field.name
    flag = flag_name(field)
    return f"{name} (--{flag})" if flag else name


def _build(cls, tree: dict, section: str):
    if not isinstance(tree, dict):
        raise ConfigError(f"{section or 'config'} must be a mapping, got {type(tree).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(tree) - set(fields))
    if unknown:
        prefix = f"{section}." if section else ""
        raise ConfigError(f"unknown setting {prefix}{unknown[0]} (known in {section or 'config'}: "
                          f"{', '.join(sorted(fields))})")
    hints = _hints(cls)
    values = {}
    for name, value in tree.items():
        field = fields[name]
        if name in SECTIONS and not section:
            values[name] = _build(SECTIONS[name], value, name)
            continue
        where = describe(section, field)
        value = _coerce(value, hints[name], where)
        _check(field, value, where)
        values[name] = value
    return cls(**values)


def _fingerprinted(obj) -> dict:
    out = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if dataclasses.is_dataclass(value):
            out[field.name] = _fingerprinted(value)
        elif field.metadata.get("fingerprint", True):
            out[field.name] = list(value) if isinstance(value, tuple) else value
    return out


def merge(base: dict, override: dict) -> dict:
    """Deep merge of partial config trees; `override` wins leaf by leaf."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key in SECTIONS:
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def unflatten(flat: dict) -> dict:
    """{"training.epochs": 1} -> {"training": {"epochs": 1}}."""
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


# ---- flags -------------------------------------------------------------------------------------
def flag_name(field: dataclasses.Field) -> str | None:
    flag = field.metadata.get("flag", False)
    return None if flag is False else (field.name if flag is True else flag)


def flag_settings() -> list[tuple[str, str, dataclasses.Field, Any]]:
    """(flag name, dotted setting, field, type hint) for every setting that is a flag."""
    out = []
    for section, cls in [("", Config), *SECTIONS.items()]:
        hints = _hints(cls)
        for field in dataclasses.fields(cls):
            name = flag_name(field)
            if name and field.name not in SECTIONS:
                out.append((name, f"{section}.{field.name}" if section else field.name, field, hints[field.name]))
    return out


def define_flags(flag_values) -> None:
    """Define one absl flag per flag setting, default None (= not given: the preset decides)."""
    from absl import flags

    for name, dotted, field, hint in flag_settings():
        meta = field.metadata
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_ = f"{meta['help']} [{dotted}; default {shown}, presets may change it]"
        inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        base = inner[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
        bounds = {k: v for k, v in (("lower_bound", meta["lower"]), ("upper_bound", meta["upper"]))
                  if v is not None and not meta["open_bounds"]}
        if meta["choices"]:
            flags.DEFINE_enum(name, None, list(meta["choices"]), help_, flag_values=flag_values)
        elif typing.get_origin(base) is tuple:
            flags.DEFINE_list(name, None, help_, flag_values=flag_values)
        elif base is bool:
            flags.DEFINE_bool(name, None, help_, flag_values=flag_values)
        elif base is int:
            flags.DEFINE_integer(name, None, help_, flag_values=flag_values, **bounds)
        elif base is float:
            flags.DEFINE_float(name, None, help_, flag_values=flag_values, **bounds)
        else:
            flags.DEFINE_string(name, None, help_, flag_values=flag_values)


def flag_overrides(flag_values) -> dict:
    """The settings given on the command line, as a partial tree (typed as the declarations)."""
    flat = {}
    for name, dotted, _, hint in flag_settings():
        flag = flag_values[name]
        if not flag.present:
            continue
        value = flag.value
        if dotted == "model.image_size":
            try:
                value = [int(v) for v in value]
            except ValueError:
                raise ConfigError(f"--image_size must be H,W with positive integers, got {','.join(value)}") from None
        flat[dotted] = value
    return unflatten(flat)


def build_config(experiment: str, overrides: dict | None = None) -> Config:
    """The config of preset `experiment` with a partial tree of overrides (e.g. from flags)."""
    from pipelines.experiments import get_experiment

    exp = get_experiment(experiment)
    overrides = overrides or {}
    tree = merge({"experiment": exp.name, "task": exp.task, "book": exp.book}, exp.preset)
    data = overrides.get("data", {})
    if not data.get("data_dir") and not data.get("source"):
        tree = merge(tree, exp.embedded)
    elif data.get("source") and not data.get("data_dir"):
        tree["data"] = {**tree["data"], "embedded": ""}  # the user named real data: no generated stand-in
    model_override = overrides.get("model", {}).get("name")
    if model_override and model_override != tree["model"].get("name"):
        # Another registered model: the preset's builder arguments (and a pretrained backbone's own
        # preprocessing) belong to its model; the image size and channels stay the data's.
        tree["model"] = {k: v for k, v in tree["model"].items() if k not in (
            "kwargs", "normalize", "backbone", "weights", "keep_imagenet_top", "trainable_layers")}
        tree["training"] = {k: v for k, v in tree.get("training", {}).items()
                            if k not in ("fine_tune_epochs", "fine_tune_lr_factor")}
    fine_tuning = tree["model"].get("backbone") is not None
    for key in ("backbone", "weights", "keep_imagenet_top", "trainable_layers"):
        if overrides.get("model", {}).get(key) is not None and not fine_tuning:
            raise ConfigError(f"--{key} applies to fine-tuning experiments (dog_breeds), not {exp.name}")
    for key in ("fine_tune_epochs", "fine_tune_lr_factor"):
        if overrides.get("training", {}).get(key) is not None and not fine_tuning:
            raise ConfigError(f"--{key} applies to fine-tuning experiments (dog_breeds), not {exp.name}")
    tree = merge(tree, overrides)
    if tree.get("training", {}).get("fine_tune_epochs") and not tree["model"].get("trainable_layers"):
        raise ConfigError("training.fine_tune_epochs (--fine_tune_epochs) needs --trainable_layers >= 1: the "
                          "second phase trains the backbone's last N weighted layers (--fine_tune_epochs=0 for "
                          "one phase)")
    training = tree.get("training", {})
    if training.get("nesterov") and (training.get("optimizer", "sgd") != "sgd" or not training.get("momentum")):
        raise ConfigError("training.nesterov (--nesterov) needs --optimizer=sgd and --momentum > 0")
    if training.get("offset_lr_scale", 1.0) != 1.0 and training.get("optimizer", "sgd") != "sgd":
        raise ConfigError("training.offset_lr_scale (--offset_lr_scale) needs --optimizer=sgd")
    if training.get("lookahead_every") and training.get("optimizer", "sgd") != "sgd":
        raise ConfigError("training.lookahead_every (--lookahead_every) needs --optimizer=sgd")
    for section, key in (("training", "label_smoothing"), ("model", "test_time_flip"),
                         ("model", "test_time_translate")):
        if tree.get(section, {}).get(key) and exp.task != "classification":
            raise ConfigError(f"--{key} applies to classification experiments, not {exp.name} ({exp.task})")
    tree["paths"] = {"pipeline_root": os.path.join("runs", exp.name),
                     "serving_model_dir": os.path.join("saved_models", exp.name),
                     **{k: v for k, v in tree.get("paths", {}).items() if v}}
    if "components" in tree:  # pipeline order, whatever order they were given in
        given = tuple(tree["components"])
        problem = _components(given)
        if problem:
            raise ConfigError(f"components (--components) {problem}")
        tree["components"] = [c for c in COMPONENTS if c in given]
    return Config.from_dict(tree)


def from_flags(flag_values) -> Config:
    """Resolve absl flags (explicitly given ones win over the preset) into a Config."""
    return build_config(flag_values.experiment, flag_overrides(flag_values))
