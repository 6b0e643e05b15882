"""``lyra world render``: exact renders of a procedural world along a trajectory."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from lyra.cli.camera_args import add_camera_args, cameras_from_args
from lyra.cli.outputs import add_output_args, write_frames
from lyra.world.generate import WORLD_KINDS


def run_render(args: argparse.Namespace) -> int:
    import torch

    from lyra.world import World, WorldRender, generate_world

    world = World.load_json(args.world) if args.world else generate_world(args.seed, args.kind, moving=args.moving)
    if args.save_world:
        world.save_json(args.save_world)
    cams = cameras_from_args(args)
    times = torch.full((len(cams),), float(args.time))
    if args.animate:
        times = torch.linspace(0.0, 1.0, len(cams))
    parts = []
    for i in tqdm(range(len(cams)), desc="world render", unit="frame", disable=len(cams) < 4):
        parts.append(world.render(cams[i], times[i : i + 1], supersample=args.supersample))
    out = WorldRender(*(torch.cat([getattr(p, k) for p in parts]) for k in ("rgb", "depth", "mask")))
    print("wrote " + write_frames(args.out, out.rgb, out.depth, args.fps, args.depth_format))
    return 0


def run_gaussians(args: argparse.Namespace) -> int:
    import torch

    from lyra.cache3d import depth_to_gaussians
    from lyra.cameras import Cameras, default_intrinsics
    from lyra.cli.main import CLIError
    from lyra.gaussians import GAUSSIAN_EXTENSIONS, save_gaussians
    from lyra.world import World, generate_world

    if Path(args.out).suffix.lower() not in GAUSSIAN_EXTENSIONS:  # before the render, not after
        raise CLIError(f"{args.out}: the scene file must end in {' or '.join(GAUSSIAN_EXTENSIONS)}")
    world = World.load_json(args.world) if args.world else generate_world(args.seed, args.kind, moving=args.moving)
    cam = Cameras(torch.eye(4), default_intrinsics(args.height, args.width, args.fov), args.height, args.width)
    view = world.render(cam, args.time, supersample=2)
    g = depth_to_gaussians(view.rgb[0], view.depth[0], cam, stride=args.stride)
    save_gaussians(args.out, g)
    print(f"wrote {args.out} ({len(g)} Gaussians lifted from the anchor view of world seed {world.seed})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    world = sub.add_parser("world", help="procedural worlds with exact ground truth")
    wsub = world.add_subparsers(dest="world_command", metavar="WORLD_COMMAND", required=True)
    p = wsub.add_parser("render", help="render a procedural world along a trajectory (mp4 or PNG folder)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--kind", choices=WORLD_KINDS, default="random",
                   help="world kind (random: room or yard; mix: room, yard or photo)")
    p.add_argument("--world", metavar="JSON", help="load this world instead of generating one")
    p.add_argument("--save-world", metavar="JSON", help="also save the world as JSON")
    p.add_argument("--moving", action="store_true", help="generate moving objects")
    p.add_argument("--time", type=float, default=0.0, help="time in [0, 1] for moving worlds (default 0)")
    p.add_argument("--animate", action="store_true", help="sweep time 0 -> 1 along the frames")
    p.add_argument("--supersample", type=int, default=2, help="RGB anti-aliasing factor (default 2)")
    add_camera_args(p)
    add_output_args(p)
    p.set_defaults(func=run_render, command="world render")

    q = wsub.add_parser("gaussians", help="lift the anchor view of a world to Gaussians (one per pixel) and save them")
    q.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    q.add_argument("--kind", choices=WORLD_KINDS, default="random",
                   help="world kind (random: room or yard; mix: room, yard or photo)")
    q.add_argument("--world", metavar="JSON", help="load this world instead of generating one")
    q.add_argument("--moving", action="store_true", help="generate moving objects")
    q.add_argument("--time", type=float, default=0.0, help="time in [0, 1] (default 0)")
    q.add_argument("--height", type=int, default=256, help="anchor image height (default 256)")
    q.add_argument("--width", type=int, default=448, help="anchor image width (default 448)")
    q.add_argument("--fov", type=float, default=60.0, help="horizontal field of view in degrees (default 60)")
    q.add_argument("--stride", type=int, default=1, help="keep every stride-th pixel (default 1)")
    q.add_argument("--out", required=True, help="output scene (.ply or .spz)")
    q.set_defaults(func=run_gaussians, command="world gaussians")
