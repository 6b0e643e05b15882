"""Image -> 3D pipeline, ``lyra generate`` / ``lyra demo``, the cache generator and the gen3c adapter.

Tiny random tokenizer and decoder (saved with save_pretrained), 32x48 pixels, 9 frames per trajectory.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lyra.cache3d import forward_warp, lift_points
from lyra.cameras import Cameras, default_intrinsics, load_cameras_npz, method_trajectories
from lyra.cli.main import main
from lyra.decoder import DecoderConfig, LyraDecoder
from lyra.generator import GeneratorError, SourceView, make_generator
from lyra.generator.cache import CacheGenerator
from lyra.generator.gen3c import Gen3CGenerator, frame_selection
from lyra.pipelines import (
    GenerateConfig,
    PipelineError,
    TextToImageError,
    load_decoder,
    load_text_to_image,
    novel_orbit,
    prepare_source,
    shipped_decoder_dir,
    text_to_image,
)
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE
from lyra.utils.images import save_png

H, W, T, ORBIT = 32, 48, 9, 4
TINY_TOK = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
TINY_DEC = {"width": 16, "depth": 2, "block_pattern": "1M1T", "mamba_d_state": 8, "mamba_headdim": 8,
            "mamba_chunk_size": 8, "attn_heads": 2, "distance_shift": -5.0}
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    CausalVideoVAE(TINY_TOK).save_pretrained(d / "tok")
    LyraDecoder(DecoderConfig(**TINY_DEC)).save_pretrained(d / "dec")
    return d / "tok", d / "dec"


def tiny_args(models: tuple[Path, Path], out: Path) -> list[str]:
    return ["--out", str(out), "--tokenizer", str(models[0]), "--decoder", str(models[1]), "--height", str(H),
            "--width", str(W), "--frames", str(T), "--orbit-frames", str(ORBIT), "--prune", "0.8",
            "--flythrough-stride", "1", "--quiet"]


def scene_image(h: int = 40, w: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth colourful image and a slanted-plane depth (1.5..2.5) with a nearer box."""
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([x, y, 0.5 + 0.5 * torch.sin(6 * x) * torch.cos(4 * y)]).clamp(0, 1)
    depth = (1.5 + x)[None].clone()
    depth[:, h // 3: 2 * h // 3, w // 3: w // 2] = 1.0
    return img, depth


def tiny_source() -> SourceView:
    img, depth = scene_image(H, W)
    return SourceView(img, default_intrinsics(H, W), depth)


# ---------------------------------------------------------------------------------------------- end to end
def test_generate_end_to_end_writes_every_output(models, tmp_path: Path, capsys) -> None:
    from lyra.gaussians import load_gaussians
    from lyra.render.video import read_video

    img, depth = scene_image()
    save_png(tmp_path / "in.png", img)
    np.save(tmp_path / "depth.npy", depth[0].numpy() * 1000.0)  # millimetres
    out = tmp_path / "run"
    rc = main(["generate", str(tmp_path / "in.png"), "--depth", str(tmp_path / "depth.npy"), "--depth-scale", "1000",
               *tiny_args(models, out)])
    assert rc == 0, capsys.readouterr().err
    assert "Gaussians" in capsys.readouterr().out
    for name in ("scene.ply", "scene.spz", "flythrough.mp4", "preview.png", "cameras.npz", "report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    for key in ("input", "depth_scale", "settings", "gaussians", "timings_s", "total_s", "outputs", "video_frames"):
        assert key in report
    for stage in ("load input", "load models", "depth", "prepare", "generate", "decode", "render", "write outputs"):
        assert report["timings_s"][stage] >= 0
    # depth: millimetres / 1000 = metres; the scale maps the median of the resized crop to the default version's
    # photo scale (model folders name no version)
    from lyra.data.reader import crop_resize
    from lyra.utils.shipped import DEFAULT

    d_m = crop_resize(depth[None], torch.eye(3)[None], (H, W), mode="nearest")[0]
    assert report["depth_scale"] * float(d_m[d_m > 0].median()) == pytest.approx(DEFAULT.target_median, rel=1e-4)
    assert report["input"]["depth_source"] == "file"
    # Gaussians: V*T*h*w decoded, 20 % kept; anchored (the default): the source view's H*W pixels (all with depth)
    # replace the kept ones it explains
    n_all = 6 * T * (H // 8) * (W // 8)
    gs = report["gaussians"]
    assert gs["decoded"] == n_all and gs["source_gaussians"] == H * W
    assert 0 < gs["decoded_dropped"] <= int(n_all * 0.2)
    g = load_gaussians(out / "scene.ply")
    assert len(g) == gs["kept"] == H * W + int(n_all * 0.2) - gs["decoded_dropped"]
    assert report["timings_s"]["anchor"] >= 0
    assert report["gaussians"]["kept_per_pixel"] == pytest.approx(len(g) / (H * W), abs=1e-4)
    assert len(load_gaussians(out / "scene.spz")) == len(g)
    video = read_video(out / "flythrough.mp4")
    assert video.shape == (6 * T + ORBIT, 3, H, W) and report["video_frames"] == 6 * T + ORBIT
    cams = load_cameras_npz(out / "cameras.npz")
    assert len(cams) == 6 * T and (cams.height, cams.width) == (H, W)
    assert torch.allclose(cams.w2c[0], torch.eye(4), atol=1e-6)
    from PIL import Image

    with Image.open(out / "preview.png") as im:
        assert im.size == (3 * W * 6, H * 6)  # enlarged x6 to >= 192 rows



def test_target_median_sets_the_scene_scale(models, tmp_path: Path, capsys) -> None:
    img, depth = scene_image()
    save_png(tmp_path / "in.png", img)
    np.save(tmp_path / "depth.npy", depth[0].numpy())
    out = tmp_path / "run"
    rc = main(["generate", str(tmp_path / "in.png"), "--depth", str(tmp_path / "depth.npy"), "--target-median", "6.85",
               "--no-anchor-source", *tiny_args(models, out)])
    assert rc == 0, capsys.readouterr().err
    from lyra.data.reader import crop_resize

    report = json.loads((out / "report.json").read_text())
    # not anchored: the decoder's Gaussians alone, 20 % of them kept
    assert report["gaussians"]["kept"] == int(6 * T * (H // 8) * (W // 8) * 0.2)
    assert "decoded_dropped" not in report["gaussians"] and "anchor" not in report["timings_s"]
    d = crop_resize(depth[None], torch.eye(3)[None], (H, W), mode="nearest")[0]
    assert report["depth_scale"] * float(d[d > 0].median()) == pytest.approx(6.85, rel=1e-4)
    assert report["settings"]["target_median"] == 6.85

def test_generate_errors_are_one_line(models, tmp_path: Path, capsys) -> None:
    img, _ = scene_image()
    save_png(tmp_path / "in.png", img)
    rc = main(["generate", str(tmp_path / "in.png"), *tiny_args(models, tmp_path / "a")])
    err = capsys.readouterr().err
    assert rc == 2 and "no depth for the input image: give --depth FILE" in err and "--depth-model" in err
    assert err.count("\n") == 1
    rc = main(["generate", "--prompt", "a red bicycle", *tiny_args(models, tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and "--prompt needs --t2i-model DIR" in err and err.count("\n") == 1
    rc = main(["generate", "--prompt", "x", "--t2i-model", str(tmp_path / "nope"), *tiny_args(models, tmp_path / "c")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    rc = main(["generate", str(tmp_path / "in.png"), "--depth", "x.npy", *tiny_args(models, tmp_path / "d"),
               "--frames", "10"])
    assert rc == 2 and "1 + 8k" in capsys.readouterr().err
    with pytest.raises(PipelineError, match="--decoder"):
        load_decoder(tmp_path / "missing")


@pytest.mark.skipif((shipped_decoder_dir() / "model.safetensors").is_file(), reason="shipped decoder present")
def test_missing_shipped_decoder_says_to_give_one() -> None:
    with pytest.raises(PipelineError, match="give --decoder DIR"):
        load_decoder("shipped")


@pytest.mark.skipif(not (shipped_decoder_dir() / "model.safetensors").is_file(), reason="no shipped decoder yet")
def test_demo_with_shipped_weights(tmp_path: Path, capsys) -> None:
    pytest.importorskip("skimage")
    out = tmp_path / "lyra_demo"
    assert main(["demo", "--out", str(out), "--orbit-frames", "4", "--flythrough-stride", "8", "--quiet"]) == 0, \
        capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    from lyra.utils.shipped import DEFAULT, DEFAULT_VERSION

    # the default setting (pocket-v2): 176 x 320, 49 frames, 6 trajectories, one Gaussian per 8 x 8 pixels per frame
    h, w = DEFAULT.height, DEFAULT.width
    assert (DEFAULT_VERSION, h, w, DEFAULT.frames) == ("pocket-v2", 176, 320, 49)
    decoded = 6 * DEFAULT.frames * (h // 8) * (w // 8)
    gs = report["gaussians"]
    assert (gs["decoded"], gs["prune_ratio"]) == (decoded, DEFAULT.prune)
    # anchored: the pixels with depth, then the kept decoded Gaussians that the source view does not explain
    assert gs["source_gaussians"] == report["metrics"]["baseline_gaussians"]
    assert gs["kept"] == gs["source_gaussians"] + int(decoded * (1 - DEFAULT.prune)) - gs["decoded_dropped"]
    assert gs["kept_per_pixel"] == round(gs["kept"] / (h * w), 4)
    assert report["video_frames"] == 6 * len(range(0, DEFAULT.frames, 8)) + 4
    assert report["tokenizer"] == DEFAULT_VERSION and report["settings"]["frames"] == DEFAULT.frames
    # the real right photo of the pair scores both the scene and depth lifting at its camera
    m = report["metrics"]
    assert m["view"].startswith("stereo right") and m["cameras"] == 1
    assert 0.8 * h * w < m["baseline_gaussians"] <= h * w  # pixels without ground-truth depth are skipped
    for row in (m["pipeline"], m["baseline_depth_lifting"], m["decoder_only"]):
        assert 8.0 < row["psnr"] < 40.0 and 0.0 < row["ssim"] < 1.0
    # anchoring keeps the photo's own pixels: clearly sharper than the decoder's blurred scene at the real view, and
    # the fill makes the scene beat plain depth lifting of the photo on both metrics
    assert m["pipeline"]["ssim"] > m["decoder_only"]["ssim"] + 0.2
    lift = m["baseline_depth_lifting"]
    assert m["pipeline"]["psnr"] > lift["psnr"] + 2.0 and m["pipeline"]["ssim"] > lift["ssim"]
    assert "the decoder alone" in capsys.readouterr().out
    assert report["timings_s"]["metrics"] >= 0


def test_stereo_view_is_the_right_camera_of_the_pair() -> None:
    """Depth lifting of the left photo matches the real right photo best with the camera at +baseline (not -, not 0)."""
    pytest.importorskip("skimage")
    from lyra.cache3d import depth_to_gaussians
    from lyra.depth import motorcycle_depth, motorcycle_right_view
    from lyra.eval import ssim
    from lyra.pipelines import prepare_source, render_views, stereo_view

    image, depth, K = motorcycle_depth()
    right, K_right, baseline = motorcycle_right_view()
    assert baseline == pytest.approx(0.193001)
    src, scale = prepare_source(image, depth, K, 64, 112)
    g = depth_to_gaussians(src.image, src.depth, src.camera)
    scores = {}
    for b in (-baseline, 0.0, baseline):
        cams, target = stereo_view(right, K_right, b, scale, 64, 112)
        assert target.shape == (1, 3, 64, 112) and cams.w2c[0, 0, 3] == pytest.approx(-b * scale)
        scores[b] = float(ssim(render_views(g, cams, background=(1.0, 1.0, 1.0))[0], target))
    assert scores[baseline] > scores[0.0] + 0.05 and scores[baseline] > scores[-baseline] + 0.05, scores


def test_shipped_versions_and_pairs(tmp_path: Path, capsys) -> None:
    from lyra.utils.shipped import DEFAULT, SETTINGS, shipped_dir, shipped_version

    assert shipped_version("shipped") == "pocket-v2" and shipped_version("pocket") == "pocket-v1"
    assert shipped_version("pocket-v2") == "pocket-v2" and shipped_version(tmp_path) is None
    assert shipped_dir("tokenizer", "pocket-v2").name == "tokenizer-v2"
    assert shipped_decoder_dir("pocket").name == "decoder"
    assert (GenerateConfig().height, GenerateConfig().frames) == (DEFAULT.height, DEFAULT.frames)
    s2 = SETTINGS["pocket-v2"]  # about one kept Gaussian per pixel of a view at the v2 setting
    assert 6 * s2.frames * (s2.height // 8) * (s2.width // 8) * (1 - s2.prune) > s2.height * s2.width
    with pytest.raises(ValueError, match="unknown shipped decoder"):
        shipped_dir("decoder", "pocket-v9")
    # a decoder reads only its own tokenizer's latents: mixing shipped versions is refused before loading
    rc = main(["demo", "--out", str(tmp_path / "x"), "--tokenizer", "pocket-v2", "--decoder", "pocket-v1", "--quiet"])
    assert rc == 2 and "reads the latents of tokenizer pocket-v1" in capsys.readouterr().err


def test_version_sets_the_defaults_and_explicit_options_win() -> None:
    """--version (or the version --tokenizer/--decoder names) gives the models and the setting; explicit flags win."""
    from lyra.cli.generate_cmd import apply_version, config_from_args
    from lyra.cli.main import build_parser
    from lyra.utils.shipped import SETTINGS, shipped_version

    def parsed(*argv: str):
        args = build_parser().parse_args(["demo", *argv])
        apply_version(args)
        return args

    a = parsed()
    v2 = SETTINGS["pocket-v2"]
    assert (a.version, a.tokenizer, a.decoder, a.height, a.width, a.frames, a.prune) == \
        ("pocket-v2", "pocket-v2", "pocket-v2", 176, 320, 49, v2.prune)
    for argv in (["--version", "pocket-v1"], ["--tokenizer", "pocket-v1"], ["--decoder", "pocket"]):
        a = parsed(*argv)  # the fast setting
        assert (a.version, a.tokenizer, shipped_version(a.decoder), a.height, a.width, a.frames, a.prune) == \
            ("pocket-v1", "pocket-v1", "pocket-v1", 64, 112, 17, 0.8)
    for argv in (["--version", "pocket-v2"], ["--tokenizer", "pocket-v2"], ["--decoder", "pocket-v2"]):
        a = parsed(*argv)
        assert (a.version, a.tokenizer, a.decoder, a.height, a.width, a.frames, a.prune, a.flythrough_stride) == \
            ("pocket-v2", "pocket-v2", "pocket-v2", v2.height, v2.width, v2.frames, v2.prune, v2.flythrough_stride)
        assert config_from_args(a, "cache").target_median == v2.target_median  # a photo input's scale
        assert config_from_args(a, "oracle", target_median=None).target_median is None  # a world keeps its own
    a = parsed("--version", "pocket-v2", "--height", "64", "--width", "112", "--frames", "17", "--prune", "0.5",
               "--decoder", "runs/some-checkpoint", "--target-median", "3")
    assert (a.tokenizer, a.decoder, a.height, a.width, a.frames, a.prune) == \
        ("pocket-v2", "runs/some-checkpoint", 64, 112, 17, 0.5)
    assert config_from_args(a, "cache").target_median == 3.0
    assert parsed("--version", "shipped").version == "pocket-v2"


def test_flythrough_stride_shows_every_kth_trajectory_frame(models, tmp_path: Path, capsys) -> None:
    from lyra.render.video import read_video

    out = tmp_path / "demo"
    assert main(["demo", "--world", *tiny_args(models, out), "--flythrough-stride", "4"]) == 0, \
        capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    T = report["frames_per_trajectory"]
    assert report["video_frames"] == 6 * len(range(0, T, 4)) + report["orbit_frames"]
    assert read_video(out / "flythrough.mp4").shape[0] == report["video_frames"]
    assert len(load_cameras_npz(out / "cameras.npz")) == 6 * T  # every trajectory camera is still written
    assert main(["demo", "--world", *tiny_args(models, tmp_path / "bad"), "--flythrough-stride", "0"]) == 2
    assert "--flythrough-stride must be >= 1" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_demo_world_reports_metrics(models, tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    rc = main(["demo", "--world", *tiny_args(models, out)])
    assert rc == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "PSNR" in text and "baseline" in text
    report = json.loads((out / "report.json").read_text())
    m = report["metrics"]
    assert m["cameras"] == ORBIT and report["depth_scale"] == 1.0
    for k in ("pipeline", "baseline_depth_lifting"):
        assert np.isfinite(m[k]["psnr"]) and -1 <= m[k]["ssim"] <= 1
    assert m["baseline_gaussians"] == H * W and "metrics" in report["timings_s"]
    # an untrained decoder is far from the truth; exact depth lifting is close to it, and anchoring to the source
    # view (the default) recovers most of that
    assert m["baseline_depth_lifting"]["psnr"] > m["decoder_only"]["psnr"] + 3
    assert m["pipeline"]["psnr"] > m["decoder_only"]["psnr"] + 3
    assert "decoder alone" in text


def test_a_source_without_depth_is_decoded_without_anchoring(models, tmp_path: Path, capsys) -> None:
    """The oracle (like gen3c) needs no source depth; with none, anchoring is skipped with a note, not an error."""
    from lyra.pipelines import run_pipeline
    from lyra.world import generate_world

    cfg = GenerateConfig(height=H, width=W, frames=T, generator="oracle", tokenizer=str(models[0]),
                         decoder=str(models[1]), orbit_frames=ORBIT)
    src = tiny_source()
    result = run_pipeline(SourceView(src.image, src.K), cfg, tmp_path / "run", world=generate_world(0, "room"))
    assert "not anchored" in capsys.readouterr().err
    assert result.decoded is None and "decoded_dropped" not in result.report["gaussians"]
    assert len(result.gaussians) == int(6 * T * (H // 8) * (W // 8) * (1 - cfg.prune))


def test_pipeline_never_decodes_teacher_frames(models, tmp_path: Path, monkeypatch) -> None:
    from lyra.pipelines import run_pipeline

    cfg = GenerateConfig(height=H, width=W, frames=T, tokenizer=str(models[0]), decoder=str(models[1]),
                         orbit_frames=ORBIT)
    tok = CausalVideoVAE.from_pretrained(models[0]).eval()
    monkeypatch.setattr(tok, "decode", lambda z: pytest.fail("the pipeline decoded teacher frames"))
    result = run_pipeline(tiny_source(), cfg, tmp_path / "run", models=(tok, load_decoder(models[1])))
    assert all(s.frames is None for s in result.samples) and len(result.gaussians) > 0


# ---------------------------------------------------------------------------------------------- stages
def test_prepare_source_crops_resizes_and_scales() -> None:
    img, depth = scene_image(40, 90)  # wider than 32:48 -> crop the sides
    K = default_intrinsics(40, 90)
    src, scale = prepare_source(img, depth * 3.0, K, H, W)
    assert src.image.shape == (3, H, W) and src.depth.shape == (1, H, W)
    assert float(src.depth[src.depth > 0].median()) == pytest.approx(2.0, rel=1e-5)
    # crop 40 x 60 out of 40 x 90 (x0 = 15), then x 0.8: the principal point stays centred
    assert src.K[0, 2].item() == pytest.approx((45 - 15) * 0.8) and src.K[0, 0].item() == pytest.approx(K[0, 0] * 0.8)
    src2, scale2 = prepare_source(img, depth, None, H, W, target_median=None)
    assert scale2 == 1.0 and src2.K[0, 0] > 0
    with pytest.raises(PipelineError):
        prepare_source(img, depth[:, :10], None, H, W)


def test_novel_orbit_is_off_the_trajectories() -> None:
    src = tiny_source()
    cams = novel_orbit(src, 8)
    trajs = Cameras.cat(method_trajectories(src.K, H, W, T))
    d = torch.cdist(cams.centers, trajs.centers)
    assert len(cams) == 8 and d.min() > 0.05


def test_cache_generator_frames_equal_the_warp_where_visible() -> None:
    src = tiny_source()
    trajs = method_trajectories(src.K, H, W, T)[:2]
    torch.manual_seed(0)
    gen = make_generator("cache", tokenizer=CausalVideoVAE(TINY_TOK).eval(), footprint="nearest")
    assert isinstance(gen, CacheGenerator) and gen.needs_source
    warped = gen.warp(trajs, src)
    cache = lift_points(src.image, src.depth, src.camera)
    for cams, w in zip(trajs, warped, strict=True):
        ref = forward_warp(cache, cams, footprint="nearest")
        vis = ref.mask.bool().expand_as(ref.rgb)
        assert torch.equal(w.mask, ref.mask) and torch.equal(w.depth, ref.depth)
        assert torch.equal(w.frames[vis], ref.rgb[vis])
        assert 0 < w.mask.mean() < 1 and w.frames.min() >= 0 and w.frames.max() <= 1
        # holes are filled (no background black left where nothing landed)
        assert (w.frames[~vis] != 0).float().mean() > 0.9
        # frame 0 is the source camera: the source image where the cache is visible
        v0 = w.mask[0].bool().expand(3, -1, -1)
        assert torch.allclose(w.frames[0][v0], src.image[v0])
    samples = gen.generate(trajs, src)
    assert samples[0].frames.shape == (T, 3, H, W) and samples[0].latents.shape == (16, 2, H // 8, W // 8)
    assert torch.equal(samples[1].depth, warped[1].depth)
    with pytest.raises(GeneratorError, match="depth"):
        gen.generate(trajs, SourceView(src.image, src.K))


def test_gen3c_adapter_reads_the_official_layout(tmp_path: Path) -> None:
    from lyra.data import Layout
    from lyra.data.writer import write_scene

    torch.manual_seed(0)
    tok = CausalVideoVAE(TINY_TOK).eval()
    with torch.no_grad():
        tok.set_latent_stats(torch.randn(16, 4) * 0.1, torch.rand(16, 4) + 0.5)
    src = tiny_source()
    trajs = method_trajectories(src.K, H, W, T)[:3]
    samples = CacheGenerator(tok).generate(trajs, src)
    write_scene(Layout(tmp_path), "photo", samples, tok.normalize_latents)
    assert frame_selection(121, 17).tolist()[:3] == [0, 8, 15] and frame_selection(9, None).tolist() == list(range(9))

    gen = make_generator("gen3c", tokenizer=tok, root=tmp_path)
    assert isinstance(gen, Gen3CGenerator) and gen.key == "photo" and gen.views == [0, 1, 2]
    back = gen.generate(trajs)
    for a, b in zip(samples, back, strict=True):
        assert torch.allclose(a.latents, b.latents, atol=1e-5)  # stored latents, de-normalised
        assert torch.allclose(a.cameras.w2c, b.cameras.w2c, atol=1e-5) and torch.allclose(a.cameras.K, b.cameras.K)
        assert (a.frames - b.frames).abs().mean() < 0.15  # mp4 (lossy; random-tokenizer frames are noise)
        assert b.depth is not None and torch.allclose(a.depth, b.depth, rtol=1e-3, atol=1e-3)
    # pocket re-sampling: fewer frames and another size -> frames re-encoded, intrinsics scaled
    small = Gen3CGenerator(tok, root=tmp_path, size=(16, 32), frames=1).generate()
    assert small[0].frames.shape == (1, 3, 16, 32) and small[0].latents.shape == (16, 1, 2, 4)
    assert len(small[0].cameras) == 1 and small[0].cameras.width == 32
    with pytest.raises(GeneratorError, match="trajectories"):
        gen.generate(trajs[:2])
    with pytest.raises(GeneratorError, match="no clip"):
        Gen3CGenerator(tok, root=tmp_path, key="other")


# ---------------------------------------------------------------------------------------------- text to image
class _FakeT2I:
    """Stands in for a diffusers pipeline: returns ``.images`` with one PIL image."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __call__(self, prompt: str, **kw):
        from types import SimpleNamespace

        from PIL import Image

        self.calls.append((prompt, kw))
        arr = np.zeros((24, 40, 3), np.uint8)
        arr[..., 0] = 255
        return SimpleNamespace(images=[Image.fromarray(arr)])


def test_text_to_image_wiring_and_errors(tmp_path: Path) -> None:
    pipe = _FakeT2I()
    img = text_to_image("a red wall", pipe, seed=3, steps=2)
    assert img.shape == (3, 24, 40) and img[0].min() == 1.0 and img[1].max() == 0.0
    prompt, kw = pipe.calls[0]
    assert prompt == "a red wall" and kw["num_inference_steps"] == 2 and "height" not in kw
    with pytest.raises(TextToImageError, match="empty"):
        text_to_image("  ", pipe)
    with pytest.raises(TextToImageError, match="--t2i-model"):
        load_text_to_image(None)
    with pytest.raises(TextToImageError, match="model_index.json"):
        load_text_to_image(tmp_path)


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="the tiny Stable Diffusion test needs transformers (CLIP text "
                    "encoder); diffusers has no text-to-image pipeline without it")
def test_text_to_image_tiny_stable_diffusion(tmp_path: Path) -> None:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                norm_num_groups=4, attention_head_dim=4)
    vae = AutoencoderKL(block_out_channels=(8,), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
                        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",))
    vocab = {t: i for i, t in enumerate(["<|startoftext|>", "<|endoftext|>", "a", "red", "wall", "!"])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"), model_max_length=77)
    text = CLIPTextModel(CLIPTextConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                        num_hidden_layers=1, vocab_size=len(vocab), max_position_embeddings=77))
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=tokenizer,
                                   scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(tmp_path / "sd")
    loaded = load_text_to_image(tmp_path / "sd")
    img = text_to_image("a red wall", loaded, steps=2, height=16, width=16)
    assert img.shape == (3, 16, 16) and torch.isfinite(img).all()


def test_config_validation() -> None:
    with pytest.raises(PipelineError, match="16"):
        GenerateConfig(height=40).validate()
    with pytest.raises(PipelineError, match="prune"):
        GenerateConfig(prune=1.0).validate()
