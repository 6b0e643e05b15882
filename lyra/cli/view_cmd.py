"""``lyra view SCENE``: serve a Gaussian scene (and its trajectory cameras) in the browser with viser."""

from __future__ import annotations

import argparse
import time


def run(args: argparse.Namespace) -> int:
    from lyra.cameras import load_cameras_npz
    from lyra.cli.main import CLIError
    from lyra.gaussians import load_gaussians
    from lyra.viewer import SceneViewer

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {args.port}")
    if args.max_gaussians < 1:
        raise CLIError(f"--max-gaussians must be >= 1, got {args.max_gaussians}")
    g = load_gaussians(args.scene, allow_empty=False)
    cams = load_cameras_npz(args.cameras) if args.cameras else None
    viewer = SceneViewer(g, cams, host=args.host, port=args.port, max_gaussians=args.max_gaussians)
    url = viewer.start()
    try:
        cams_txt = f" and {len(cams)} cameras" if cams is not None else ""
        print(f"viewing {len(g):,} Gaussians{cams_txt} at {url} (Ctrl-C to stop)", flush=True)
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("viewer stopped")
    finally:
        viewer.stop()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lyra.viewer.viewer import DEFAULT_MAX_GAUSSIANS

    p = sub.add_parser("view", help="view a Gaussian scene (.ply/.spz) and its cameras in the browser (viser)")
    p.add_argument("scene", help="Gaussian scene file (.ply or .spz)")
    p.add_argument("--cameras", metavar="NPZ", help="trajectory cameras npz (w2c, K, height, width) to show")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; the next free one if taken)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1, this machine only; 0.0.0.0 serves the network)")
    p.add_argument("--max-gaussians", type=int, default=DEFAULT_MAX_GAUSSIANS,
                   help="send at most this many (most opaque) Gaussians to the browser "
                        f"(default {DEFAULT_MAX_GAUSSIANS:,})")
    p.set_defaults(func=run)
