"""4D sequences: numbered 3DGS PLYs + sequence.json (lyra.gaussians.sequence)."""

from __future__ import annotations

import json

import pytest
import torch

from lyra.gaussians import Gaussians, load_gaussians
from lyra.gaussians.sequence import MANIFEST, SequenceError, load_sequence, read_manifest, write_sequence


def scene(n: int, shift: float) -> Gaussians:
    g = torch.Generator().manual_seed(n)
    return Gaussians(means=torch.randn(n, 3, generator=g) + shift, scales=torch.rand(n, 3, generator=g) * 0.1 + 0.01,
                     quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
                     opacities=torch.rand(n, generator=g), sh=torch.rand(n, 1, 3, generator=g))


def test_sequence_round_trip_and_plain_plys(tmp_path) -> None:
    scenes = [scene(30, 0.0), scene(20, 1.0), scene(25, 2.0)]
    m = write_sequence(tmp_path / "seq", scenes, [0.0, 0.5, 1.0], fps=12.0, video_frames=17, units="metres")
    assert m.frames == ["frame_0000.ply", "frame_0001.ply", "frame_0002.ply"]
    d = json.loads((tmp_path / "seq" / MANIFEST).read_text())
    assert d["format"] == "lyra-4d-sequence" and d["times"] == [0.0, 0.5, 1.0] and d["video_frames"] == 17
    m2, back = load_sequence(tmp_path / "seq")
    assert m2 == m and [len(b) for b in back] == [30, 20, 25]
    assert torch.allclose(back[1].means, scenes[1].means, atol=1e-5)
    assert len(load_gaussians(tmp_path / "seq" / "frame_0002.ply")) == 25  # each frame is an ordinary PLY
    assert read_manifest(tmp_path / "seq" / MANIFEST).root == tmp_path / "seq"


def test_sequence_errors(tmp_path) -> None:
    with pytest.raises(SequenceError, match="increase strictly"):
        write_sequence(tmp_path / "a", [scene(5, 0), scene(5, 1)], [0.5, 0.5])
    with pytest.raises(SequenceError, match="2 scenes but 1 times"):
        write_sequence(tmp_path / "a", [scene(5, 0), scene(5, 1)], [0.5])
    with pytest.raises(SequenceError, match="no sequence.json"):
        read_manifest(tmp_path)
    write_sequence(tmp_path / "b", [scene(5, 0), scene(5, 1)], [0.0, 1.0])
    (tmp_path / "b" / "frame_0001.ply").unlink()
    with pytest.raises(SequenceError, match="frame_0001.ply"):
        read_manifest(tmp_path / "b")
    (tmp_path / "b" / MANIFEST).write_text('{"format": "other"}')
    with pytest.raises(SequenceError, match="not a lyra-4d-sequence"):
        read_manifest(tmp_path / "b")
    (tmp_path / "b" / MANIFEST).write_text('{"format": "lyra-4d-sequence", "version": 1, "times": [0]}')
    with pytest.raises(SequenceError, match="malformed"):
        read_manifest(tmp_path / "b")
