"""kcv-predict: classify (or detect objects in) a folder of images with a model kcv-train pushed.

It runs the pushed SavedModel and writes a Kaggle submission CSV, in the format the model was
exported for (its `submission_format`: `id,label` for CIFAR-10, `id,<breed>...` probabilities in
vocabulary order for dog breeds, as Kaggle's sample submissions have them).

  kcv-predict --model_dir=saved_models/resnet18_cifar10 --input_dir=DIR/test --output=submission.csv
  kcv-predict ... --submission=probabilities     # override the model's format: id + one column per class
  kcv-predict ... --plot=grid.png                 # a few images with their top-3 classes

Only TensorFlow's SavedModel loader runs the model: no kcv model code is involved.
"""
from __future__ import annotations

import csv
import os
import sys

from absl import flags

from pipelines.cli import require, run_app

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A pushed model folder saved_models/<name> (or one version folder).")
flags.DEFINE_integer("version", None, "Version to use (default: the highest).", lower_bound=1)
flags.DEFINE_string("input_dir", None, "Folder of .png/.jpg/.jpeg images; the file stem is the id.")
flags.DEFINE_string("output", None, "Submission CSV to write.")
flags.DEFINE_enum("submission", None, ["labels", "probabilities"],
                  "labels: `id,label` (Kaggle CIFAR-10); probabilities: `id,<class>...` (Kaggle dog breeds). "
                  "Default: the format the model was exported for (kcv-train --submission; labels for models "
                  "that do not say).")
flags.DEFINE_string("plot", None, "Optional PNG: a grid of the first images with their top-3 classes.")
flags.DEFINE_integer("batch_size", 64, "Images per call.", lower_bound=1)
flags.DEFINE_integer("plot_count", 12, "Images in the --plot grid.", lower_bound=1)
# kcv.data.images.DEFAULT_MAX_IMAGE_PIXELS, written out: importing kcv loads TensorFlow, and --help
# must answer before that (tests/pipelines/predict_test.py checks the two agree).
flags.DEFINE_integer("max_image_pixels", 40_000_000,
                     "Largest image (width x height, read from its header before decoding) to read.", lower_bound=1)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def fail(message: str) -> None:
    print(f"kcv-predict: error: {message}", file=sys.stderr)
    sys.exit(1)


def submission_format(loaded, override: str | None) -> tuple[str, str]:
    """(format, where it came from): --submission, else the SavedModel's submission_format, else labels."""
    if override:
        return override, "--submission"
    if hasattr(loaded, "submission_format"):
        value = loaded.submission_format.numpy().decode()
        if value in ("labels", "probabilities"):
            return value, "the model's submission_format"
        fail(f"the model's submission_format is {value!r}, not labels or probabilities: pass --submission")
    return "labels", "the default (the model names no submission_format)"


def resolve_version(model_dir: str, version: int | None) -> str:
    if os.path.isfile(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    if not os.path.isdir(model_dir):
        fail(f"--model_dir {model_dir} does not exist")
    versions = sorted(int(d) for d in os.listdir(model_dir) if d.isdigit())
    if not versions:
        fail(f"--model_dir {model_dir} holds no integer version folders (push a model first)")
    if version is None:
        version = versions[-1]
    elif version not in versions:
        fail(f"--version={version} not found in {model_dir}; have {versions}")
    return os.path.join(model_dir, str(version))


def sort_key(stem: str):
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def list_images(folder: str) -> list[tuple[str, str]]:
    if not os.path.isdir(folder):
        fail(f"--input_dir {folder} does not exist")
    files = [f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
    if not files:
        fail(f"--input_dir {folder} holds no .png/.jpg/.jpeg images")
    stems = [os.path.splitext(f)[0] for f in files]
    if len(set(stems)) != len(stems):
        fail(f"--input_dir {folder} has images that share an id (same name, different extension)")
    return sorted(((os.path.splitext(f)[0], os.path.join(folder, f)) for f in files), key=lambda t: sort_key(t[0]))


def check_headers(paths: list[str], max_pixels: int) -> None:
    """Fail (one line) unless every file's header is readable and within `max_pixels`.

    Headers only, as a fast first pass: the model decodes later, and refuses what this lets by
    (a truncated body) as one line too. Nothing is sent to the model and no CSV written before this.
    """
    from PIL import UnidentifiedImageError

    from kcv.data.images import ImageTooLargeError, open_checked

    bad, too_large = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
            if not data:
                bad.append(f"{path}: empty file (0 bytes)")
                continue
            open_checked(data, path, max_pixels).close()
        except ImageTooLargeError as err:
            too_large.append(str(err))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            bad.append(f"{path}: unreadable image ({err})")
    if too_large:
        fail(too_large[0] + (f" (and {len(too_large) - 1} more images over the limit)" if len(too_large) > 1 else ""))
    if bad:
        fail(f"{len(bad)} unreadable images: {'; '.join(bad[:3])}")


def read_batches(paths: list[str], batch_size: int):
    """A tf.data.Dataset of the files' bytes, `batch_size` per element, in `paths` order.

    Files are read in parallel and a few batches ahead, so memory holds a few batches, never
    every file's bytes at once.
    """
    import tensorflow as tf

    # deterministic=True: the rows must follow `paths` whatever tf.data.Options say elsewhere.
    files = tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
    reads = files.map(tf.io.read_file, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return reads.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def predict_batches(fn, paths: list[str], batch_size: int, version_dir: str = "", progress=None):
    """Yields serving_default's output dict for each batch of `paths`, in order (the model decodes
    the bytes). `progress` (a pipelines.progress.Progress) is advanced per batch, closed after the last.
    """
    import tensorflow as tf

    batches = iter(read_batches(paths, batch_size))
    while True:
        try:
            data = next(batches)
        except StopIteration:
            break
        except tf.errors.OpError as err:  # a file gone or unreadable since the header check
            fail(f"cannot read an image: {err.message.splitlines()[0] if err.message else type(err).__name__}")
        out = call(fn, data, version_dir)
        if progress is not None:
            progress.update(int(data.shape[0]))
        yield out
    if progress is not None:
        progress.close()


def progress_bar(paths: list[str]):
    """A pipelines.progress.Progress on stdout, where kcv-predict reports what it wrote (errors go to stderr)."""
    from pipelines.progress import Progress

    return Progress(len(paths), "kcv-predict", "images")


def main(argv: list[str]) -> None:
    del argv  # run_app refuses stray arguments before main runs
    require("model_dir", "input_dir", "output")
    version_dir = resolve_version(FLAGS.model_dir, FLAGS.version)
    images = list_images(FLAGS.input_dir)

    import numpy as np
    import tensorflow as tf

    check_headers([path for _, path in images], FLAGS.max_image_pixels)
    try:
        loaded = tf.saved_model.load(version_dir)
    except Exception as err:
        fail(f"cannot load a SavedModel from {version_dir}: {type(err).__name__}")
    if "serving_default" not in loaded.signatures:
        fail(f"{version_dir} has no serving_default signature")
    fn = loaded.signatures["serving_default"]
    if "num_detections" in fn.structured_outputs:
        return predict_detections(fn, images, version_dir)
    if not hasattr(loaded, "class_names"):
        fail(f"{version_dir} is neither a kcv classifier (class_names) nor a detector (num_detections)")
    class_names = [c.decode() for c in loaded.class_names.numpy()]
    kind, why = submission_format(loaded, FLAGS.submission)
    paths = [path for _, path in images]
    probs = np.concatenate([out["probabilities"].numpy()
                            for out in predict_batches(fn, paths, FLAGS.batch_size, version_dir, progress_bar(paths))])

    out_dir = os.path.dirname(os.path.abspath(FLAGS.output))
    os.makedirs(out_dir, exist_ok=True)
    tmp = FLAGS.output + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        if kind == "labels":
            writer.writerow(["id", "label"])
            for (stem, _), p in zip(images, probs):
                writer.writerow([stem, class_names[int(p.argmax())]])
        else:
            writer.writerow(["id", *class_names])
            for (stem, _), p in zip(images, probs):
                writer.writerow([stem, *(f"{v:.6g}" for v in p)])
    os.replace(tmp, FLAGS.output)
    print(f"wrote {len(images)} rows ({kind}: {why}) to {FLAGS.output} using {version_dir}")
    if FLAGS.plot:
        plot_grid(images[:FLAGS.plot_count], probs[:FLAGS.plot_count], class_names, FLAGS.plot)
        print(f"wrote {FLAGS.plot}")


def call(fn, data, version_dir: str) -> dict:
    """serving_default on one batch (bytes: a string tensor or a list); the model's own refusal
    (e.g. its export-time max_image_pixels, lower than --max_image_pixels) is one error line."""
    import tensorflow as tf

    try:
        return fn(image_bytes=tf.convert_to_tensor(data, tf.string))
    except tf.errors.InvalidArgumentError as err:
        # A graph error message is several lines; the reason is the assertion's text, else the
        # first line that is not TensorFlow's framing.
        lines = [line.strip() for line in err.message.splitlines() if line.strip()]
        noise = ("Graph execution error", "Detected at node", "<stack traces", "[[")
        reason = next((line for line in lines if line.startswith("assertion failed:")),
                      next((line for line in lines if not line.startswith(noise)), "InvalidArgumentError"))
        fail(f"{version_dir} refused an image: {reason.removeprefix('assertion failed: ').strip('[]')}")


def _write_rows(header: list[str], rows) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    tmp = FLAGS.output + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, FLAGS.output)


def predict_detections(fn, images, version_dir: str) -> None:
    """Detector: one CSV row per detection, `id,class,score,xmin,ymin,xmax,ymax` in original pixels."""
    rows, per_image, start = [], [], 0
    paths = [path for _, path in images]
    for out in predict_batches(fn, paths, FLAGS.batch_size, version_dir, progress_bar(paths)):
        batch = images[start:start + int(out["num_detections"].shape[0])]
        start += len(batch)
        for i, (stem, path) in enumerate(batch):
            n = int(out["num_detections"][i])
            boxes, scores = out["boxes"][i, :n].numpy(), out["scores"][i, :n].numpy()
            classes = out["classes"][i, :n].numpy()
            per_image.append((stem, path, boxes, scores, classes))
            rows += [[stem, int(c), f"{s:.4f}", *(f"{v:.1f}" for v in b)] for b, s, c in zip(boxes, scores, classes)]
    _write_rows(["id", "class", "score", "xmin", "ymin", "xmax", "ymax"], rows)
    print(f"wrote {len(rows)} detections for {len(images)} images to {FLAGS.output} using {version_dir}")
    if FLAGS.plot:
        plot_detections(per_image[:FLAGS.plot_count], FLAGS.plot)
        print(f"wrote {FLAGS.plot}")


def plot_detections(per_image, path: str, min_score: float = 0.5) -> None:
    """A grid of images with their detections scoring at least `min_score` drawn as boxes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kcv.data.images import load_rgb
    from kcv.viz.boxes import show_bboxes

    cols = min(4, len(per_image))
    rows = (len(per_image) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (stem, file, boxes, scores, classes) in zip(axes.flat, per_image):
        ax.imshow(load_rgb(file, FLAGS.max_image_pixels))
        keep = scores >= min_score
        show_bboxes(ax, boxes[keep].tolist(), [f"{c}: {s:.2f}" for c, s in zip(classes[keep], scores[keep])])
        ax.set_title(stem, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_grid(images, probs, class_names, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kcv.data.images import load_rgb

    n = len(images)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (stem, file), p in zip(axes.flat, images, probs):
        ax.imshow(load_rgb(file, FLAGS.max_image_pixels), interpolation="nearest")
        top = p.argsort()[::-1][:3]
        ax.set_title(f"{stem}\n" + "\n".join(f"{class_names[i]} {p[i]:.2f}" for i in top), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run() -> None:
    run_app(main, __name__, prog="kcv-predict")


if __name__ == "__main__":
    run()
