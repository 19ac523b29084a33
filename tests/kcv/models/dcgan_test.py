"""DCGAN networks: the book's shape checks, torch padding equivalence, init, counts, one train step."""
import keras
import numpy as np
import pytest
import tensorflow as tf

import kcv.models.dcgan as dc
from kcv.models import get_model
from kcv.models.gan import GAN


def _zeros(*shape):
    return np.zeros(shape, np.float32)


def test_book_shape_checks():
    # The book (NCHW) prints these; here they are channels-last.
    assert dc.GBlock(20)(_zeros(2, 16, 16, 3)).shape == (2, 32, 32, 20)
    assert dc.GBlock(20, strides=1, padding="valid")(_zeros(2, 1, 1, 3)).shape == (2, 4, 4, 20)
    assert dc.dcgan_generator()(_zeros(1, 1, 1, 100)).shape == (1, 64, 64, 3)
    assert dc.DBlock(20)(_zeros(2, 16, 16, 3)).shape == (2, 8, 8, 20)
    assert dc.dcgan_discriminator()(_zeros(1, 64, 64, 3)).shape == (1, 1, 1, 1)


def test_block_layout_and_parameter_counts():
    g, d = dc.dcgan_generator(), dc.dcgan_discriminator()
    assert [layer.output.shape[1:] for layer in g.layers[1:5]] == [
        (4, 4, 512), (8, 8, 256), (16, 16, 128), (32, 32, 64)]
    assert [layer.output.shape[1:] for layer in d.layers[1:5]] == [
        (32, 32, 64), (16, 16, 128), (8, 8, 256), (4, 4, 512)]
    # Kernels 4x4, no biases. G: 100*512*16 + 512*256*16 + 256*128*16 + 128*64*16 + 64*3*16
    # = 819200 + 2097152 + 524288 + 131072 + 3072 = 3574784, + BN gamma/beta 2*(512+256+128+64) = 1920.
    trainable = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    assert trainable(g) == 3574784 + 1920
    # D: 3*64*16 + 64*128*16 + 128*256*16 + 256*512*16 + 512*1*16
    # = 3072 + 131072 + 524288 + 2097152 + 8192 = 2763776, + BN 2*(64+128+256+512) = 1920.
    assert trainable(d) == 2763776 + 1920
    assert not [w.path for w in g.weights + d.weights if "bias" in w.path]


def test_book_hyperparameters_by_behaviour():
    d = dc.dcgan_discriminator(image_size=16, base_filters=4)
    block = d.get_layer("d_block1")
    # LeakyReLU slope 0.2 (nn.LeakyReLU(0.2); Keras' default would be 0.3): -1 -> -0.2, 2 -> 2.
    np.testing.assert_allclose(block.act(np.array([-1.0, 2.0], np.float32)).numpy(), [-0.2, 2.0], rtol=1e-6)
    # BN as torch's BatchNorm2d, momentum 0.1 / eps 1e-5: one training call on channel values 0 and 4
    # (mean 2, unbiased variance 8, as torch's running update uses) moves the statistics to
    # 0.9 * 0 + 0.1 * 2 = 0.2 and 0.9 * 1 + 0.1 * 8 = 1.7; inference then divides by sqrt(1.7 + 1e-5)
    # (eps 1e-3 would give a 3e-4 relative difference).
    bn = block.bn
    bn.gamma.assign(np.ones(4, np.float32))  # N(0, 0.02) init: make the output the normalised value
    bn.beta.assign(np.zeros(4, np.float32))
    x = np.zeros((2, 1, 1, 4), np.float32)
    x[1] = 4.0
    bn(x, training=True)
    np.testing.assert_allclose(bn.moving_mean.numpy(), [0.2] * 4, rtol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), [1.7] * 4, rtol=1e-6)
    np.testing.assert_allclose(bn(x[1:], training=False).numpy().ravel(), [3.8 / np.sqrt(1.7 + 1e-5)] * 4, rtol=1e-6)
    # Adam lr 0.005, beta_1 0.5 (the book; Keras' default 0.9). Keras' update is
    # w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps). Gradients +1 then -1:
    #   t=1: m = 0.5, v = 0.001; step = lr * sqrt(0.001) / 0.5 * 0.5 / sqrt(0.001) = lr   -> w = -lr
    #   t=2: m = 0.25 - 0.5 = -0.25, v = 0.999 * 0.001 + 0.001 = 1 - 0.999^2, so the beta_2 terms
    #        cancel: step = lr * (-0.25) / (1 - 0.25) = -lr / 3                        -> w = -2 lr / 3
    # (beta_1 0.9 would end at -lr + lr * 0.01 / 0.19 = -0.947 lr).
    for opt in dc.dcgan_optimizers().values():
        w = keras.Variable(0.0)
        for g in (1.0, -1.0):
            opt.apply([keras.ops.convert_to_tensor(g)], [w])
        np.testing.assert_allclose(float(w.numpy()), -2 * 0.005 / 3, rtol=1e-4)
        assert float(opt.beta_2) == 0.999 and float(opt.epsilon) == 1e-8  # torch's Adam defaults


def test_all_parameters_are_normal_0_002():
    g = dc.dcgan_generator(seed=0)
    for w in g.trainable_weights:  # kernels and BN gamma/beta alike
        values = w.numpy().ravel()
        assert abs(values.mean()) < 0.01 and values.std() == pytest.approx(0.02, rel=0.25), w.path
    big = g.get_layer("g_block2").conv.kernel.numpy()  # 2,097,152 draws: std within 0.1%
    assert big.std() == pytest.approx(0.02, rel=0.01)


def _torch_conv_transpose(x, kernel, stride, pad):
    """torch ConvTranspose2d without bias, written from its definition: out[i*s - p + k] += x[i] w[k].

    x (H, W, Cin), kernel in Keras layout (k, k, Cout, Cin) -> (H', W', Cout), H' = (H-1)s - 2p + k.
    """
    h, w, _ = x.shape
    k = kernel.shape[0]
    full = np.zeros(((h - 1) * stride + k, (w - 1) * stride + k, kernel.shape[2]))
    for i in range(h):
        for j in range(w):
            full[i * stride:i * stride + k, j * stride:j * stride + k] += kernel @ x[i, j]
    return full[pad:full.shape[0] - pad, pad:full.shape[1] - pad]


def _torch_conv(x, kernel, stride, pad):
    """torch Conv2d without bias: out[o] = sum_k x_padded[o*s + k] w[k]; kernel (k, k, Cin, Cout)."""
    xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    k = kernel.shape[0]
    n = (xp.shape[0] - k) // stride + 1
    m = (xp.shape[1] - k) // stride + 1
    out = np.zeros((n, m, kernel.shape[3]))
    for i in range(n):
        for j in range(m):
            patch = xp[i * stride:i * stride + k, j * stride:j * stride + k]
            out[i, j] = np.einsum("abc,abcd->d", patch, kernel)
    return out


def test_same_padding_equals_torch_padding_1_for_k4_s2():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 6, 6, 3)).astype(np.float32)
    up = keras.layers.Conv2DTranspose(5, 4, 2, "same", use_bias=False)
    got = up(x).numpy()[0]
    np.testing.assert_allclose(got, _torch_conv_transpose(x[0], up.kernel.numpy(), 2, 1), atol=1e-5)
    down = keras.layers.Conv2D(5, 4, 2, "same", use_bias=False)
    got = down(x).numpy()[0]
    np.testing.assert_allclose(got, _torch_conv(x[0], down.kernel.numpy(), 2, 1), atol=1e-5)
    first = keras.layers.Conv2DTranspose(5, 4, 1, "valid", use_bias=False)  # torch s1 p0 from 1x1
    np.testing.assert_allclose(first(x[:, :1, :1]).numpy()[0],
                               _torch_conv_transpose(x[0, :1, :1], first.kernel.numpy(), 1, 0), atol=1e-5)


def test_small_image_sizes_and_bad_size():
    g = dc.dcgan_generator(latent_dim=8, image_size=16, base_filters=4)
    d = dc.dcgan_discriminator(image_size=16, base_filters=4)
    assert g(_zeros(2, 1, 1, 8)).shape == (2, 16, 16, 3) and d(_zeros(2, 16, 16, 3)).shape == (2, 1, 1, 1)
    assert [layer.name for layer in g.layers] == ["noise", "g_block1", "g_block2", "g_out_conv", "g_out_tanh"]
    with pytest.raises(ValueError, match="power of two >= 8"):
        dc.dcgan_generator(image_size=48)


def test_one_train_step_changes_both_networks():
    gan = get_model("dcgan", latent_dim=16, image_size=16, base_filters=4, seed=0)
    assert isinstance(gan, GAN) and gan.noise_shape == (1, 1, 16)
    gan.compile(**dc.dcgan_optimizers())
    before = [w.numpy().copy() for w in gan.weights]
    real = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    logs = gan.train_step(tf.constant(real))
    assert np.isfinite(float(logs["d_loss"])) and np.isfinite(float(logs["g_loss"]))
    changed = {w.path: not np.array_equal(b, w.numpy()) for w, b in zip(gan.weights, before)}
    for net in (gan.generator, gan.discriminator):
        for w in net.weights:  # trainable kernels/gammas/betas and BN moving statistics
            assert changed[w.path], w.path
            assert np.isfinite(w.numpy()).all()


def test_generator_keras_round_trip(tmp_path):
    g = dc.dcgan_generator(latent_dim=8, image_size=16, base_filters=4, seed=1)
    path = str(tmp_path / "g.keras")
    g.save(path)
    loaded = keras.saving.load_model(path)
    noise = np.random.default_rng(0).standard_normal((3, 1, 1, 8)).astype(np.float32)
    np.testing.assert_allclose(loaded(noise).numpy(), g(noise).numpy(), atol=1e-6)
    # A DBlock rebuilt from its config computes the same function once it holds the same weights.
    block = dc.dcgan_discriminator(image_size=16, base_filters=4, seed=1).get_layer("d_block1")
    clone = dc.DBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    x = np.random.default_rng(1).standard_normal((2, 16, 16, 3)).astype(np.float32)
    clone.build(x.shape)
    clone.set_weights(block.get_weights())
    assert clone(x).shape == (2, 8, 8, 4)
    np.testing.assert_allclose(clone(x, training=False).numpy(), block(x, training=False).numpy(), atol=1e-6)


# ---- the discriminator's input block: the book's BatchNorm or the DCGAN paper's none ---------------
def _bn_layers(model):
    return {layer.name: layer.bn is not None for layer in model.layers if isinstance(layer, dc.DBlock)}


def test_discriminator_input_bn_both_variants_layout_and_counts():
    trainable = lambda m: sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    frozen = lambda m: sum(int(np.prod(w.shape)) for w in m.non_trainable_weights)
    book, paper = dc.dcgan_discriminator(), dc.dcgan_discriminator(input_bn=False)
    assert dc.dcgan_discriminator(input_bn=True).count_params() == book.count_params()  # the default is the book's
    assert _bn_layers(book) == {"d_block1": True, "d_block2": True, "d_block3": True, "d_block4": True}
    assert _bn_layers(paper) == {"d_block1": False, "d_block2": True, "d_block3": True, "d_block4": True}
    # Same convolutions (2763776 kernel values, no biases); the paper's D lacks d_block1's gamma/beta
    # (2 x 64) and moving mean/variance (2 x 64).
    assert trainable(book) == 2763776 + 1920 and frozen(book) == 1920
    assert trainable(paper) == 2763776 + 1920 - 128 and frozen(paper) == 1920 - 128
    assert not [w.path for w in paper.weights if "bias" in w.path]
    assert not [w.path for w in paper.weights if "d_block1" in w.path and "bn" in w.path]
    # Same shapes and the same conv kernels for the same seed: only the normalisation differs.
    assert [layer.output.shape for layer in paper.layers] == [layer.output.shape for layer in book.layers]
    seeded_book, seeded_paper = dc.dcgan_discriminator(seed=3), dc.dcgan_discriminator(seed=3, input_bn=False)
    np.testing.assert_array_equal(seeded_paper.get_layer("d_block1").conv.kernel.numpy(),
                                  seeded_book.get_layer("d_block1").conv.kernel.numpy())
    # d_block1 of the paper's D is conv + LeakyReLU(0.2), in training and inference alike.
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype(np.float32)
    block = dc.dcgan_discriminator(image_size=16, base_filters=4, seed=0, input_bn=False).get_layer("d_block1")
    conv = block.conv(x).numpy()
    expected = np.where(conv > 0, conv, 0.2 * conv)
    for training in (True, False):
        np.testing.assert_allclose(block(x, training=training).numpy(), expected, rtol=1e-6, atol=1e-7)


def test_dcgan_builder_kwarg_and_round_trip_without_input_bn(tmp_path):
    gan = get_model("dcgan", latent_dim=8, image_size=16, base_filters=4, seed=0, discriminator_input_bn=False)
    assert _bn_layers(gan.discriminator) == {"d_block1": False, "d_block2": True}
    assert _bn_layers(get_model("dcgan", latent_dim=8, image_size=16, base_filters=4).discriminator) == {
        "d_block1": True, "d_block2": True}
    gan.compile(**dc.dcgan_optimizers())
    real = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    assert np.isfinite(float(gan.train_step(tf.constant(real))["d_loss"]))
    block = gan.discriminator.get_layer("d_block1")
    clone = dc.DBlock.from_config(block.get_config())
    assert clone.get_config()["batch_norm"] is False and clone.bn is None
    path = str(tmp_path / "d.keras")
    gan.discriminator.save(path)
    loaded = keras.saving.load_model(path)
    assert _bn_layers(loaded) == {"d_block1": False, "d_block2": True}
    np.testing.assert_allclose(loaded(real, training=False).numpy(), gan.discriminator(real, training=False).numpy(),
                               atol=1e-6)


def test_one_generator_forward_per_step_is_the_books_two():
    # The book runs net_G(Z) twice per step (update_D, update_G) with unchanged G weights; kcv runs
    # it once and applies G's BatchNorm running update twice. Same weights, same running stats.
    real = tf.constant(np.random.default_rng(0).uniform(-1, 1, (8, 16, 16, 3)).astype("float32"))
    gans = []
    for once in (True, False):
        gan = dc.build_dcgan(image_size=16, seed=0)
        assert gan.generate_once  # the book's G is deterministic in training mode
        gan.generate_once = once
        gan.compile(**dc.dcgan_optimizers())
        losses = [gan.train_on_batch(real, return_dict=True) for _ in range(3)][-1]
        gans.append((gan, losses))
    (a, la), (b, lb) = gans
    np.testing.assert_allclose([la["d_loss"], la["g_loss"]], [lb["d_loss"], lb["g_loss"]], rtol=1e-6)
    for wa, wb in zip(a.generator.weights + a.discriminator.weights, b.generator.weights + b.discriminator.weights):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-5, atol=1e-7, err_msg=wa.path)
    moving = [w for w in a.generator.weights if "moving_mean" in w.path]
    assert moving and all(np.abs(w.numpy()).max() > 0 for w in moving)


def test_generators_with_randomness_or_keras_batchnorm_run_twice():
    from kcv.models.gan import forward_once_is_exact

    def gen(*middle):
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), *middle, keras.layers.Dense(2)])

    assert forward_once_is_exact(gen(keras.layers.ReLU()))
    assert not forward_once_is_exact(gen(keras.layers.Dropout(0.5)))
    assert not forward_once_is_exact(gen(keras.layers.BatchNormalization()))
    assert not forward_once_is_exact(gen(keras.layers.GaussianNoise(0.1)))


def test_subclassed_or_shared_layers_make_the_gan_run_g_twice():
    from kcv.models.gan import forward_once_is_exact

    class PowerIterationConv(keras.layers.Conv2D):  # e.g. spectral norm: a state update per call
        pass

    def gen(layer):
        return keras.Sequential([keras.Input((2, 2, 3)), layer])

    assert forward_once_is_exact(gen(keras.layers.Conv2D(3, 1)))
    assert not forward_once_is_exact(gen(PowerIterationConv(3, 1)))
    assert not forward_once_is_exact(gen(keras.layers.Conv2D(3, 1, activation=lambda x: x * 2)))

    class NoisyBlock(dc.GBlock):  # inherits pure_in_training, but its call is its own
        pass

    assert not forward_once_is_exact(gen(NoisyBlock(3)))
    shared = keras.layers.Dense(2)
    g = keras.Sequential([keras.Input((2,)), shared])
    d = keras.Sequential([keras.Input((2,)), shared, keras.layers.Dense(1)])
    assert not GAN(g, d, latent_dim=2).generate_once
