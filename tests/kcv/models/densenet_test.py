"""kcv.models densenet: the book's channel sequence, pinned parameter count, round trips."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from kcv.models import get_model, list_models
from kcv.models.densenet import densenet


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_book_channels_and_shapes_on_96x96x1():
    model = densenet(num_classes=10, input_shape=(96, 96, 1))
    names = ["stem_pool", "dense1_concat4", "transition1_pool", "dense2_concat4",
             "transition2_pool", "dense3_concat4", "transition3_pool", "dense4_concat4"]
    shapes = [model.get_layer(n).output.shape[1:] for n in names]
    # 64 + 4*32 = 192 -> 96; 96 + 128 = 224 -> 112; 112 + 128 = 240 -> 120; 120 + 128 = 248.
    assert shapes == [
        (24, 24, 64), (24, 24, 192), (12, 12, 96), (12, 12, 224),
        (6, 6, 112), (6, 6, 240), (3, 3, 120), (3, 3, 248),
    ]
    assert "transition4_pool" not in [layer.name for layer in model.layers]
    assert model(_x((1, 96, 96, 1)), training=False).shape == (1, 10)  # one full-size forward


def test_pinned_parameter_count():
    # A dense-block conv on c input channels: BN 4c + 3*3*c*32 = 292c.
    #   stem 7*7*1*64 = 3,136 + BN 256                                   =   3,392
    #   dense1 c = 64, 96, 128, 160 (sum 448): 292*448                     = 130,816
    #   transition1 BN 4*192 + 192*96                                     =  19,200
    #   dense2 c = 96..192 (sum 576)                                       = 168,192
    #   transition2 BN 4*224 + 224*112                                    =  25,984
    #   dense3 c = 112..208 (sum 640)                                      = 186,880
    #   transition3 BN 4*240 + 240*120                                    =  29,760
    #   dense4 c = 120..216 (sum 672)                                      = 196,224
    #   head BN 4*248 = 992; logits 248*10 + 10 = 2,490
    #   total 763,930; BN moving statistics (2 per BN channel) 6,608 non-trainable
    model = densenet(num_classes=10, input_shape=(96, 96, 1))
    assert model.count_params() == 763_930
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 763_930 - 6_608


def test_training_step_every_weight_gets_a_finite_nonzero_gradient():
    model = densenet(num_classes=10, input_shape=(32, 32, 1))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(np.arange(4), model(_x((4, 32, 32, 1)), training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    # stem conv + BN 2; 16 dense convs x 3; 3 transitions x 3; head BN 2; logits 2
    assert len(grads) == 3 + 48 + 9 + 2 + 2
    for w, g in zip(model.trainable_weights, grads):
        assert np.all(np.isfinite(g.numpy())) and np.abs(g.numpy()).max() > 0, w.path


def test_config_and_keras_file_round_trip(tmp_path):
    model = densenet(num_classes=3, input_shape=(32, 32, 3))
    x = _x((2, 32, 32, 3))
    model(x, training=True)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x, training=False), model(x, training=False), atol=1e-5)
    path = str(tmp_path / "densenet.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-5)


def test_registry_any_input_and_weight_decay():
    assert "densenet" in list_models()
    model = get_model("densenet", num_classes=7, input_shape=(29, 40, 3))
    assert model.output.shape == (None, 7)
    assert model.get_layer("transition3_pool").output.shape[1:3] == (1, 1)  # 29 -> 8 -> 4, 2, 1
    assert model.get_layer("logits").activation is keras.activations.linear  # logits
    decayed = densenet(input_shape=(32, 32, 1), weight_decay=1e-4)
    assert len(decayed.losses) == 1 + 16 + 3 + 1  # stem, dense convs, transition convs, logits
    with pytest.raises(ValueError, match="input_shape"):
        densenet(input_shape=(96, 96))
    with pytest.raises(ValueError, match="too small"):
        densenet(input_shape=(28, 96, 1))  # 28 -> 7 -> 3, 1, 0
