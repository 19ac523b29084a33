"""The typed config: presets, precedence, strict round trips, one-line errors, generated flags."""
import json

import pytest
from absl import flags

from pipelines.config import COMPONENTS, Config, ConfigError, build_config, define_flags, flag_overrides, flag_settings
from pipelines.experiments import EXPERIMENTS


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_preset_builds_and_round_trips_through_json(name):
    cfg = build_config(name)
    assert Config.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.paths.pipeline_root == f"runs/{name}" and cfg.paths.serving_model_dir == f"saved_models/{name}"
    assert cfg.components == COMPONENTS


def test_precedence_flag_over_embedded_over_preset_over_default():
    cfg = build_config("tiny_ssd_bananas")  # embedded demo: 128 px, Adam 1e-3, 16 epochs
    assert cfg.model.image_size == (128, 128) and cfg.training.optimizer == "adam" and cfg.training.epochs == 16
    assert cfg.training.batch_size == 32 and cfg.training.momentum == 0.0  # preset, then declared default
    real = build_config("tiny_ssd_bananas", {"data": {"data_dir": "/data/bananas"}})  # the book's recipe
    assert real.model.image_size == (256, 256) and real.training.optimizer == "sgd" and real.training.lr == 0.2
    flagged = build_config("tiny_ssd_bananas", {"model": {"image_size": [64, 64]}, "training": {"epochs": 2}})
    assert flagged.model.image_size == (64, 64) and flagged.training.epochs == 2 and flagged.training.lr == 1e-3


def test_book_learning_rate_conversion_is_in_the_preset():
    t = build_config("resnet18_cifar10").training
    # the book's lr 2e-4 and weight decay 5e-4 on a loss summed over batch 32, as a mean loss
    assert t.lr == pytest.approx(2e-4 * 32) and t.weight_decay == pytest.approx(5e-4 / 32)
    assert (t.batch_size, t.lr_period, t.lr_decay, t.epochs, t.momentum) == (32, 4, 0.9, 20, 0.9)


def test_another_model_drops_the_presets_builder_arguments():
    cfg = build_config("resnet18_cifar10", {"model": {"name": "simple_cnn"}})
    assert cfg.model.kwargs == {} and cfg.model.image_size == (32, 32)
    with pytest.raises(ConfigError, match="--weights applies to fine-tuning experiments"):
        build_config("resnet18_cifar10", {"model": {"weights": "none"}})


def test_fine_tuning_settings_reach_the_builder():
    model = build_config("dog_breeds", {"model": {"weights": "none", "trainable_layers": 3}}).model
    assert model.builder_kwargs(allow_download=False) == {
        "head_units": 256, "backbone": "resnet50", "weights": None, "keep_imagenet_top": True,
        "trainable_layers": 3, "allow_download": False}


@pytest.mark.parametrize("tree, message", [
    ({"training": {"lr": "fast"}}, r"training.lr \(--lr\) must be float, got str 'fast'"),
    ({"training": {"epochs": 0}}, r"training.epochs \(--epochs\) must be >= 1, got 0"),
    ({"training": {"epochs": True}}, r"training.epochs \(--epochs\) must be int, got bool"),
    ({"data": {"valid_ratio": 1.0}}, r"data.valid_ratio \(--valid_ratio\) must be < 1.0, got 1.0"),
    ({"training": {"lr_schedule": "warp"}}, r"'warp': unknown schedule; use one of constant, step"),
    ({"runtime": {"strategy": "quantum"}}, r"runtime.strategy \(--strategy\) must be one of default, one_device"),
    ({"training": {"lrr": 0.1}}, r"unknown setting training.lrr \(known in training: adam_beta_1, backup_steps"),
    ({"trainer": {}}, r"unknown setting trainer"),
    ({"model": {"image_size": [32]}}, r"must be H,W with positive integers, got 32"),
    ({"components": ["Trainer", "Polisher"]}, r"unknown components \['Polisher'\]"),
])
def test_bad_settings_are_one_line_errors_naming_the_setting(tree, message):
    with pytest.raises(ConfigError, match=message) as err:
        build_config("resnet18_cifar10", tree)
    assert "\n" not in str(err.value)


def test_read_of_an_edited_config_json_is_strict(tmp_path):
    cfg = build_config("gan_gaussian")
    path = cfg.write(str(tmp_path / "config.json"))
    assert Config.read(path) == cfg
    data = json.load(open(path))
    data["training"]["batch_size"] = "8"
    json.dump(data, open(path, "w"))
    with pytest.raises(ConfigError, match=r"training.batch_size \(--batch_size\) must be int, got str '8'"):
        Config.read(path)


def test_replace_and_frozen():
    cfg = build_config("resnet18_cifar10")
    quick = cfg.replace(**{"training.epochs": 1, "components": ["Trainer"]})
    assert quick.training.epochs == 1 and quick.components == ("Trainer",) and cfg.training.epochs == 20
    with pytest.raises(Exception):
        cfg.training.lr = 1.0  # frozen
    with pytest.raises(ConfigError):
        cfg.replace(**{"training.epochs": -1})


def test_fingerprint_leaves_out_what_does_not_change_training():
    a = build_config("resnet18_cifar10")
    b = a.replace(**{"paths.pipeline_root": "/elsewhere", "runtime.strategy": "mirrored",
                     "evaluation.min_accuracy": 0.9, "training.backup_steps": 5, "components": ["Trainer"]})
    assert a.fingerprinted() == b.fingerprinted()
    assert a.fingerprinted() != a.replace(**{"training.lr": 0.5}).fingerprinted()
    assert a.fingerprinted() != a.replace(**{"runtime.seed": 1}).fingerprinted()


def test_flags_are_generated_from_the_declarations():
    names = [name for name, *_ in flag_settings()]
    assert len(names) == len(set(names))  # one flag per setting
    assert {"epochs", "lr", "data_dir", "model", "image_size", "strategy", "components", "weights"} <= set(names)
    assert not {"embedded", "kwargs", "task", "adam_beta_1"} & set(names)  # preset-only settings
    assert {"augment", "nms"} <= set(names)  # checked against the task / the export's NMS
    values = flags.FlagValues()
    define_flags(values)
    values(["prog", "--experiment=tiny_ssd_bananas", "--lr=0.5", "--image_size=64,48", "--download"])
    assert flag_overrides(values) == {"experiment": "tiny_ssd_bananas", "training": {"lr": 0.5},
                                      "model": {"image_size": [64, 48]}, "data": {"download": True}}
    assert "[training.lr; default 0.1, presets may change it]" in values["lr"].help
    with pytest.raises(flags.IllegalFlagValueError):
        values(["prog", "--epochs=0"])  # bounds come from the same declaration


def test_a_named_source_replaces_the_embedded_data():
    cfg = build_config("resnet18_cifar10", {"data": {"source": "tfds:cifar10"}})
    assert cfg.data.source == "tfds:cifar10" and cfg.data.embedded == "" and cfg.data.data_dir is None
    assert cfg.data.embedded_examples == 1000  # the preset's embedded-only size is not applied
    assert build_config("resnet18_cifar10").data.embedded == "shapes_kaggle_cifar10"


def test_two_phase_fine_tuning_settings():
    cfg = build_config("dog_breeds")
    assert (cfg.training.fine_tune_epochs, cfg.training.fine_tune_lr_factor, cfg.model.trainable_layers) == (4, 0.1, 7)
    assert cfg.model.submission == "probabilities" and build_config("resnet18_cifar10").model.submission == "labels"
    with pytest.raises(ConfigError, match="--fine_tune_epochs applies to fine-tuning experiments"):
        build_config("resnet18_cifar10", {"training": {"fine_tune_epochs": 2}})
    with pytest.raises(ConfigError, match=r"--fine_tune_epochs\) needs --trainable_layers >= 1"):
        build_config("dog_breeds", {"model": {"trainable_layers": 0}})
    assert build_config("dog_breeds", {"model": {"trainable_layers": 0},
                                       "training": {"fine_tune_epochs": 0}}).training.fine_tune_epochs == 0
    other = build_config("dog_breeds", {"model": {"name": "simple_cnn"}})  # another model: no phases
    assert other.training.fine_tune_epochs == 0 and other.model.backbone is None
    assert "final_fit" not in json.dumps(cfg.fingerprinted())  # refitting does not change the validated training


def test_fast_recipe_settings_are_checked_against_optimizer_and_task():
    from pipelines import config
    from pipelines.optimizers import make_optimizer

    cfg = config.build_config("cifar10_fast", {"data": {"data_dir": "/data"}})
    assert cfg.training.nesterov and cfg.training.label_smoothing == 0.2 and cfg.model.test_time_flip
    assert cfg.runtime.mixed_precision == "auto"  # bfloat16 only where the CPU computes it
    optimizer = make_optimizer(cfg.training, steps_per_epoch=78)
    assert optimizer.nesterov is True and optimizer.offset_lr_scale == 64.0 and optimizer.l2 == 1.333e-3
    # airbench trains only the BN offsets, from a frozen whitening stem and identity-initialised convs
    assert cfg.model.kwargs == {"bn_scale": False, "whiten": True, "identity_init": True, "activation": "gelu",
                                "bn_momentum": 0.6}
    assert cfg.training.lookahead_every == 5 and cfg.training.epochs == 10
    assert cfg.model.test_time_translate and cfg.data.valid_ratio == 0.025  # 1,000 of CIFAR's 40,000 held out
    assert config.build_config("cifar10_fast").data.valid_ratio == 0.1  # the embedded demo keeps 10 %
    with pytest.raises(config.ConfigError, match=r"^training.offset_lr_scale \(--offset_lr_scale\) needs "
                                                 r"--optimizer=sgd$"):
        config.build_config("resnet18_cifar10", {"training": {"optimizer": "adam", "offset_lr_scale": 64.0}})
    assert config.build_config("cifar10_fast").training.batch_size == 64  # the embedded demo's
    with pytest.raises(config.ConfigError, match=r"^training.lookahead_every \(--lookahead_every\) needs "
                                                 r"--optimizer=sgd$"):
        config.build_config("resnet18_cifar10", {"training": {"optimizer": "adam", "lookahead_every": 5}})
    slow = make_optimizer(config.build_config("resnet18_cifar10", {"training": {"lookahead_every": 5,
                                                                               "epochs": 3}}).training, 78)
    assert (slow.lookahead_every, slow.lookahead_decay, slow.total_steps) == (5, 0.95, 3 * 78)
    with pytest.raises(config.ConfigError, match=r"^training.nesterov \(--nesterov\) needs --optimizer=sgd and "
                                                 r"--momentum > 0$"):
        config.build_config("cifar10_fast", {"training": {"optimizer": "adam"}})
    with pytest.raises(config.ConfigError, match=r"--nesterov\) needs"):
        config.build_config("resnet18_cifar10", {"training": {"nesterov": True, "momentum": 0.0}})
    with pytest.raises(config.ConfigError, match=r"^--label_smoothing applies to classification experiments, "
                                                 r"not tiny_ssd_bananas \(detection\)$"):
        config.build_config("tiny_ssd_bananas", {"training": {"label_smoothing": 0.1}})
    with pytest.raises(config.ConfigError, match=r"^--test_time_flip applies to classification experiments"):
        config.build_config("dcgan_pokemon", {"model": {"test_time_flip": True}})
    with pytest.raises(config.ConfigError, match=r"^--test_time_translate applies to classification experiments"):
        config.build_config("dcgan_pokemon", {"model": {"test_time_translate": True}})
