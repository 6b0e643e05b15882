"""Train: losses, the self-distillation trainer (Accelerate), deferred rendering, checkpoints and resume."""

from lyra.train.config import ConfigError, TrainConfig
from lyra.train.losses import LossWeights, depth_loss, opacity_loss, psnr, ssim, ssim_loss, total_loss
from lyra.train.render_loss import render_views

__all__ = [
    "ConfigError", "LossWeights", "TrainConfig", "depth_loss", "opacity_loss", "psnr", "render_views", "ssim",
    "ssim_loss", "total_loss",
]
