"""SampleGrid and PointScatter write one PNG per epoch from fixed noise."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import kcv.models.dcgan as dc
import kcv.models.gan as gan_lib
from kcv.callbacks import PointScatter, SampleGrid
from kcv.data.synthetic import toy_gaussian


def _frozen(gan):
    # lr 0: the weights, and so the images from the fixed noise, stay the same between epochs
    # (the generators here have no BatchNorm, whose moving statistics would still move).
    gan.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.0))
    return gan


def _conv_gan():
    z = keras.Input((4,))
    x = keras.layers.Reshape((2, 2, 1))(z)
    x = keras.layers.Conv2DTranspose(3, 4, 4, "same", activation="tanh")(x)  # (8, 8, 3)
    d_in = keras.Input((8, 8, 3))
    return gan_lib.GAN(keras.Model(z, x), keras.Model(d_in, keras.layers.Dense(1)(keras.layers.Flatten()(d_in))),
                       latent_dim=4, seed=0)


def test_sample_grid_per_epoch_fixed_noise(tmp_path):
    gan = _frozen(_conv_gan())
    cb = SampleGrid(str(tmp_path / "grids"), count=6, ncols=3, seed=1)
    data = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 3), np.float32)).batch(4)
    gan.fit(data, epochs=2, verbose=0, callbacks=[cb])
    assert [p.split("/")[-1] for p in cb.paths] == ["epoch_001.png", "epoch_002.png"]
    first, second = (np.asarray(Image.open(p)) for p in cb.paths)
    # 2 rows x 3 cols of 8x8 cells with 2-pixel padding: (2*10+2, 3*10+2)
    assert first.shape == (22, 32, 3)
    np.testing.assert_array_equal(first, second)  # same noise, same weights -> same picture
    noise = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    expected = np.clip(np.round((gan(noise).numpy() + 1) * 127.5), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(first[2:10, 2:10], expected[0])
    np.testing.assert_array_equal(first[12:20, 22:30], expected[5])


def test_sample_grid_every_and_dcgan(tmp_path):
    gan = dc.build_dcgan(latent_dim=8, image_size=16, base_filters=4, seed=0)
    gan.compile(**dc.dcgan_optimizers())
    cb = SampleGrid(str(tmp_path), count=4, ncols=2, every=2)
    data = tf.data.Dataset.from_tensor_slices(np.zeros((2, 16, 16, 3), np.float32)).batch(2)
    gan.fit(data, epochs=2, verbose=0, callbacks=[cb])
    assert [p.split("/")[-1] for p in cb.paths] == ["epoch_002.png"]
    assert np.asarray(Image.open(cb.paths[0])).shape == (2 * 18 + 2, 2 * 18 + 2, 3)


def test_point_scatter(tmp_path):
    gan = _frozen(gan_lib.gan_gaussian(seed=0))
    real = toy_gaussian.make_data(100, seed=0)
    cb = PointScatter(str(tmp_path), real, count=50)
    gan.fit(toy_gaussian.make_dataset(16, 8), epochs=2, verbose=0, callbacks=[cb])
    assert [p.split("/")[-1] for p in cb.paths] == ["epoch_001.png", "epoch_002.png"]
    with Image.open(cb.paths[0]) as im:
        assert im.size == (320, 320)  # 4x4 inches at 80 dpi
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        PointScatter(str(tmp_path), np.zeros((5, 3)))


def test_model_without_latent_dim_needs_it(tmp_path):
    z = keras.Input((2,))
    model = keras.Model(z, z)
    cb = SampleGrid(str(tmp_path), count=2)
    cb.set_model(model)
    with pytest.raises(ValueError, match="latent_dim"):
        cb.on_epoch_end(0)


def test_sample_grid_and_scatter_also_go_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from kcv.callbacks.tensorboard import TrainingScalars

    gan = _frozen(_conv_gan())
    data = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 3), np.float32)).batch(4)
    grid = SampleGrid(str(tmp_path / "grids"), count=6, ncols=3, seed=1, log_dir=str(tmp_path / "tb"))
    gan.fit(data, epochs=2, verbose=0, callbacks=[grid, TrainingScalars(str(tmp_path / "tb"), 4)])
    points = _frozen(gan_lib.gan_gaussian(seed=0))
    scatter = PointScatter(str(tmp_path / "sc"), toy_gaussian.make_data(100, seed=0), count=50,
                           log_dir=str(tmp_path / "tb"))
    points.fit(toy_gaussian.make_dataset(16, 8), epochs=1, verbose=0, callbacks=[scatter])
    acc = EventAccumulator(str(tmp_path / "tb" / "train"), size_guidance={"tensors": 0})
    acc.Reload()
    grids = acc.Tensors("samples/grid")  # TF2 summaries are tensors: [width, height, PNG, ...]
    assert [e.step for e in grids] == [0, 1]
    assert tf.make_ndarray(grids[0].tensor_proto)[:2].tolist() == [b"32", b"22"]
    assert acc.SummaryMetadata("samples/grid").plugin_data.plugin_name == "images"
    assert len(acc.Tensors("samples/scatter")) == 1
    # a GAN's two optimizers, each under its attribute name
    assert {"learning_rate/d_optimizer", "learning_rate/g_optimizer", "speed/images_per_second"} <= set(
        acc.Tags()["tensors"])
