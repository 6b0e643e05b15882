"""Eval: image metrics (PSNR, SSIM, LPIPS from local weights), evaluation of decoded 3DGS scenes, reports."""

from lyra.eval.metrics import LPIPSVGG, psnr, ssim

__all__ = ["LPIPSVGG", "psnr", "ssim"]
