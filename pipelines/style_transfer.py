"""kcv-style-transfer: paint a content image in the style of another with VGG-19 features (d2l 14.12).

  kcv-style-transfer --content=rainier.jpg --style=autumn-oak.jpg --output=out.png
  kcv-style-transfer ... --image_size=300,450 --steps=500 --weights=imagenet --download
  kcv-style-transfer ... --weights=/path/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5
  kcv-style-transfer ... --weights=random        # = --weights=none: no ImageNet knowledge, a smoke test only

Writes the synthesised image to --output and the loss curves beside it (<output>_losses.png).
Nothing is written unless the run succeeds.
"""
from __future__ import annotations

import os
import sys
import uuid

from absl import flags

from pipelines.cli import fail, require, run_app

FLAGS = flags.FLAGS
flags.DEFINE_string("content", None, "Content image (.jpg/.png).")
flags.DEFINE_string("style", None, "Style image (.jpg/.png).")
flags.DEFINE_string("output", None, "Synthesised image to write (.png or .jpg).")
flags.DEFINE_string("image_size", "300,450", "height,width both images are resized to (the book's 300,450).")
flags.DEFINE_integer("steps", 500, "Optimisation steps (the book's 500 epochs).")
flags.DEFINE_float("lr", 0.3, "Adam learning rate (the book's PyTorch tab: 0.3).")
flags.DEFINE_float("lr_decay", 0.8, "Learning-rate factor every --lr_period steps.")
flags.DEFINE_integer("lr_period", 50, "Steps between learning-rate decays.")
flags.DEFINE_float("content_weight", 1.0, "Content-loss weight (book: 1).")
flags.DEFINE_float("style_weight", 1e4, "Style-loss weight (book: 1e4).")
flags.DEFINE_float("tv_weight", 10.0, "Total-variation weight (book: 10).")
# The vocabulary of kcv.models.pretrained (WEIGHTS_CHOICES), spelled out here so --help needs no TensorFlow.
flags.DEFINE_string("weights", "imagenet",
                    "VGG-19 weights: imagenet (Keras cache ~/.keras/models/; --download fetches it), none "
                    "(random initialisation; random is the same) or the path of a local .h5 / .weights.h5 file.")
flags.DEFINE_boolean("download", False, "Allow downloading the ImageNet weights into the Keras cache.")
flags.DEFINE_integer("seed", 0, "Seed of the random initialisation (--weights=none / random).")

NAME = "kcv-style-transfer"
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def parse_image_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.split(","))
    except ValueError:
        fail(f"--image_size must be height,width (e.g. 300,450), got {text!r}")
    if h < 1 or w < 1:
        fail(f"--image_size must be positive, got {text!r}")
    return h, w


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_image(flag: str, path: str):
    """(H, W, 3) uint8 RGB, or a one-line failure."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as err:
        fail(f"cannot read --{flag}={path}: {_first_line(err)}")


def losses_path(output: str) -> str:
    """out.png -> out_losses.png, beside the image."""
    return os.path.splitext(output)[0] + "_losses.png"


def plot_losses(losses: dict, path: str) -> None:
    """Weighted content/style/TV losses per step, log scale, as the book's animator plots them.

    Step 1 is left out when there are more: it is the content image itself, whose content loss
    is 0 and would squash a log axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(losses["content"])
    first = 1 if n > 1 else 0
    steps = range(first + 1, n + 1)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, label in (("content", "content"), ("style", "style"), ("tv", "TV")):
        ax.plot(steps, losses[key][first:], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def write_outputs(image, losses: dict, output: str) -> tuple[str, str]:
    """Write image and loss curve to temporary siblings, then rename both into place."""
    from PIL import Image

    from kcv.style import to_uint8

    output = os.path.abspath(output)
    curve = losses_path(output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp_image = os.path.join(os.path.dirname(output), f".tmp-{tag}-{os.path.basename(output)}")
    tmp_curve = os.path.join(os.path.dirname(curve), f".tmp-{tag}-{os.path.basename(curve)}")
    try:
        fmt = OUTPUT_FORMATS[os.path.splitext(output)[1].lower()]
        Image.fromarray(to_uint8(image)).save(tmp_image, format=fmt)
        plot_losses(losses, tmp_curve)
        os.replace(tmp_image, output)
        os.replace(tmp_curve, curve)
    finally:
        for tmp in (tmp_image, tmp_curve):
            if os.path.exists(tmp):
                os.remove(tmp)
    return output, curve


def main(argv: list[str]) -> None:
    require("content", "style", "output")
    if os.path.splitext(FLAGS.output)[1].lower() not in OUTPUT_FORMATS:
        fail(f"--output must end in .png, .jpg or .jpeg, got {FLAGS.output!r}")
    image_size = parse_image_size(FLAGS.image_size)
    if FLAGS.steps < 1:
        fail(f"--steps must be at least 1, got {FLAGS.steps}")
    if FLAGS.lr <= 0 or FLAGS.lr_period < 1 or FLAGS.lr_decay <= 0:
        fail("--lr and --lr_decay must be positive and --lr_period at least 1")
    content = read_image("content", FLAGS.content)
    style_image = read_image("style", FLAGS.style)

    import warnings

    import keras

    from kcv.models.pretrained import PretrainedWeightsError, resolve_weights
    from kcv.models.vgg import vgg19_features
    from kcv.style import transfer

    try:  # the file to load (downloaded first with --download), or None for random initialisation
        weights = resolve_weights("vgg19", FLAGS.weights, include_top=False, allow_download=FLAGS.download)
    except PretrainedWeightsError as err:
        fail(str(err))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            extractor = vgg19_features(weights=weights or "none", seed=FLAGS.seed)
        except PretrainedWeightsError as err:  # a file that does not load
            fail(str(err))
    for warning in caught:
        print(f"{NAME}: warning: {warning.message}", file=sys.stderr)

    bar = keras.utils.Progbar(FLAGS.steps, stateful_metrics=["content", "style", "tv", "lr"])

    def progress(step: int, logs: dict) -> None:
        bar.update(step + 1, values=list(logs.items()))

    try:
        image, losses = transfer(
            content, style_image, image_size=image_size, steps=FLAGS.steps, lr=FLAGS.lr,
            lr_decay=FLAGS.lr_decay, lr_period=FLAGS.lr_period, content_weight=FLAGS.content_weight,
            style_weight=FLAGS.style_weight, tv_weight=FLAGS.tv_weight, extractor=extractor,
            callback=progress,
        )
    except Exception as err:  # e.g. out of memory for a large --image_size: one line, no traceback
        fail(f"style transfer failed: {type(err).__name__}: {_first_line(err)}")
    try:
        output, curve = write_outputs(image, losses, FLAGS.output)
    except OSError as err:
        fail(f"cannot write --output={FLAGS.output}: {_first_line(err)}")
    last = {k: float(v[-1]) for k, v in losses.items()}
    print(f"wrote {output} and {curve}; final weighted losses: content {last['content']:.4g}, "
          f"style {last['style']:.4g}, tv {last['tv']:.4g}")


def run() -> None:
    run_app(main, __name__, prog=NAME)


if __name__ == "__main__":
    run()
