"""Per-pixel camera rays and Plücker coordinates (moment o x d, direction d)."""

from __future__ import annotations

import torch
from torch import Tensor

from lyra.cameras.camera import Cameras


def pixel_grid(height: int, width: int, device: torch.device | str | None = None,
               dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (u + 0.5, v + 0.5), each [H, W]."""
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                          torch.arange(width, device=device, dtype=dtype), indexing="ij")
    return u + 0.5, v + 0.5


def camera_rays(cameras: Cameras, height: int | None = None, width: int | None = None) -> tuple[Tensor, Tensor]:
    """World-space ray origins and unit directions through pixel centres.

    ``height``/``width`` select another resolution of the same cameras (intrinsics scaled, e.g. H/8 x W/8
    gives rays through full-resolution pixel positions 8i+4).

    Returns:
        origins [N, 3, h, w] (camera centres) and directions [N, 3, h, w] (unit length), float32 or the
        cameras' dtype.
    """
    h = cameras.height if height is None else height
    w = cameras.width if width is None else width
    cams = cameras if (h, w) == (cameras.height, cameras.width) else cameras.resized(h, w)
    u, v = pixel_grid(h, w, cams.device, cams.dtype)
    x = (u[None] - cams.cx[:, None, None]) / cams.fx[:, None, None]
    y = (v[None] - cams.cy[:, None, None]) / cams.fy[:, None, None]
    inv = torch.rsqrt(x * x + y * y + 1)  # 1 / |(x, y, 1)|
    d_cam = torch.stack([x * inv, y * inv, inv], dim=1)  # [N, 3, h, w] unit camera-frame directions
    Rt = cams.R.transpose(1, 2)  # camera-to-world rotation
    d_world = torch.bmm(Rt, d_cam.flatten(2)).view_as(d_cam)
    origins = cams.centers[:, :, None, None].expand_as(d_world)
    return origins, d_world


def plucker_rays(cameras: Cameras, height: int | None = None, width: int | None = None) -> Tensor:
    """[N, 6, h, w] Plücker coordinates: channels 0-2 the moment o x d, channels 3-5 the unit direction d."""
    o, d = camera_rays(cameras, height, width)
    return torch.cat([torch.cross(o, d, dim=1), d], dim=1)
