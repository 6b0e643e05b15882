"""Camera-selection options shared by the rendering commands (--trajectory / --cameras)."""

from __future__ import annotations

import argparse

import torch

from lyra.cameras import (
    METHOD_TRAJECTORIES,
    TRAJECTORY_KINDS,
    Cameras,
    default_intrinsics,
    load_cameras_npz,
    orbit,
    trajectory_w2c,
)

TRAJECTORY_CHOICES = (*TRAJECTORY_KINDS, "orbit")
_DEFAULT_DISTANCE = {s.kind: sum(s.distance_range) / 2 for s in METHOD_TRAJECTORIES}


def add_camera_args(p: argparse.ArgumentParser, default_trajectory: str = "left") -> None:
    g = p.add_argument_group("cameras")
    g.add_argument("--trajectory", choices=TRAJECTORY_CHOICES, default=default_trajectory,
                   help="camera path (the method's trajectories from the anchor camera, or an orbit)")
    g.add_argument("--cameras", metavar="NPZ", help="custom cameras: npz with w2c [N,4,4], K [N,3,3], height, width "
                   "(overrides --trajectory and the image size)")
    g.add_argument("--frames", type=int, default=17, help="frames along the trajectory (default 17)")
    g.add_argument("--height", type=int, default=128, help="image height in pixels (default 128)")
    g.add_argument("--width", type=int, default=224, help="image width in pixels (default 224)")
    g.add_argument("--fov", type=float, default=60.0, help="horizontal field of view in degrees (default 60)")
    g.add_argument("--distance", type=float, default=None,
                   help="movement distance (default: the middle of the method's range for the trajectory)")
    g.add_argument("--center-depth", type=float, default=1.0, help="look-at depth of the trajectories (default 1)")
    g.add_argument("--orbit-radius", type=float, default=None, help="orbit radius (default: from the scene)")
    g.add_argument("--orbit-target", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="orbit centre (default: from the scene)")


def cameras_from_args(args: argparse.Namespace, target: torch.Tensor | None = None,
                      radius: float | None = None) -> Cameras:
    """Build the camera batch the options ask for. ``target``/``radius`` are scene-derived orbit defaults."""
    from lyra.cli.main import CLIError

    if args.cameras:
        return load_cameras_npz(args.cameras)
    if args.frames < 1:
        raise CLIError(f"--frames must be >= 1, got {args.frames}")
    K = default_intrinsics(args.height, args.width, args.fov)
    if args.trajectory == "orbit":
        tgt = torch.tensor(args.orbit_target) if args.orbit_target else (
            target if target is not None else torch.tensor([0.0, 0.0, args.center_depth]))
        rad = args.orbit_radius or radius or float(tgt.norm()) or 1.0
        return orbit(args.frames, rad, tgt, K=K, height=args.height, width=args.width)
    dist = args.distance if args.distance is not None else _DEFAULT_DISTANCE.get(args.trajectory, 0.25)
    w2c = trajectory_w2c(args.trajectory, args.frames, dist, args.center_depth)
    return Cameras(w2c, K.expand(args.frames, 3, 3).clone(), args.height, args.width)
