"""The ``diffusion`` generator (GEN3C DiT on the warped 3D cache) and ``--generator`` in ``lyra demo --world``.

Tiny random DiT saved to a folder (``save_pretrained``), the tiny tokenizer / decoder of test_pipeline, 32x48, 9 frames,
2 sampler steps.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

from lyra.cameras import default_intrinsics, method_trajectories  # noqa: E402
from lyra.cli.main import main  # noqa: E402
from lyra.decoder import DecoderConfig, LyraDecoder  # noqa: E402
from lyra.generator import SourceView, make_generator  # noqa: E402
from lyra.generator.diffusion import DiffusionError, Gen3CNet, Gen3CNetConfig, PromptEmbeddings  # noqa: E402
from lyra.generator.diffusion.generator import NOT_SHIPPED, resolve_model_dir  # noqa: E402
from lyra.generator.diffusion.model import save_pretrained  # noqa: E402
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE  # noqa: E402

H, W, T, ORBIT = 32, 48, 9, 4
TINY_TOK = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
TINY_DEC = {"width": 16, "depth": 2, "block_pattern": "1M1T", "mamba_d_state": 8, "mamba_headdim": 8,
            "mamba_chunk_size": 8, "attn_heads": 2, "distance_shift": -5.0}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(tokenizer, decoder, diffusion network) folders of tiny random models."""
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    CausalVideoVAE(TINY_TOK).save_pretrained(d / "tok")
    LyraDecoder(DecoderConfig(**TINY_DEC)).save_pretrained(d / "dec")
    net = Gen3CNet(Gen3CNetConfig.tiny(latent_channels=TINY_TOK.latent_channels)).eval()
    save_pretrained(net, d / "dit")
    return d / "tok", d / "dec", d / "dit"


def source_view(shift: float = 0.0, near: float = 1.0) -> SourceView:
    """A smooth image over a slanted-plane depth with a box at depth ``near``; ``shift`` changes the colours."""
    y, x = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    img = torch.stack([x, y, 0.5 + 0.5 * torch.sin(6 * x + shift) * torch.cos(4 * y)]).clamp(0, 1)
    depth = (1.5 + x)[None].clone()
    depth[:, H // 3: 2 * H // 3, W // 3: W // 2] = near
    return SourceView(img, default_intrinsics(H, W), depth)


def tiny_args(models: tuple[Path, Path, Path], out: Path) -> list[str]:
    return ["--out", str(out), "--tokenizer", str(models[0]), "--decoder", str(models[1]), "--height", str(H),
            "--width", str(W), "--frames", str(T), "--orbit-frames", str(ORBIT), "--prune", "0.8",
            "--flythrough-stride", "1", "--quiet"]


def test_diffusion_generator_samples_shapes_seeds_and_conditioning(models) -> None:
    tok = CausalVideoVAE.from_pretrained(models[0]).eval()
    gen = make_generator("diffusion", tokenizer=tok, model=str(models[2]), steps=2)
    assert gen.name == "diffusion" and gen.sampler.steps == 2 and gen.needs_source
    trajs = method_trajectories(default_intrinsics(H, W), H, W, T, seed=0)[:2]
    src = source_view()
    a = gen.generate(trajs, src, seed=3)
    assert len(a) == 2
    for s, cams in zip(a, trajs):
        assert s.latents.shape == (TINY_TOK.latent_channels, 2, H // 8, W // 8) and torch.isfinite(s.latents).all()
        assert s.frames is not None and s.frames.shape == (T, 3, H, W)
        assert s.frames.min() >= 0 and s.frames.max() <= 1
        assert s.depth is not None and s.depth.shape == (T, 1, H, W) and s.cameras is cams
    assert not torch.allclose(a[0].latents, a[1].latents)  # each trajectory its own cache and noise
    b = gen.generate(trajs, src, seed=3)
    assert all(torch.equal(x.latents, y.latents) for x, y in zip(a, b))  # seeded
    assert not torch.allclose(a[0].latents, gen.generate(trajs, src, seed=4)[0].latents)
    # the same image with another depth changes only the warped cache: it reaches the network
    moved = gen.generate(trajs, source_view(near=2.2), seed=3)
    assert not torch.allclose(a[1].latents, moved[1].latents, atol=1e-5)
    other = gen.generate(trajs, source_view(shift=2.0), seed=3)
    assert not torch.allclose(a[0].latents, other[0].latents, atol=1e-5)
    # latents only: no tokenizer decode, same latents
    gen.decode_frames = False
    tok.decode = lambda z: pytest.fail("decoded frames although decode_frames is False")  # type: ignore[method-assign]
    c = gen.generate(trajs, src, seed=3)
    assert all(s.frames is None for s in c) and torch.equal(c[0].latents, a[0].latents)


def test_long_trajectories_are_made_of_autoregressive_chunks(models) -> None:
    from lyra.tokenizer.metrics import video_to_frames

    tok = CausalVideoVAE.from_pretrained(models[0]).eval()
    gen = make_generator("diffusion", tokenizer=tok, model=str(models[2]), steps=2, chunk_frames=T)
    long = 2 * T - 1  # two chunks of T frames sharing one
    traj = method_trajectories(default_intrinsics(H, W), H, W, long, seed=0)[1:2]
    src = source_view()
    calls = []
    inner = gen._chunk_latents

    def spy(image, warped, mask, seed):
        raw = inner(image, warped, mask, seed)
        calls.append((image.clone(), warped.shape[0], seed, video_to_frames(tok.decode(raw))))
        return raw

    gen._chunk_latents = spy
    (a,) = gen.generate(traj, src, seed=3)
    assert [(c[1], c[2]) for c in calls] == [(T, 3000), (T, 3000 + 7919)]  # chunk lengths and seeds
    assert torch.equal(calls[0][0], src.image)  # chunk 0: the source view
    assert torch.equal(calls[1][0], calls[0][3][-1])  # chunk 1: chunk 0's last decoded frame
    assert a.latents.shape == (TINY_TOK.latent_channels, 1 + (long - 1) // 8, H // 8, W // 8)
    assert a.frames is not None and a.frames.shape == (long, 3, H, W) and a.depth.shape == (long, 1, H, W)
    assert torch.equal(a.latents, gen.generate(traj, src, seed=3)[0].latents)  # seeded
    one = make_generator("diffusion", tokenizer=tok, model=str(models[2]), steps=2)  # default 121: one chunk
    assert one.chunk_frames == 121 and one.generate(traj, src, seed=3)[0].latents.shape == a.latents.shape
    with pytest.raises(DiffusionError, match="do not split into 9-frame chunks"):
        gen.generate(method_trajectories(default_intrinsics(H, W), H, W, T + 4, seed=0)[:1], src)


def test_diffusion_generator_reads_text_embeddings_and_checks_channels(models, tmp_path: Path) -> None:
    from lyra.generator.diffusion import load_diffusion_net

    tok = CausalVideoVAE.from_pretrained(models[0]).eval()
    net, text = load_diffusion_net(str(models[2]))
    assert torch.equal(text.prompt, torch.zeros(net.config.text_tokens, net.config.text_dim))  # no file: zeros
    d = tmp_path / "with_text"
    save_pretrained(net, d)
    emb = PromptEmbeddings.random(net.config, seed=1)
    emb.save(d / "text_embeddings.safetensors")
    assert torch.equal(load_diffusion_net(str(d))[1].prompt, emb.prompt)
    assert make_generator("diffusion", tokenizer=tok, model=str(d), steps=2).sampler.guidance == 1.0  # official
    (d / "generation_config.json").write_text('{"guidance": 0.5}')
    assert make_generator("diffusion", tokenizer=tok, model=str(d), steps=2).sampler.guidance == 0.5
    assert make_generator("diffusion", tokenizer=tok, model=str(d), guidance=2.0).sampler.guidance == 2.0
    (d / "generation_config.json").write_text('{"chunk_frames": 5}')  # no "guidance": the official g
    gen = make_generator("diffusion", tokenizer=tok, model=str(d), steps=2)
    assert gen.sampler.guidance == 1.0 and gen.chunk_frames == 5 and gen.sampler.noise_scale == 1.0
    (d / "generation_config.json").write_text('{"noise_scale": 0.25}')
    assert make_generator("diffusion", tokenizer=tok, model=str(d), steps=2).sampler.noise_scale == 0.25
    assert make_generator("diffusion", tokenizer=tok, model=str(d), noise_scale=1.0).sampler.noise_scale == 1.0
    for bad, key in (('{"guidance": "strong"}', "guidance"), ('{"chunk_frames": 1}', "chunk_frames"), ("[]", ""),
                     ('{"noise_scale": 2}', "noise_scale")):
        (d / "generation_config.json").write_text(bad)
        with pytest.raises(DiffusionError, match=f"generation_config.json.*{key}"):
            make_generator("diffusion", tokenizer=tok, model=str(d), steps=2)
    save_pretrained(Gen3CNet(Gen3CNetConfig.tiny()), tmp_path / "c4")  # 4 latent channels
    with pytest.raises(DiffusionError, match="4 latent channels but the tokenizer has 16"):
        make_generator("diffusion", tokenizer=tok, model=str(tmp_path / "c4"), steps=2)


def test_shipped_pocket_teacher_loads_and_names_its_tokenizer() -> None:
    from lyra.cli.generate_cmd import diffusion_options
    from lyra.cli.main import CLIError
    from lyra.generator.diffusion.generator import (
        SHIPPED_DIR,
        default_chunk_frames,
        default_guidance,
        default_noise_scale,
        load_diffusion_net,
    )

    assert resolve_model_dir(None) == resolve_model_dir("shipped") == SHIPPED_DIR
    net = load_diffusion_net(None)[0]
    assert net.config == Gen3CNetConfig.pocket(cache_fill="inpaint") and net.config.tokenizer == "pocket-v2"
    assert next(net.parameters()).dtype == torch.float32 and (SHIPPED_DIR / "MODEL_CARD.md").is_file()
    assert default_guidance(None) == 0.0  # its generation_config.json: g = 0 measured better (MODEL_CARD.md)
    assert default_chunk_frames(None) == 49  # and chunks of its training length
    assert default_noise_scale(None) == 0.5  # and the initial noise halved (measured inside the holes)
    args = argparse.Namespace(diffusion_model=None, diffusion_steps=35, diffusion_guidance=None,
                              diffusion_noise_scale=None, tokenizer="pocket-v2")
    tau = default_noise_scale(None)
    assert diffusion_options(args) == {"model": None, "steps": 35, "guidance": 0.0, "noise_scale": tau}
    args.diffusion_noise_scale = 1.5
    with pytest.raises(CLIError, match="--diffusion-noise-scale must be in"):
        diffusion_options(args)
    args.diffusion_noise_scale = None
    args.diffusion_guidance, args.tokenizer = 1.0, "pocket-v1"
    with pytest.raises(CLIError, match="samples the latents of tokenizer pocket-v2, not of --tokenizer pocket-v1"):
        diffusion_options(args)


def test_missing_weights_are_one_line(models, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("lyra.generator.diffusion.generator.SHIPPED_DIR", tmp_path / "not-shipped")
    with pytest.raises(DiffusionError, match=NOT_SHIPPED):
        resolve_model_dir(None)
    cases = [([], NOT_SHIPPED),
             (["--diffusion-model", "nvidia/GEN3C-Cosmos-7B"], "hf download nvidia/GEN3C-Cosmos-7B --local-dir DIR"),
             (["--diffusion-model", str(tmp_path)], "no config.json + model.safetensors")]
    for i, (extra, msg) in enumerate(cases):
        out = tmp_path / f"o{i}"
        rc = main(["demo", "--world", "--generator", "diffusion", *extra, *tiny_args(models, out)])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and msg in err and len(err.splitlines()) == 1 and not out.exists(), err
    rc = main(["generate", "x.png", "--generator", "diffusion", *tiny_args(models, tmp_path / "g")])
    assert rc == 2 and NOT_SHIPPED in capsys.readouterr().err
    rc = main(["demo", "--generator", "oracle", *tiny_args(models, tmp_path / "p")])
    assert rc == 2 and "add --world" in capsys.readouterr().err


@pytest.mark.parametrize("generator", ["oracle", "cache", "diffusion"])
def test_demo_world_with_a_generator(models, tmp_path: Path, capsys, generator: str) -> None:
    out = tmp_path / "demo"
    extra = {"oracle": [],  # the --world default
             "cache": ["--generator", "cache"],
             "diffusion": ["--generator", "diffusion", "--diffusion-model", str(models[2]), "--diffusion-steps", "2"]}
    rc = main(["demo", "--world", *extra[generator], *tiny_args(models, out)])
    assert rc == 0, capsys.readouterr().err
    assert f"pipeline ({generator} generator" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["generator"]["name"] == generator and report["settings"]["generator"] == generator
    assert report["metrics"]["generator"] == generator and report["metrics"]["cameras"] == ORBIT
    for k in ("pipeline", "baseline_depth_lifting"):
        assert -1 <= report["metrics"][k]["ssim"] <= 1
    if generator == "diffusion":
        assert report["generator"]["steps"] == 2 and report["generator"]["model"] == str(models[2])


def test_generate_and_sdg_accept_the_diffusion_generator(models, tmp_path: Path, capsys, monkeypatch) -> None:
    import numpy as np

    from lyra.data import Layout
    from lyra.utils.images import save_png

    dit = ["--diffusion-model", str(models[2]), "--diffusion-steps", "2"]
    src = source_view()
    save_png(tmp_path / "in.png", src.image)
    np.save(tmp_path / "depth.npy", src.depth[0].numpy())
    out = tmp_path / "gen"
    rc = main(["generate", str(tmp_path / "in.png"), "--depth", str(tmp_path / "depth.npy"), "--generator",
               "diffusion", *dit, *tiny_args(models, out)])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["generator"] == "diffusion"
    assert report["settings"]["generator_options"] == {"model": str(models[2]), "steps": 2, "guidance": 1.0,
                                                       "noise_scale": 1.0}
    rc = main(["generate", str(tmp_path / "in.png"), "--diffusion-model", str(models[2]), *tiny_args(models, out)])
    assert rc == 2 and "only used with --generator diffusion" in capsys.readouterr().err

    data = tmp_path / "sdg"
    rc = main(["sdg", "--generator", "diffusion", *dit, "--scenes", "1", "--out", str(data), "--frames", str(T),
               "--height", str(H), "--width", str(W), "--tokenizer", str(models[0]), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    L = Layout(data)
    assert L.views() == [0, 1, 2, 3, 4, 5] and len(L.scene_keys()) == 1
    monkeypatch.setattr("lyra.generator.diffusion.generator.SHIPPED_DIR", tmp_path / "not-shipped")
    rc = main(["sdg", "--generator", "diffusion", "--scenes", "1", "--out", str(tmp_path / "sdg2"), "--tokenizer",
               str(models[0]), "--frames", str(T), "--height", str(H), "--width", str(W), "--quiet"])
    assert rc == 2 and NOT_SHIPPED in capsys.readouterr().err
