"""``lyra export SCENE --to FORMAT --out PATH``: write a Gaussian scene for other tools (USD(Z), SPZ, COLMAP, PLY).

SCENE may also be a 4D sequence (a folder with sequence.json, or that file): ``--to usdz|usda|usdc`` writes one
time-sampled stage (experimental), ``--to ply-bundle`` a .zip of the frames + manifest, ``--to spz`` a folder of
SPZ frames (see ``lyra.export.sequence``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lyra.export import EXPORT_FORMATS, SEQUENCE_FORMATS

CLI_FORMATS = EXPORT_FORMATS + tuple(f for f in SEQUENCE_FORMATS if f not in EXPORT_FORMATS)


def run(args: argparse.Namespace) -> int:
    from lyra.cameras import load_cameras_npz
    from lyra.cli.main import CLIError
    from lyra.export import export_scene, is_sequence_path
    from lyra.gaussians import load_gaussians
    from lyra.utils.files import atomic_dir

    options = _usd_options(args)
    if is_sequence_path(args.scene):
        return run_sequence(args, options)
    if args.to not in EXPORT_FORMATS:
        raise CLIError(f"--to {args.to} exports a 4D sequence (a folder with sequence.json); a single scene exports "
                       f"to {', '.join(EXPORT_FORMATS)}")
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


def _usd_options(args: argparse.Namespace) -> dict:
    """The USD writer options of the command line; refuses them for other formats."""
    from lyra.cli.main import CLIError

    if args.to.startswith("usd"):
        options = {"up_axis": args.up_axis, "meters_per_unit": args.meters_per_unit}
        if args.sh_degree is not None:
            options["sh_degree"] = args.sh_degree
        return options
    if args.up_axis != "Y" or args.sh_degree is not None or args.meters_per_unit != 1.0:
        raise CLIError("--up-axis, --sh-degree and --meters-per-unit apply to USD exports only")
    return {}


def run_sequence(args: argparse.Namespace, options: dict) -> int:
    """``lyra export SEQUENCE``: a 4D sequence to one time-sampled USD stage, a PLY bundle or SPZ frames."""
    from lyra.cameras import load_cameras_npz
    from lyra.cli.main import CLIError
    from lyra.export.sequence import (
        EXPERIMENTAL_NOTE,
        SEQUENCE_FORMATS,
        USD_SEQUENCE_FORMATS,
        export_sequence,
        sequence_time_codes,
    )
    from lyra.gaussians.sequence import read_manifest

    if args.to not in SEQUENCE_FORMATS:
        raise CLIError(f"a 4D sequence exports to {', '.join(SEQUENCE_FORMATS)}, not {args.to}")
    if args.cameras and args.to not in USD_SEQUENCE_FORMATS:
        raise CLIError(f"--cameras applies to USD exports of a sequence ({args.to} carries the manifest's cameras)")
    m = read_manifest(args.scene)
    cams = load_cameras_npz(args.cameras) if args.cameras else None
    out = export_sequence(args.scene, args.out, to=args.to, cameras=cams, **options)
    span = f"times {m.times[0]:g}..{m.times[-1]:g}"
    if args.to in USD_SEQUENCE_FORMATS:
        codes = sequence_time_codes(m)
        span = f"time codes {codes[0]:g}..{codes[-1]:g} at {m.fps:g} per second"
    print(f"{len(m.frames)} frames, {span}; wrote {out} ({args.to} sequence)")
    if args.to in USD_SEQUENCE_FORMATS:
        print(f"note: {EXPERIMENTAL_NOTE}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a Gaussian scene to USDZ/USDA/USDC, SPZ, a COLMAP model or PLY (SH 3), "
                       "or a 4D sequence to time-sampled USD, a PLY bundle or SPZ frames")
    p.add_argument("scene", help="Gaussian scene file (.ply or .spz), or a 4D sequence (folder with sequence.json, "
                   "or that file)")
    p.add_argument("--to", choices=CLI_FORMATS, required=True,
                   help="usdz/usda/usdc: OpenUSD ParticleField3DGaussianSplat (Isaac Sim, Omniverse; a sequence: "
                        "one time-sampled stage, experimental); spz: Niantic SPZ (a sequence: a folder of SPZ "
                        "frames); colmap: folder of cameras/images/points3D.txt (needs --cameras); ply-sh3: 3DGS "
                        "PLY with 45 f_rest; ply-bundle (sequences): .zip of the frame PLYs + sequence.json")
    p.add_argument("--out", required=True, help="output file (.usdz/.usda/.usdc/.spz/.ply/.zip) or folder (colmap, "
                   "spz frames of a sequence)")
    p.add_argument("--cameras", metavar="NPZ", help="trajectory cameras npz (w2c, K, height, width): COLMAP "
                   "images, USD camera prims")
    p.add_argument("--up-axis", choices=("Y", "Z"), default="Y",
                   help="USD stage up axis (default Y); the OpenCV scene is rotated into it by the root Xform")
    p.add_argument("--sh-degree", type=int, choices=(0, 3), default=None,
                   help="USD SH degree (default: 0 stays 0, 1-3 written as 3)")
    p.add_argument("--meters-per-unit", type=float, default=1.0, help="USD stage metersPerUnit (default 1)")
    p.set_defaults(func=run)
