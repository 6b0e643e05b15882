"""The lyra command: info, world render/gaussians, render, errors (small sizes)."""

import json

import numpy as np
import torch
from PIL import Image

from lyra.cameras import Cameras, default_intrinsics, load_cameras_npz, method_trajectories, save_cameras_npz
from lyra.cli.main import main
from lyra.gaussians import load_gaussians
from lyra.render.video import read_video
from lyra.world import generate_world


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["packages"]["torch"].startswith("2.")
    assert info["render_backends"]["torch"] is True and info["render_backends"]["cpu"] is True
    assert info["render_backends"]["gsplat"] is False  # no CUDA here
    assert "numba layer" in info["cpu"]["rasterizer_pool"]


def test_every_command_help_renders():
    """argparse %-formats help strings: a bare % in one breaks ``--help`` of that command."""
    import argparse

    from lyra.cli.main import build_parser

    helps: dict[str, str] = {}

    def walk(parser: argparse.ArgumentParser) -> None:
        helps[parser.prog] = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(build_parser())
    assert len(helps) > 12
    assert "photo 40%" in " ".join(helps["lyra sdg"].split())


def test_world_render_mp4_and_folder(tmp_path):
    mp4 = tmp_path / "clip.mp4"
    assert main(["world", "render", "--seed", "1", "--trajectory", "left", "--frames", "3",
                 "--height", "32", "--width", "48", "--supersample", "1", "--out", str(mp4)]) == 0
    frames = read_video(mp4)
    assert frames.shape == (3, 3, 32, 48) and frames.std() > 0.02
    cams = method_trajectories(default_intrinsics(24, 32), 24, 32, 2)[5]
    save_cameras_npz(tmp_path / "cams.npz", cams)
    out = tmp_path / "frames"
    assert main(["world", "render", "--seed", "1", "--cameras", str(tmp_path / "cams.npz"), "--supersample", "1",
                 "--depth-format", "npy", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["depth_00000.npy", "depth_00001.npy",
                                                     "rgb_00000.png", "rgb_00001.png"]
    assert np.asarray(Image.open(out / "rgb_00000.png")).shape == (24, 32, 3)
    assert np.load(out / "depth_00000.npy").shape == (24, 32)


def test_world_gaussians_then_render(tmp_path):
    ply = tmp_path / "w.ply"
    assert main(["world", "gaussians", "--seed", "2", "--height", "24", "--width", "32", "--out", str(ply)]) == 0
    g = load_gaussians(ply)
    assert 0 < len(g) <= 24 * 32
    out = tmp_path / "r"
    assert main(["render", str(ply), "--trajectory", "zoom_in", "--frames", "2", "--height", "24", "--width", "32",
                 "--out", str(out)]) == 0
    depth16 = np.asarray(Image.open(out / "depth_00000.png"))
    assert depth16.dtype in (np.uint16, np.int32) and depth16.max() > 0
    # the first zoom_in frame is the anchor camera: the render reproduces the lifted view closely
    rgb = torch.from_numpy(np.array(Image.open(out / "rgb_00000.png"))).float().permute(2, 0, 1) / 255
    cam = Cameras(torch.eye(4), default_intrinsics(24, 32), 24, 32)
    view = generate_world(2).render(cam, supersample=2)
    valid = view.depth[0, 0] > 0
    assert valid.float().mean() > 0.3
    assert (rgb - view.rgb[0]).abs().mean(0)[valid].mean() < 0.08


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["render", str(tmp_path / "missing.ply"), "--out", str(tmp_path / "x.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.ply" in err[0]
    save_cameras_npz(tmp_path / "c.npz", method_trajectories(default_intrinsics(8, 8), 8, 8, 2)[0])
    assert load_cameras_npz(tmp_path / "c.npz").height == 8
    (tmp_path / "bad.npz").write_bytes(b"junk")
    assert main(["world", "render", "--cameras", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o.mp4")]) == 2
