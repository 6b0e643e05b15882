"""``lyra export SCENE --to FORMAT --out PATH``: write a Gaussian scene for other tools (USD(Z), SPZ, COLMAP, PLY)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lyra.export import EXPORT_FORMATS


def run(args: argparse.Namespace) -> int:
    from lyra.cameras import load_cameras_npz
    from lyra.cli.main import CLIError
    from lyra.export import export_scene
    from lyra.gaussians import load_gaussians
    from lyra.utils.files import atomic_dir

    options: dict = {}
    if args.to.startswith("usd"):
        options = {"up_axis": args.up_axis, "meters_per_unit": args.meters_per_unit}
        if args.sh_degree is not None:
            options["sh_degree"] = args.sh_degree
    elif args.up_axis != "Y" or args.sh_degree is not None or args.meters_per_unit != 1.0:
        raise CLIError("--up-axis, --sh-degree and --meters-per-unit apply to USD exports only")
    g = load_gaussians(args.scene, allow_empty=False)
    cams = load_cameras_npz(args.cameras) if args.cameras else None
    if args.to == "colmap":  # a folder: built beside the target, moved into place when complete
        with atomic_dir(args.out) as tmp:
            export_scene(g, tmp, to=args.to, cameras=cams, **options)
        out = Path(args.out)
    else:
        out = export_scene(g, args.out, to=args.to, cameras=cams, **options)
    extra = f", {len(cams)} cameras" if cams is not None and args.to not in ("spz", "ply-sh3") else ""
    print(f"{len(g)} Gaussians{extra}; wrote {out} ({args.to})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a Gaussian scene to USDZ/USDA/USDC, SPZ, a COLMAP model or PLY (SH 3)")
    p.add_argument("scene", help="Gaussian scene file (.ply or .spz)")
    p.add_argument("--to", choices=EXPORT_FORMATS, required=True,
                   help="usdz/usda/usdc: OpenUSD ParticleField3DGaussianSplat (Isaac Sim, Omniverse); spz: "
                        "Niantic SPZ; colmap: folder of cameras/images/points3D.txt (needs --cameras); "
                        "ply-sh3: 3DGS PLY with 45 f_rest")
    p.add_argument("--out", required=True, help="output file (.usdz/.usda/.usdc/.spz/.ply) or folder (colmap)")
    p.add_argument("--cameras", metavar="NPZ", help="trajectory cameras npz (w2c, K, height, width): COLMAP "
                   "images, USD camera prims")
    p.add_argument("--up-axis", choices=("Y", "Z"), default="Y",
                   help="USD stage up axis (default Y); the OpenCV scene is rotated into it by the root Xform")
    p.add_argument("--sh-degree", type=int, choices=(0, 3), default=None,
                   help="USD SH degree (default: 0 stays 0, 1-3 written as 3)")
    p.add_argument("--meters-per-unit", type=float, default=1.0, help="USD stage metersPerUnit (default 1)")
    p.set_defaults(func=run)
