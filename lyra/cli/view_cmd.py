"""``lyra view SCENE``: serve a Gaussian scene or a 4D sequence (and its trajectory cameras) in the browser (viser).

SCENE is a .ply/.spz file, or a 4D sequence: a folder holding ``sequence.json`` (or that file itself; see
:mod:`lyra.gaussians.sequence`). A sequence's own cameras file (``"cameras"`` in its manifest) is shown unless
``--cameras`` names another. See docs/viewer.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def is_sequence(path: str | Path) -> bool:
    """Whether ``path`` names a 4D sequence (a folder, or a .json manifest) rather than a Gaussian file."""
    p = Path(path)
    return p.is_dir() or p.suffix.lower() == ".json"


def _load_cameras(path: Path | None):
    """(cameras or None, frames per trajectory from a report.json beside them or None)."""
    from lyra.cameras import load_cameras_npz
    from lyra.viewer import report_frames_per_trajectory

    if path is None:
        return None, None
    cams = load_cameras_npz(path)
    return cams, report_frames_per_trajectory(path, len(cams))


def _make_viewer(args: argparse.Namespace):
    """(viewer, what it shows in words, cameras or None) for the parsed arguments."""
    from lyra.cli.main import CLIError
    from lyra.gaussians import load_gaussians
    from lyra.gaussians.sequence import load_sequence
    from lyra.viewer import SceneViewer, SequenceViewer

    opts = {"host": args.host, "port": args.port, "max_gaussians": args.max_gaussians}
    if not is_sequence(args.scene):
        g = load_gaussians(args.scene, allow_empty=False)
        cams, per_traj = _load_cameras(Path(args.cameras) if args.cameras else None)
        return SceneViewer(g, cams, frames_per_trajectory=per_traj, **opts), f"{len(g):,} Gaussians", cams
    m, scenes = load_sequence(args.scene)
    if not any(len(g) for g in scenes):
        raise CLIError(f"{args.scene}: the sequence holds no Gaussians (every frame is empty)")
    cam_path = Path(args.cameras) if args.cameras else (m.root / m.cameras if m.cameras else None)
    cams, per_traj = _load_cameras(cam_path)
    viewer = SequenceViewer(scenes, m.times, cams, frames_per_trajectory=per_traj, fps=m.fps,
                            video_frames=m.video_frames, **opts)
    most = max(len(g) for g in scenes)
    return viewer, f"a 4D sequence of {len(scenes)} frames (up to {most:,} Gaussians each)", cams


def run(args: argparse.Namespace) -> int:
    from lyra.cli.main import CLIError

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535, got {args.port}")
    if args.max_gaussians < 1:
        raise CLIError(f"--max-gaussians must be >= 1, got {args.max_gaussians}")
    viewer, what, cams = _make_viewer(args)
    url = viewer.start()
    try:
        if cams is not None:
            k = len(viewer.trajectories)
            what += f" and {len(cams)} cameras ({k} trajector{'ies' if k != 1 else 'y'})"
        print(f"viewing {what} at {url} (Ctrl-C to stop)", flush=True)
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("viewer stopped")
    finally:
        viewer.stop()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lyra.viewer.viewer import DEFAULT_MAX_GAUSSIANS

    p = sub.add_parser("view", help="view a Gaussian scene (.ply/.spz) or a 4D sequence and its cameras in the "
                                    "browser (viser)")
    p.add_argument("scene", help="Gaussian scene file (.ply or .spz), or a 4D sequence folder (or its sequence.json)")
    p.add_argument("--cameras", metavar="NPZ",
                   help="trajectory cameras npz (w2c, K, height, width) to show (a sequence's default: the cameras "
                        "its manifest names)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; the next free one if taken)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to serve on (default 127.0.0.1, this machine only; 0.0.0.0 serves the network)")
    p.add_argument("--max-gaussians", type=int, default=DEFAULT_MAX_GAUSSIANS,
                   help="send at most this many (most opaque) Gaussians to the browser, per frame for a sequence "
                        f"(default {DEFAULT_MAX_GAUSSIANS:,})")
    p.set_defaults(func=run)
