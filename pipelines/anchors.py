"""kcv-anchors: draw the book's anchor-box figures (d2l 14.4) on an image and print their numbers.

  kcv-anchors --image=catdog.jpg --sizes=0.75,0.5,0.25 --ratios=1,2,0.5 --pixel=250,250 --output=anchors.png
      the n+m-1 anchors centred on one pixel, labelled "s=..., r=...", in the image's pixels.
  kcv-anchors --image=catdog.jpg --demo=labels --output=labels.png
      the labelling example: ground truth (dog, cat) and five anchors with their assigned class.
  kcv-anchors --image=catdog.jpg --demo=nms --output=nms.png
      the detection example before and after non-maximum suppression.

The demo boxes are the book's normalised coordinates (made for its cat-and-dog image), scaled to
the given image. The computed numbers are printed too.
"""
from __future__ import annotations

import os

from absl import flags

from pipelines.cli import fail, run_app

DEMOS = ("labels", "nms")
# The book's examples (d2l-en anchor.md), normalised xyxy.
GROUND_TRUTH = [[0, 0.1, 0.08, 0.52, 0.92], [1, 0.55, 0.2, 0.9, 0.88]]
LABEL_ANCHORS = [[0, 0.1, 0.2, 0.3], [0.15, 0.2, 0.4, 0.4], [0.63, 0.05, 0.88, 0.98], [0.66, 0.45, 0.8, 0.8], [0.57, 0.3, 0.92, 0.9]]
NMS_ANCHORS = [[0.1, 0.08, 0.52, 0.92], [0.08, 0.2, 0.56, 0.95], [0.15, 0.3, 0.62, 0.91], [0.55, 0.2, 0.9, 0.88]]
NMS_PROBS = [[0] * 4, [0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.9]]
CLASS_NAMES = ("dog", "cat")


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Define this binary's flags (called by run(); tests pass a fresh FlagValues)."""
    fv = flag_values
    flags.DEFINE_string("image", None, "Image to draw on (PNG/JPEG/...).", flag_values=fv)
    flags.DEFINE_string("sizes", "0.75,0.5,0.25", "Comma-separated anchor sizes s (fractions of the image).", flag_values=fv)
    flags.DEFINE_string("ratios", "1,2,0.5", "Comma-separated aspect ratios r (width/height).", flag_values=fv)
    flags.DEFINE_string("pixel", None, "X,Y pixel (column, row) whose anchors are drawn; default: image centre.", flag_values=fv)
    flags.DEFINE_string("demo", "", "Instead of the anchors figure: 'labels' or 'nms' (the book's examples).", flag_values=fv)
    flags.DEFINE_string("output", "anchors.png", "Figure to write (format from the extension).", flag_values=fv)


class InputError(ValueError):
    """Bad flag value or input: reported as one line."""


def parse_positive_list(name: str, text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(v > 0 and v != float("inf") for v in values):
        raise InputError(f"--{name} must be a comma-separated list of positive numbers, got '{text}'")
    return values


def parse_pixel(text: str | None, width: int, height: int) -> tuple[int, int]:
    if text is None:
        return width // 2, height // 2
    parts = text.split(",")
    try:
        x, y = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--pixel must be X,Y with two integers, got '{text}'") from None
    if not (0 <= x < width and 0 <= y < height):
        raise InputError(f"--pixel={x},{y} is outside the {width}x{height} image (x in [0, {width}), y in [0, {height}))")
    return x, y


def read_image(path: str | None):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not path:
        raise InputError("--image is required: the PNG/JPEG image to draw on")
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else "not a readable image"
        raise InputError(f"cannot read --image={path}: {reason}") from None


def check_output(path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ext = os.path.splitext(path)[1].lower().lstrip(".")
    supported = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if ext not in supported:
        raise InputError(f"--output={path}: unsupported format '.{ext}' (use one of {', '.join(sorted(supported))})")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"--output={path}: folder {directory} does not exist")


def anchors_figure(image, sizes, ratios, pixel):
    """The book's figure: anchors of one pixel, labelled with s and r."""
    import numpy as np

    from kcv import detection
    from kcv.viz.boxes import BoxPanel, box_figure, to_pixels

    height, width = image.shape[:2]
    anchors = detection.multibox_prior(np.zeros((1, height, width, 1), np.float32), sizes, ratios)
    per_pixel = len(sizes) + len(ratios) - 1
    x, y = pixel
    start = (y * width + x) * per_pixel  # flat index of the pixel's first anchor
    boxes = anchors[0, start : start + per_pixel].numpy()
    pairs = [(s, ratios[0]) for s in sizes] + [(sizes[0], r) for r in ratios[1:]]
    labels = [f"s={s:g}, r={r:g}" for s, r in pairs]
    for label, box in zip(labels, boxes):
        print(f"{label}: [{', '.join(f'{v:.4f}' for v in box)}]")
    title = f"{per_pixel} anchors centred on pixel (x={x}, y={y}); not clipped to the image"
    panel = BoxPanel(to_pixels(boxes, image.shape), labels, title=title, points=np.array([[x + 0.5, y + 0.5]]))
    return box_figure(image, [panel], panel_width=7.0)


def labels_figure(image):
    """Ground truth and five anchors; anchors labelled with their index and assigned class."""
    import numpy as np

    from kcv import detection
    from kcv.viz.boxes import BoxPanel, box_figure, to_pixels

    gt = np.array(GROUND_TRUTH, np.float32)
    anchors = np.array(LABEL_ANCHORS, np.float32)
    offsets, mask, classes = detection.multibox_target(anchors[None], gt[None])
    names = ("background",) + CLASS_NAMES
    print("class labels:", classes.numpy()[0].tolist())
    print("mask:", mask.numpy()[0].astype(int).tolist())
    print("offsets:", np.array2string(offsets.numpy()[0], precision=3, max_line_width=200))
    labels = [f"{i}: {names[c]}" for i, c in enumerate(classes.numpy()[0])]
    panel = BoxPanel(
        to_pixels(anchors, image.shape), labels, title="anchors (index: assigned class) and ground truth",
        extra=(BoxPanel(to_pixels(gt[:, 1:], image.shape), list(CLASS_NAMES), ["k"]),),
    )
    return box_figure(image, [panel], panel_width=7.0)


def nms_figure(image):
    """The detection example: predicted boxes before NMS, detections after."""
    import numpy as np

    from kcv import detection
    from kcv.viz.boxes import BoxPanel, box_figure, to_pixels

    anchors = np.array(NMS_ANCHORS, np.float32)
    probs = np.array(NMS_PROBS, np.float32)
    before = ["dog=0.9", "dog=0.8", "dog=0.7", "cat=0.9"]  # the book's labels
    output = detection.multibox_detection(probs[None], np.zeros((1, 16), np.float32), anchors[None], nms_threshold=0.5)
    rows = output.numpy()[0]
    print("multibox_detection rows [class, conf, x1, y1, x2, y2]:")
    print(np.array2string(rows, precision=2, suppress_small=True))
    kept = rows[rows[:, 0] >= 0]
    after = [f"{CLASS_NAMES[int(r[0])]}={r[1]:.2g}" for r in kept]
    return box_figure(
        image,
        [
            BoxPanel(to_pixels(anchors, image.shape), before, title="before NMS"),
            BoxPanel(to_pixels(kept[:, 2:], image.shape), after, title="after NMS (threshold 0.5)"),
        ],
    )


def execute(fv: flags.FlagValues) -> None:
    """Validate everything before TensorFlow loads, then draw and write the figure atomically."""
    demo = fv.demo.strip().lower()
    if demo and demo not in DEMOS:
        raise InputError(f"--demo must be one of {', '.join(DEMOS)} (or empty), got '{fv.demo}'")
    sizes = parse_positive_list("sizes", fv.sizes)
    ratios = parse_positive_list("ratios", fv.ratios)
    check_output(fv.output)
    image = read_image(fv.image)
    height, width = image.shape[:2]
    pixel = parse_pixel(fv.pixel, width, height)

    if demo == "labels":
        fig = labels_figure(image)
    elif demo == "nms":
        fig = nms_figure(image)
    else:
        fig = anchors_figure(image, sizes, ratios, pixel)
    from kcv.viz.boxes import save_figure

    save_figure(fig, fv.output)
    print(f"wrote {fv.output}")


def main(argv: list[str]) -> None:
    try:
        execute(flags.FLAGS)
    except InputError as err:
        fail(str(err))


def run() -> None:
    define_flags()
    run_app(main, __name__, prog="kcv-anchors")


if __name__ == "__main__":
    run()
