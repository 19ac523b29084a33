"""kcv.models.resnet18: the book's shapes, pinned parameter counts, round trips, a training step."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import kcv.models
from kcv.models import get_model, list_models, resnet18
from kcv.models.registry import register

STAGE_OUTPUTS = ["stage1_block2_out", "stage2_block2_out", "stage3_block2_out", "stage4_block2_out"]


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_d2l_book_shapes_on_96x96x1():
    model = resnet18(num_classes=10, input_shape=(96, 96, 1), variant="d2l")
    # The book's layer_summary((1, 1, 96, 96)): b1 64x24x24, b2 64x24x24, b3 128x12x12,
    # b4 256x6x6, b5 512x3x3, then 10.
    shapes = [model.get_layer(n).output.shape[1:] for n in ["stem_pool"] + STAGE_OUTPUTS]
    assert shapes == [(24, 24, 64), (24, 24, 64), (12, 12, 128), (6, 6, 256), (3, 3, 512)]
    assert model.output.shape == (None, 10)
    assert model(_x((1, 96, 96, 1)), training=False).shape == (1, 10)


def test_cifar_variant_keeps_resolution_in_stem():
    model = resnet18(num_classes=10, input_shape=(32, 32, 3), variant="cifar")
    shapes = [model.get_layer(n).output.shape[1:] for n in ["stem_relu"] + STAGE_OUTPUTS]
    assert shapes == [(32, 32, 64), (32, 32, 64), (16, 16, 128), (8, 8, 256), (4, 4, 512)]
    names = [layer.name for layer in model.layers]
    assert "stem_pool" not in names and "stem_pad" not in names
    assert model.get_layer("stem_conv").kernel_size == (3, 3)
    assert model.get_layer("stem_conv").strides == (1, 1)


def test_pinned_parameter_counts():
    cifar = resnet18(num_classes=10, input_shape=(32, 32, 3), variant="cifar")
    # Hand count, convs before BN have no bias, each BN has 4 * C weights (2 * C trainable):
    #   stem   3*3*3*64 = 1,728 + BN 256                                         =     1,984
    #   stage1 2 blocks x (2 x 3*3*64*64 = 73,728 + 2 BN 512)                     =   148,480
    #   stage2 3*3*64*128 + 3*3*128*128 + 1,024 + 1x1 64*128+128 = 230,528
    #          + 2 x 147,456 + 1,024 = 295,936                                    =   526,464
    #   stage3 294,912 + 589,824 + 2,048 + 128*256+256 = 919,808
    #          + 2 x 589,824 + 2,048 = 1,181,696                                  = 2,101,504
    #   stage4 1,179,648 + 2,359,296 + 4,096 + 256*512+512 = 3,674,624
    #          + 2 x 2,359,296 + 4,096 = 4,722,688                                = 8,397,312
    #   logits 512*10 + 10                                                        =     5,130
    #   total 11,180,874; non-trainable = 2 x 3,904 BN channels = 7,808
    assert cifar.count_params() == 11_180_874
    trainable = sum(int(np.prod(w.shape)) for w in cifar.trainable_weights)
    assert trainable == 11_180_874 - 7_808 == 11_173_066
    # (The book's PyTorch d2l.resnet18(10, 3) also has a bias on each of the 3,904 conv
    # channels before a BN: 11,176,970 parameters.)
    d2l = resnet18(num_classes=10, input_shape=(96, 96, 1), variant="d2l")
    # Only the stem conv differs: 7*7*1*64 = 3,136 instead of 1,728.
    assert d2l.count_params() == 11_180_874 - 1_728 + 3_136 == 11_182_282


@pytest.mark.parametrize(
    "variant,shape,batch", [("cifar", (32, 32, 3), 2), ("d2l", (32, 32, 1), 4)]
)
def test_training_step_every_weight_gets_a_finite_nonzero_gradient(variant, shape, batch):
    model = resnet18(num_classes=10, input_shape=shape, variant=variant)
    x = _x((batch,) + shape)
    labels = np.arange(batch) % 10
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    # 20 conv kernels (stem, 16 3x3, 3 shortcut 1x1), 3 shortcut biases,
    # 17 BN x (gamma, beta) = 34, logits kernel + bias: 59
    assert len(grads) == len(model.trainable_weights) == 59
    for w, g in zip(model.trainable_weights, grads):
        assert g is not None, w.path
        assert np.all(np.isfinite(g.numpy())), w.path
        assert np.abs(g.numpy()).max() > 0, w.path


def test_config_and_keras_file_round_trip(tmp_path):
    model = resnet18(num_classes=3, input_shape=(16, 16, 2), variant="d2l")
    x = _x((2, 16, 16, 2))
    model(x, training=True)  # move the BN statistics off their initial values
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x, training=False), model(x, training=False), atol=1e-5)
    path = str(tmp_path / "resnet18.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-5)


def test_features_by_name_and_logits_output():
    model = resnet18(num_classes=5, input_shape=(16, 16, 3), variant="cifar")
    features = keras.Model(model.input, model.get_layer("stage3_block1_shortcut_conv").output)
    assert features(_x((1, 16, 16, 3))).shape == (1, 4, 4, 256)
    assert model.get_layer("logits").activation is keras.activations.linear  # logits, no softmax
    # Any input size/channels: 5x7 RGB-A.
    assert resnet18(num_classes=2, input_shape=(5, 7, 4)).output.shape == (None, 2)


def test_registry():
    assert "resnet18" in list_models()
    model = get_model("resnet18", num_classes=4, input_shape=(32, 32, 3), variant="cifar")
    assert model.name == "resnet18_cifar" and model.output.shape == (None, 4)
    assert kcv.models.resnet18 is resnet18
    with pytest.raises(ValueError, match="already registered"):
        register("resnet18")(lambda: None)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown stem variant 'imagenet'"):
        resnet18(variant="imagenet")
    with pytest.raises(ValueError, match="input_shape"):
        resnet18(input_shape=(32, 32))
    with pytest.raises(ValueError, match="num_classes"):
        resnet18(num_classes=0)


def test_weight_decay_adds_one_l2_term_per_kernel():
    model = resnet18(num_classes=10, input_shape=(8, 8, 1), variant="cifar", weight_decay=5e-4)
    # 1 stem + 16 block 3x3 + 3 shortcut 1x1 + 1 dense kernel = 21 penalties
    assert len(model.losses) == 21
    kernel = model.get_layer("logits").kernel.numpy()
    reg = model.get_layer("logits").kernel_regularizer
    np.testing.assert_allclose(float(reg(kernel)), 2.5e-4 * float(np.sum(kernel**2)), rtol=1e-5)
    assert resnet18(num_classes=10, input_shape=(8, 8, 1)).losses == []


def test_mixed_precision_computes_in_float16_and_returns_float32_logits():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = resnet18(num_classes=10, input_shape=(8, 8, 3), variant="cifar")
        assert model.get_layer("stage1_block1_conv1").compute_dtype == "float16"
        y = model(_x((2, 8, 8, 3)), training=True)
        assert y.dtype == "float32" and np.all(np.isfinite(y.numpy()))
    finally:
        keras.mixed_precision.set_global_policy(previous)
