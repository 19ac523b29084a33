"""kcv.layers.initializers.PartialIdentity: the first filters pass their channel through."""
import keras
import numpy as np
import pytest

from kcv.layers.initializers import PartialIdentity


@pytest.mark.parametrize("cin,cout", [(4, 6), (6, 4)])
def test_conv_starts_as_identity_on_the_channels_it_keeps(cin, cout):
    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(cout, 3, padding="same", use_bias=False, kernel_initializer=PartialIdentity())
    x = np.random.default_rng(0).normal(size=(2, 5, 5, cin)).astype(np.float32)
    y = np.asarray(conv(x))
    keep = min(cin, cout)
    np.testing.assert_allclose(y[..., :keep], x[..., :keep], rtol=1e-6, atol=1e-6)
    rest = np.asarray(conv.kernel)[..., keep:]
    if cout > keep:  # the other filters are the base initializer's (glorot_uniform), not zeros
        limit = np.sqrt(6 / (9 * cin + 9 * cout))
        assert 0 < np.abs(rest).max() <= limit


def test_round_trips_through_the_layer_config_and_refuses_even_kernels():
    conv = keras.layers.Conv2D(3, 3, kernel_initializer=PartialIdentity("he_normal"))
    again = keras.layers.Conv2D.from_config(conv.get_config())
    assert isinstance(again.kernel_initializer, PartialIdentity)
    assert isinstance(again.kernel_initializer.base, keras.initializers.HeNormal)
    with pytest.raises(ValueError, match="PartialIdentity: needs an odd-sized conv kernel"):
        PartialIdentity()((2, 2, 3, 3))
