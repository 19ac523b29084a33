"""kcv.losses: neural style transfer losses and the TinySSD detection loss."""
from kcv.losses.detection import detection_loss  # noqa: F401
from kcv.losses.style import content_loss, gram, style_loss, tv_loss  # noqa: F401
