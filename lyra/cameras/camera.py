"""The camera batch type: OpenCV pinhole cameras as world-to-camera 4x4 + pixel intrinsics.

Conventions (fixed for all of lyra):
  * OpenCV axes: x right, y down, z forward.
  * ``w2c`` maps world points to camera coordinates: ``x_cam = R @ x_world + t``.
  * ``K`` holds pixel intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` for an image of
    ``height x width`` pixels; pixel (u, v) covers [u, u+1) x [v, v+1), its centre is (u+0.5, v+0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lyra.errors import InputError


class CameraError(InputError):
    """Raised for malformed camera data."""


@dataclass(frozen=True)
class Cameras:
    """A batch of N pinhole cameras sharing one image size.

    Attributes:
        w2c: [N, 4, 4] float world-to-camera matrices (rigid; last row 0 0 0 1).
        K: [N, 3, 3] float pixel intrinsics.
        height: image height in pixels.
        width: image width in pixels.
    """

    w2c: Tensor  # [N, 4, 4]
    K: Tensor  # [N, 3, 3]
    height: int
    width: int

    def __post_init__(self) -> None:
        w2c, K = self.w2c, self.K
        if not isinstance(w2c, Tensor) or not isinstance(K, Tensor):
            raise CameraError("Cameras: w2c and K must be torch tensors")
        if w2c.ndim == 2:
            object.__setattr__(self, "w2c", w2c := w2c[None])
        if K.ndim == 2:
            object.__setattr__(self, "K", K := K[None])
        if w2c.ndim != 3 or w2c.shape[1:] != (4, 4):
            raise CameraError(f"Cameras: w2c must be [N, 4, 4], got {list(w2c.shape)}")
        if K.ndim != 3 or K.shape[1:] != (3, 3):
            raise CameraError(f"Cameras: K must be [N, 3, 3], got {list(K.shape)}")
        if K.shape[0] != w2c.shape[0]:
            if K.shape[0] == 1:
                object.__setattr__(self, "K", K := K.expand(w2c.shape[0], 3, 3).contiguous())
            else:
                raise CameraError(f"Cameras: {w2c.shape[0]} w2c matrices but {K.shape[0]} intrinsics")
        if not w2c.is_floating_point() or not K.is_floating_point():
            raise CameraError("Cameras: w2c and K must be floating point")
        if w2c.device != K.device:
            raise CameraError(f"Cameras: w2c on {w2c.device} but K on {K.device}")
        if int(self.height) <= 0 or int(self.width) <= 0:
            raise CameraError(f"Cameras: image size must be positive, got {self.height}x{self.width}")
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "width", int(self.width))
        if not (torch.isfinite(w2c).all() and torch.isfinite(K).all()):
            raise CameraError("Cameras: w2c or K contains NaN/Inf")
        bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=w2c.dtype, device=w2c.device)
        if not torch.allclose(w2c[:, 3, :], bottom.expand_as(w2c[:, 3, :]), atol=1e-5):
            raise CameraError("Cameras: the last row of every w2c must be [0, 0, 0, 1]")
        R = w2c[:, :3, :3].double()
        eye = torch.eye(3, dtype=R.dtype, device=R.device)
        if not torch.allclose(R @ R.transpose(1, 2), eye.expand_as(R), atol=1e-3):
            raise CameraError("Cameras: the rotation part of w2c is not orthonormal")
        if (torch.linalg.det(R) < 0).any():
            raise CameraError("Cameras: w2c rotation has det -1 (a reflection); use a right-handed frame")
        if (K[:, 0, 0] <= 0).any() or (K[:, 1, 1] <= 0).any():
            raise CameraError("Cameras: focal lengths fx, fy must be positive")
        if not torch.allclose(K[:, 2], torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype, device=K.device)):
            raise CameraError("Cameras: the last row of K must be [0, 0, 1]")

    # ------------------------------------------------------------------ construction
    @staticmethod
    def from_fov(
        w2c: Tensor, height: int, width: int, fov_x_deg: float = 60.0, dtype: torch.dtype = torch.float32
    ) -> Cameras:
        """Cameras with square pixels, principal point at the image centre and horizontal FoV ``fov_x_deg``."""
        w2c = w2c if w2c.ndim == 3 else w2c[None]
        f = 0.5 * width / torch.tan(torch.deg2rad(torch.tensor(fov_x_deg / 2.0, dtype=torch.float64)))
        K = intrinsics_matrix(float(f), float(f), width / 2.0, height / 2.0, dtype=dtype, device=w2c.device)
        return Cameras(w2c.to(dtype), K.expand(w2c.shape[0], 3, 3).clone(), height, width)

    # ------------------------------------------------------------------ accessors
    def __len__(self) -> int:
        return self.w2c.shape[0]

    def __getitem__(self, idx: int | slice | Tensor | list[int]) -> Cameras:
        if isinstance(idx, int):
            idx = slice(idx, idx + 1 if idx != -1 else None)
        return Cameras(self.w2c[idx], self.K[idx], self.height, self.width)

    @property
    def device(self) -> torch.device:
        return self.w2c.device

    @property
    def dtype(self) -> torch.dtype:
        return self.w2c.dtype

    @property
    def R(self) -> Tensor:
        """[N, 3, 3] world-to-camera rotations."""
        return self.w2c[:, :3, :3]

    @property
    def t(self) -> Tensor:
        """[N, 3] world-to-camera translations."""
        return self.w2c[:, :3, 3]

    @property
    def c2w(self) -> Tensor:
        """[N, 4, 4] camera-to-world matrices (exact rigid inverse)."""
        R, t = self.R, self.t
        Rt = R.transpose(1, 2)
        out = torch.zeros_like(self.w2c)
        out[:, :3, :3] = Rt
        out[:, :3, 3] = -(Rt @ t[..., None])[..., 0]
        out[:, 3, 3] = 1.0
        return out

    @property
    def centers(self) -> Tensor:
        """[N, 3] camera centres in world coordinates."""
        return -(self.R.transpose(1, 2) @ self.t[..., None])[..., 0]

    @property
    def fx(self) -> Tensor:
        return self.K[:, 0, 0]

    @property
    def fy(self) -> Tensor:
        return self.K[:, 1, 1]

    @property
    def cx(self) -> Tensor:
        return self.K[:, 0, 2]

    @property
    def cy(self) -> Tensor:
        return self.K[:, 1, 2]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Cameras:
        return Cameras(self.w2c.to(device=device, dtype=dtype), self.K.to(device=device, dtype=dtype),
                       self.height, self.width)

    def resized(self, height: int, width: int) -> Cameras:
        """The same cameras for an image resized to ``height x width`` (intrinsics scaled per axis)."""
        sx, sy = width / self.width, height / self.height
        K = self.K.clone()
        K[:, 0, :] *= sx
        K[:, 1, :] *= sy
        K[:, 2] = torch.tensor([0.0, 0.0, 1.0], dtype=K.dtype, device=K.device)
        return Cameras(self.w2c, K, height, width)

    @staticmethod
    def cat(cams: list[Cameras]) -> Cameras:
        """Concatenate camera batches of the same image size."""
        if not cams:
            raise CameraError("Cameras.cat: empty list")
        sizes = {(c.height, c.width) for c in cams}
        if len(sizes) != 1:
            raise CameraError(f"Cameras.cat: image sizes differ: {sorted(sizes)}")
        return Cameras(torch.cat([c.w2c for c in cams]), torch.cat([c.K for c in cams]),
                       cams[0].height, cams[0].width)


def intrinsics_matrix(
    fx: float, fy: float, cx: float, cy: float, dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """[3, 3] pixel intrinsics matrix."""
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype, device=device)


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """World-to-camera matrices of OpenCV cameras at ``eye`` looking at ``target``.

    Args:
        eye: [N, 3] or [3] camera centres (world).
        target: [N, 3] or [3] points to look at (world).
        up: [3] world "up" direction; OpenCV image-up is -y, so the default is (0, -1, 0).
    Returns:
        [N, 4, 4] w2c (rows of R are the camera x, y, z axes in world coordinates).
    """
    eye = torch.as_tensor(eye, dtype=torch.float32)
    target = torch.as_tensor(target, dtype=eye.dtype, device=eye.device)
    eye, target = torch.broadcast_tensors(eye.reshape(-1, 3), target.reshape(-1, 3))
    if up is None:
        up = torch.tensor([0.0, -1.0, 0.0], dtype=eye.dtype, device=eye.device)
    up = torch.as_tensor(up, dtype=eye.dtype, device=eye.device).expand_as(eye)
    z = torch.nn.functional.normalize(target - eye, dim=-1)
    x = torch.cross(z, up, dim=-1)
    degenerate = x.norm(dim=-1) < 1e-6
    if degenerate.any():  # looking straight along "up": pick another reference axis
        alt = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
        x = torch.where(degenerate[:, None], torch.cross(z, alt, dim=-1), x)
    x = torch.nn.functional.normalize(x, dim=-1)
    y = torch.cross(z, x, dim=-1)
    R = torch.stack([x, y, z], dim=1)
    w2c = torch.eye(4, dtype=eye.dtype, device=eye.device).repeat(eye.shape[0], 1, 1)
    w2c[:, :3, :3] = R
    w2c[:, :3, 3] = -(R @ eye[..., None])[..., 0]
    return w2c
