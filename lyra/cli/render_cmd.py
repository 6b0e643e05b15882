"""``lyra render SCENE``: rasterize a Gaussian scene (PLY/SPZ) along a trajectory."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from lyra.cli.camera_args import add_camera_args, cameras_from_args
from lyra.cli.outputs import add_output_args, write_frames


def scene_orbit_defaults(means):
    """Orbit target (opacity-agnostic median of the centres) and radius (its distance to the origin, >= 0.5)."""
    import torch

    target = means.median(dim=0).values
    return target, max(float(torch.linalg.vector_norm(target)), 0.5)


def run(args: argparse.Namespace) -> int:
    import torch

    from lyra.gaussians import load_gaussians
    from lyra.render.api import RenderOutput, rasterize

    g = load_gaussians(args.scene, allow_empty=False)
    device = torch.device(args.device)
    g = g.to(device)
    target, radius = scene_orbit_defaults(g.means.detach())
    cams = cameras_from_args(args, target=target.cpu(), radius=radius).to(device)
    bg = torch.tensor(args.background, dtype=torch.float32, device=device)
    outs = []
    with torch.no_grad():
        for i in tqdm(range(len(cams)), desc="render", unit="frame", disable=len(cams) < 4):
            outs.append(rasterize(g, cams[i], bg, near=args.near, mode=args.mode, backend=args.backend))
    out = RenderOutput(*(torch.cat([getattr(o, k) for o in outs]).cpu() for k in ("rgb", "depth", "alpha")))
    print(f"{len(g)} Gaussians; wrote " + write_frames(args.out, out.rgb, out.depth, args.fps, args.depth_format))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render a Gaussian scene (.ply/.spz) to an mp4 or a PNG folder")
    p.add_argument("scene", help="Gaussian scene file (.ply or .spz)")
    p.add_argument("--mode", choices=("classic", "eval3d"), default="classic", help="rasterization mode")
    p.add_argument("--backend", choices=("auto", "cpu", "torch", "gsplat"), default="auto", help="render backend")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--near", type=float, default=0.01, help="near plane (default 0.01)")
    p.add_argument("--background", type=float, nargs=3, default=(1.0, 1.0, 1.0), metavar=("R", "G", "B"),
                   help="background colour in [0, 1] (default white)")
    add_camera_args(p, default_trajectory="orbit")
    add_output_args(p)
    p.set_defaults(func=run)
