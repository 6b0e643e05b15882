"""``lyra world render``: exact renders of a procedural world along a trajectory."""

from __future__ import annotations

import argparse

from tqdm import tqdm

from lyra.cli.camera_args import add_camera_args, cameras_from_args
from lyra.cli.outputs import add_output_args, write_frames


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


def add_parser(sub: argparse._SubParsersAction) -> None:
    world = sub.add_parser("world", help="procedural worlds with exact ground truth")
    wsub = world.add_subparsers(dest="world_command", metavar="WORLD_COMMAND", required=True)
    p = wsub.add_parser("render", help="render a procedural world along a trajectory (mp4 or PNG folder)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--kind", choices=("room", "yard", "random"), default="random", help="world kind")
    p.add_argument("--world", metavar="JSON", help="load this world instead of generating one")
    p.add_argument("--save-world", metavar="JSON", help="also save the world as JSON")
    p.add_argument("--moving", action="store_true", help="generate moving objects")
    p.add_argument("--time", type=float, default=0.0, help="time in [0, 1] for moving worlds (default 0)")
    p.add_argument("--animate", action="store_true", help="sweep time 0 -> 1 along the frames")
    p.add_argument("--supersample", type=int, default=2, help="RGB anti-aliasing factor (default 2)")
    add_camera_args(p)
    add_output_args(p)
    p.set_defaults(func=run_render, command="world render")
