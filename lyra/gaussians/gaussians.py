"""The Gaussian set type: activated 3D Gaussian parameters held in memory.

Conventions: quaternions are (w, x, y, z) and need not be normalised (renderers normalise);
scales are standard deviations in scene units (activated, > 0); opacities in [0, 1];
colour either as RGB in [0, 1] (``colors`` [N, 3]) or as real spherical-harmonics coefficients
(``sh`` [N, K, 3], K = (degree+1)^2, band 0 first; RGB = 0.5 + C0 * sh[:, 0]).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from lyra.errors import InputError

SH_C0 = 0.28209479177387814  # Y_0^0


class GaussianError(InputError):
    """Raised for malformed Gaussian data."""


def sh_degree_of(k: int) -> int:
    """The SH degree whose coefficient count per channel is ``k`` ((d+1)^2); error otherwise."""
    d = int(round(k**0.5)) - 1
    if d < 0 or (d + 1) ** 2 != k:
        raise GaussianError(f"{k} SH coefficients per channel is not (degree+1)^2 for any degree")
    return d


@dataclass
class Gaussians:
    """N 3D Gaussians (activated parameters).

    Attributes:
        means: [N, 3] centres (scene units).
        quats: [N, 4] rotations as (w, x, y, z) quaternions.
        scales: [N, 3] per-axis standard deviations (> 0).
        opacities: [N] in [0, 1].
        colors: [N, 3] RGB in [0, 1], or None when ``sh`` is given.
        sh: [N, K, 3] SH coefficients (K = 1, 4, 9 or 16), or None when ``colors`` is given.
        times: [N] optional timestamps (for 4D scenes), or None.
    """

    means: Tensor
    quats: Tensor
    scales: Tensor
    opacities: Tensor
    colors: Tensor | None = None
    sh: Tensor | None = None
    times: Tensor | None = None

    def __post_init__(self) -> None:
        self.validate(check_values=False)

    # ------------------------------------------------------------------ validation
    def validate(self, check_values: bool = True) -> Gaussians:
        """Check shapes, dtypes and devices; with ``check_values`` also NaN/Inf and value ranges."""
        for name in ("means", "quats", "scales", "opacities"):
            if not isinstance(getattr(self, name), Tensor):
                raise GaussianError(f"Gaussians.{name} must be a torch tensor")
        n = self.means.shape[0] if self.means.ndim == 2 else -1
        expect = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,)}
        if (self.colors is None) == (self.sh is None):
            raise GaussianError("Gaussians: give exactly one of colors [N, 3] or sh [N, K, 3]")
        if self.colors is not None:
            expect["colors"] = (n, 3)
        if self.times is not None:
            expect["times"] = (n,)
        for name, shape in expect.items():
            t = getattr(self, name)
            if not isinstance(t, Tensor):
                raise GaussianError(f"Gaussians.{name} must be a torch tensor")
            if tuple(t.shape) != shape or n < 0:
                want = "[" + ", ".join("N" if s == n else str(s) for s in shape) + "]"
                raise GaussianError(f"Gaussians.{name} must be {want}, got {list(t.shape)}")
        if self.sh is not None:
            if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
                raise GaussianError(f"Gaussians.sh must be [N, K, 3], got {list(self.sh.shape)}")
            sh_degree_of(self.sh.shape[1])
        for name, t in self._tensors().items():
            if not t.is_floating_point():
                raise GaussianError(f"Gaussians.{name} must be floating point, got {t.dtype}")
            if t.device != self.means.device:
                raise GaussianError(f"Gaussians.{name} is on {t.device} but means are on {self.means.device}")
        if check_values:
            for name, t in self._tensors().items():
                bad = ~torch.isfinite(t)
                if bad.any():
                    rows = bad.reshape(n, -1).any(dim=1).nonzero()[:5, 0].tolist()
                    raise GaussianError(f"Gaussians.{name} has NaN/Inf (first rows: {rows})")
            if (self.scales <= 0).any():
                raise GaussianError("Gaussians.scales must be > 0 (they are activated standard deviations)")
            if ((self.opacities < 0) | (self.opacities > 1)).any():
                raise GaussianError("Gaussians.opacities must lie in [0, 1] (activated, not logits)")
            if (self.quats.norm(dim=-1) < 1e-12).any():
                raise GaussianError("Gaussians.quats has zero-length quaternions")
            if self.colors is not None and ((self.colors < 0) | (self.colors > 1)).any():
                raise GaussianError("Gaussians.colors must lie in [0, 1]")
        return self

    def _tensors(self) -> dict[str, Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    # ------------------------------------------------------------------ accessors
    def __len__(self) -> int:
        return self.means.shape[0]

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def sh_degree(self) -> int | None:
        """SH degree of ``sh``, or None for plain RGB colours."""
        return None if self.sh is None else sh_degree_of(self.sh.shape[1])

    def rgb(self) -> Tensor:
        """[N, 3] view-independent colour: ``colors`` or the SH DC term (0.5 + C0 * sh0), clamped to [0, 1]."""
        if self.colors is not None:
            return self.colors
        return (0.5 + SH_C0 * self.sh[:, 0]).clamp(0.0, 1.0)

    def index(self, idx: Tensor | slice) -> Gaussians:
        """A subset selected by a boolean mask, an index tensor or a slice."""
        return replace(self, **{k: v[idx] for k, v in self._tensors().items()})

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Gaussians:
        return replace(self, **{k: v.to(device=device, dtype=dtype) for k, v in self._tensors().items()})

    def detach(self) -> Gaussians:
        return replace(self, **{k: v.detach() for k, v in self._tensors().items()})
