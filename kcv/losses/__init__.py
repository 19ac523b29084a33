"""kcv.losses: neural style transfer losses, the TinySSD detection loss, label-smoothed cross-entropy."""
from kcv.losses.classification import SmoothedSparseCrossentropy, classification_loss  # noqa: F401
from kcv.losses.detection import detection_loss  # noqa: F401
from kcv.losses.style import content_loss, gram, style_loss, tv_loss  # noqa: F401
