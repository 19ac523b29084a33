"""kcv.losses"""
from kcv.losses.style import content_loss, gram, style_loss, tv_loss  # noqa: F401
