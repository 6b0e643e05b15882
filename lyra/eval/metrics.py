"""Image metrics: PSNR, SSIM (scikit-image settings of the method's evaluation) and LPIPS-VGG from local weights.

LPIPS never downloads anything: its VGG-16 and linear-head weights must be given as local files.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lyra.errors import InputError
from lyra.utils.inputs import load_tensors


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """[N] PSNR in dB of images clipped to [0, 1] (MSE over channels and pixels)."""
    mse = ((pred.float().clamp(0, 1) - target.float().clamp(0, 1)) ** 2).flatten(1).mean(1)
    return -10.0 * torch.log10(mse.clamp_min(1e-12))


# ---------------------------------------------------------------------------------------------- SSIM
def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Tensor:
    """[size] normalised 1D Gaussian taps."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, win_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, reduction: str = "mean") -> Tensor:
    """Structural similarity with scikit-image's ``structural_similarity`` settings used by the method's evaluation.

    ``gaussian_weights=True`` (σ 1.5, an 11-tap window), sample covariance (N/(N-1), N = win_size²),
    K1 0.01, K2 0.03, per channel, mean over the valid (un-padded) region, i.e. skimage's cropped mean.

    Args:
        x, y: [N, C, H, W] images (H, W >= win_size).
        reduction: "mean" -> scalar; "none" -> [N] per-image SSIM (mean over channels and pixels); "map" -> the
            per-pixel map [N, C, H - win_size + 1, W - win_size + 1] of the valid region.
    """
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"ssim: need two [N, C, H, W] tensors of equal shape, got {list(x.shape)}, {list(y.shape)}")
    if min(x.shape[-2:]) < win_size:
        raise ValueError(f"ssim: images of {x.shape[-2]}x{x.shape[-1]} are smaller than the {win_size}-pixel window")
    x, y = x.float(), y.float()
    C = x.shape[1]
    g = gaussian_window(win_size, sigma, x.dtype, x.device)
    wx = g.view(1, 1, 1, -1).expand(C, 1, 1, win_size)
    wy = g.view(1, 1, -1, 1).expand(C, 1, win_size, 1)

    def filt(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, wx, groups=C), wy, groups=C)

    np_ = win_size * win_size
    cov_norm = np_ / (np_ - 1)
    ux, uy = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - ux * ux)
    vy = cov_norm * (filt(y * y) - uy * uy)
    vxy = cov_norm * (filt(x * y) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    if reduction == "map":
        return s
    per_image = s.mean(dim=(1, 2, 3))
    return per_image.mean() if reduction == "mean" else per_image


# ------------------------------------------------------------------------ LPIPS (local weights only)
_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_LPIPS_TAPS = (3, 8, 15, 22, 29)  # indices (in torchvision's vgg16.features) of relu1_2 .. relu5_3
_LPIPS_CH = (64, 128, 256, 512, 512)


class LPIPSVGG(nn.Module):
    """LPIPS with a VGG-16 backbone (Zhang et al. 2018), frozen; needs local weight files (nothing is downloaded).

    Weights: torchvision's ``vgg16`` state dict (keys ``features.<i>.weight/bias``) and the ``lpips`` package's
    ``vgg.pth`` linear heads (keys ``lin<k>.model.1.weight``, shapes [1, C_k, 1, 1]); both may sit in one file.
    Inputs are images in [0, 1] (mapped to [-1, 1] inside, as ``lpips(normalize=True)``).
    """

    shift: Tensor
    scale: Tensor

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _LPIPS_CH)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_files(cls, *paths: str | os.PathLike) -> LPIPSVGG:
        """Load VGG-16 features and LPIPS heads from ``.pth``/``.safetensors`` files or a folder holding them."""
        files: list[Path] = []
        for p in map(Path, paths):
            files += sorted(p.glob("*.pth")) + sorted(p.glob("*.pt")) + sorted(p.glob("*.safetensors")) \
                if p.is_dir() else [p]
        state: dict[str, Tensor] = {}
        for f in files:
            obj = load_tensors(f, "LPIPS weights file")
            if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
                raise InputError(f, "expected a state dict of tensors (VGG-16 features or LPIPS heads)")
            state.update(obj)
        m = cls()
        own: dict[str, Tensor] = {}
        for k, v in state.items():
            if k.startswith("features."):
                own[k] = v
            elif k.startswith("lin") and k.endswith(".weight"):
                own[f"lins.{int(k[3:].split('.')[0])}.weight"] = v
        missing = sorted(set(m.state_dict()) - set(own) - {"shift", "scale"})
        if missing:
            raise InputError(f"LPIPS weights {[str(f) for f in files]}: missing {missing[:6]}"
                             f"{' ...' if len(missing) > 6 else ''}")
        m.load_state_dict(own, strict=False)
        return m

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """[N, 3, H, W] images in [0, 1] -> [N] LPIPS distances."""
        feats = []
        for img in (x, y):
            h = ((img.float() * 2 - 1) - self.shift) / self.scale
            taps = []
            for i, layer in enumerate(self.features):
                h = layer(h)
                if i in _LPIPS_TAPS:
                    taps.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
                if i == _LPIPS_TAPS[-1]:
                    break
            feats.append(taps)
        out = 0.0
        for k, (a, b) in enumerate(zip(*feats)):
            out = out + self.lins[k]((a - b) ** 2).mean(dim=(1, 2, 3))
        return out  # type: ignore[return-value]
