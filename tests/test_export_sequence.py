"""``lyra export`` of 4D sequences: one time-sampled USD stage, a PLY bundle (.zip), SPZ frames; errors exit 2.

USD is read back with usd-core (time samples, per-time values and counts, stage time range); bundles and SPZ
folders through ``read_manifest`` / ``load_sequence``.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lyra.cameras import Cameras, look_at, save_cameras_npz
from lyra.cli.main import main
from lyra.export.sequence import EXPERIMENTAL_NOTE, export_sequence, sequence_time_codes
from lyra.gaussians import Gaussians, save_ply
from lyra.gaussians.sequence import (
    MANIFEST,
    SequenceError,
    SequenceManifest,
    load_sequence,
    read_manifest,
    write_sequence,
)

pytest.importorskip("pxr", reason="usd-core is not installed (pip install 'usd-core>=26.3')")
from pxr import Usd, UsdGeom, UsdVol  # noqa: E402

COUNTS = (30, 20, 25)  # splats per frame: differ on purpose
TIMES = (0.0, 0.5, 1.0)
VIDEO_FRAMES, FPS = 17, 12.0
CODES = [0.0, 8.0, 16.0]  # t * (VIDEO_FRAMES - 1)
ANIMATED = ("positions", "orientations", "scales", "opacities", "radiance:sphericalHarmonicsCoefficients", "extent",
            "primvars:displayColor")


def _scene(n: int, shift: float, degree: int = 0) -> Gaussians:
    g = torch.Generator().manual_seed(n)
    return Gaussians(means=torch.randn(n, 3, generator=g) + shift, scales=torch.rand(n, 3, generator=g) * 0.1 + 0.01,
                     quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
                     opacities=torch.rand(n, generator=g) * 0.98 + 0.01,
                     sh=torch.randn(n, (degree + 1) ** 2, 3, generator=g) * 0.3)


def _cameras(n: int = 2) -> Cameras:
    eyes = torch.tensor([[0.1 * i, 0.0, -1.0] for i in range(n)])
    K = torch.tensor([[40.0, 0.0, 16.0], [0.0, 40.0, 12.0], [0.0, 0.0, 1.0]]).repeat(n, 1, 1)
    return Cameras(look_at(eyes, torch.zeros(n, 3)), K, 24, 32)


def _sequence(folder: Path, degrees=(0, 0, 0), cameras: bool = False) -> list[Gaussians]:
    scenes = [_scene(n, float(i), d) for i, (n, d) in enumerate(zip(COUNTS, degrees))]
    folder.mkdir(parents=True, exist_ok=True)
    if cameras:
        save_cameras_npz(folder / "cameras.npz", _cameras())
    write_sequence(folder, scenes, TIMES, fps=FPS, video_frames=VIDEO_FRAMES, units="metres",
                   cameras="cameras.npz" if cameras else None)
    return scenes


def _one_line_error(capsys, *words: str) -> None:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error:" in err, err
    for w in words:
        assert w in err, err


# ---------------------------------------------------------------------------------------------- USD


@pytest.mark.parametrize("ext", ["usda", "usdc", "usdz"])
def test_usd_sequence_time_samples(tmp_path, capsys, ext):
    """One stage: every splat attribute sampled at each frame's time code with that frame's values and count."""
    scenes = _sequence(tmp_path / "seq")
    out = tmp_path / f"seq.{ext}"
    assert main(["export", str(tmp_path / "seq" / MANIFEST), "--to", ext, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "time codes 0..16 at 12 per second" in stdout and EXPERIMENTAL_NOTE in stdout

    stage = Usd.Stage.Open(str(out))
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (0.0, 16.0)
    assert stage.GetTimeCodesPerSecond() == FPS and stage.GetFramesPerSecond() == FPS
    assert list(stage.GetRootLayer().customLayerData["lyra:sequence"]["times"]) == list(TIMES)
    prim = stage.GetPrimAtPath("/Scene/Gaussians")
    assert prim.IsA(UsdVol.ParticleField3DGaussianSplat) and stage.GetDefaultPrim().GetPath() == "/Scene"
    assert prim.GetAttribute("radiance:sphericalHarmonicsDegree").Get() == 0
    for name in ANIMATED:
        attr = prim.GetAttribute(name)
        assert attr.GetTimeSamples() == CODES, name
        assert attr.Get(Usd.TimeCode.Default()) is None, name  # animated only, no static default
    for g, code in zip(scenes, CODES):
        pos = np.asarray(prim.GetAttribute("positions").Get(code))
        assert pos.shape == (len(g), 3)  # per-sample array lengths differ and read back as written
        np.testing.assert_allclose(pos, g.means.numpy(), atol=1e-6)
        np.testing.assert_allclose(np.asarray(prim.GetAttribute("scales").Get(code)), g.scales.numpy(), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(prim.GetAttribute("opacities").Get(code)), g.opacities.numpy(),
                                   atol=1e-6)
        q = np.array([[x.GetReal(), *x.GetImaginary()] for x in prim.GetAttribute("orientations").Get(code)])
        np.testing.assert_allclose(np.abs((q * g.quats.numpy()).sum(1)), 1.0, atol=1e-5)  # same rotation
        sh = np.asarray(prim.GetAttribute("radiance:sphericalHarmonicsCoefficients").Get(code))
        np.testing.assert_allclose(sh, g.sh[:, 0].numpy(), atol=1e-6)
        assert len(UsdGeom.PrimvarsAPI(prim).GetPrimvar("displayColor").Get(code)) == len(g)
    # between samples: counts differ (20 vs 25) -> USD holds the earlier sample
    assert len(prim.GetAttribute("positions").Get(12.0)) == COUNTS[1]
    stage.SetInterpolationType(Usd.InterpolationTypeHeld)  # what players should use (docs/dynamic.md)
    np.testing.assert_allclose(np.asarray(prim.GetAttribute("positions").Get(4.0)), scenes[0].means.numpy(),
                               atol=1e-6)


def test_usd_sequence_sh_degree_cameras_and_axis(tmp_path):
    """Mixed SH degrees are padded to 3 (uniform degree); the manifest's cameras become camera prims; Z-up."""
    scenes = _sequence(tmp_path / "seq", degrees=(0, 1, 0), cameras=True)
    out = export_sequence(tmp_path / "seq", tmp_path / "s.usdc", to="usdc", up_axis="Z")
    stage = Usd.Stage.Open(str(out))
    prim = stage.GetPrimAtPath("/Scene/Gaussians")
    assert prim.GetAttribute("radiance:sphericalHarmonicsDegree").Get() == 3
    for g, code in zip(scenes, CODES):
        sh = np.asarray(prim.GetAttribute("radiance:sphericalHarmonicsCoefficients").Get(code)).reshape(len(g), 16, 3)
        k = g.sh.shape[1]
        np.testing.assert_allclose(sh[:, :k], g.sh.numpy(), atol=1e-6)
        assert not sh[:, k:].any()
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z
    assert stage.GetPrimAtPath("/Scene").GetAttribute("xformOp:rotateX").Get() == -90.0
    cams = [p for p in stage.Traverse() if p.IsA(UsdGeom.Camera)]
    assert len(cams) == 2


def test_time_code_mapping():
    """timeCode = t * (video_frames - 1), snapped to whole numbers; without video_frames: one per frame."""
    m = SequenceManifest([0.0, 3 / 16, 7 / 16, 1.0], ["a", "b", "c", "d"], video_frames=17)
    assert sequence_time_codes(m) == [0.0, 3.0, 7.0, 16.0]
    assert sequence_time_codes(SequenceManifest([0.0, 1 / 3, 2 / 3, 1.0], list("abcd"))) == [0.0, 1.0, 2.0, 3.0]
    assert sequence_time_codes(SequenceManifest([0.0, 0.25], ["a", "b"], video_frames=4)) == [0.0, 0.75]
    with pytest.raises(SequenceError, match="collide"):
        sequence_time_codes(SequenceManifest([0.0, 1.0], ["a", "b"], video_frames=1))
    with pytest.raises(SequenceError, match="whole number"):
        sequence_time_codes(SequenceManifest([0.0, 1.0], ["a", "b"], video_frames=2.5))
    assert math.isclose(sequence_time_codes(SequenceManifest([0.5], ["a"], video_frames=1))[0], 0.0)


# ---------------------------------------------------------------------------------------------- bundles


def test_ply_bundle_round_trip(tmp_path, capsys):
    scenes = _sequence(tmp_path / "seq", cameras=True)
    out = tmp_path / "b.zip"
    assert main(["export", str(tmp_path / "seq"), "--to", "ply-bundle", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["cameras.npz", "frame_0000.ply", "frame_0001.ply", "frame_0002.ply",
                                        MANIFEST]
        assert z.read("frame_0001.ply") == (tmp_path / "seq" / "frame_0001.ply").read_bytes()  # copied as is
        z.extractall(tmp_path / "unzipped")
    assert read_manifest(tmp_path / "unzipped") == read_manifest(tmp_path / "seq")
    m, back = load_sequence(tmp_path / "unzipped")
    assert m.cameras == "cameras.npz" and [len(b) for b in back] == list(COUNTS)
    for a, b in zip(scenes, back):
        torch.testing.assert_close(b.means, a.means, atol=1e-6, rtol=0)


def test_spz_frames_and_bundle_of_them(tmp_path):
    """--to spz: a folder of SPZ frames that is itself a sequence; a bundle of it converts frames back to PLY."""
    scenes = _sequence(tmp_path / "seq")
    assert main(["export", str(tmp_path / "seq"), "--to", "spz", "--out", str(tmp_path / "spz")]) == 0
    m, back = load_sequence(tmp_path / "spz")
    assert m.frames == ["frame_0000.spz", "frame_0001.spz", "frame_0002.spz"] and m.times == list(TIMES)
    assert m.video_frames == VIDEO_FRAMES and m.fps == FPS
    for a, b in zip(scenes, back):
        assert len(b) == len(a)
        torch.testing.assert_close(b.means, a.means, atol=2 / 4096, rtol=0)  # SPZ: 12-bit fraction positions
    export_sequence(tmp_path / "spz", tmp_path / "b.zip", to="ply-bundle")
    with zipfile.ZipFile(tmp_path / "b.zip") as z:
        z.extractall(tmp_path / "unzipped")
    m2, back2 = load_sequence(tmp_path / "unzipped")
    assert m2.frames[0] == "frame_0000.ply" and [len(b) for b in back2] == list(COUNTS)


# ---------------------------------------------------------------------------------------------- errors


def test_sequence_errors_are_one_line_exit_2(tmp_path, capsys):
    _sequence(tmp_path / "seq")
    seq = str(tmp_path / "seq")
    (tmp_path / "empty").mkdir()
    save_ply(tmp_path / "one.ply", _scene(5, 0.0))
    (tmp_path / "bad.json").write_text(json.dumps({"format": "lyra-4d-sequence", "version": 1, "times": [0]}))
    cases = [
        (["export", str(tmp_path / "empty"), "--to", "usda", "--out", str(tmp_path / "x.usda")], ["no sequence.json"]),
        (["export", seq, "--to", "colmap", "--out", str(tmp_path / "c")], ["usdz, usda, usdc, ply-bundle, spz"]),
        (["export", seq, "--to", "ply-sh3", "--out", str(tmp_path / "x.ply")], ["ply-bundle"]),
        (["export", str(tmp_path / "one.ply"), "--to", "ply-bundle", "--out", str(tmp_path / "x.zip")],
         ["4D sequence"]),
        (["export", seq, "--to", "usda", "--out", str(tmp_path / "x.usdc")], ["ending in .usda"]),
        (["export", seq, "--to", "ply-bundle", "--out", str(tmp_path / "x.tar")], ["ending in .zip"]),
        (["export", seq, "--to", "spz", "--out", str(tmp_path / "x.spz")], ["folder"]),
        (["export", seq, "--to", "spz", "--out", seq], ["other than the source"]),
        (["export", seq, "--to", "ply-bundle", "--up-axis", "Z", "--out", str(tmp_path / "x.zip")], ["USD exports"]),
        (["export", seq, "--to", "ply-bundle", "--cameras", str(tmp_path / "c.npz"), "--out",
          str(tmp_path / "x.zip")], ["--cameras"]),
        (["export", str(tmp_path / "bad.json"), "--to", "usdz", "--out", str(tmp_path / "x.usdz")], ["malformed"]),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        _one_line_error(capsys, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "empty", "one.ply", "seq"]  # nothing written
    with pytest.raises(SystemExit) as exc:
        main(["export", seq, "--to", "glb", "--out", str(tmp_path / "x.glb")])
    assert exc.value.code == 2
