"""Generator protocol, registry and the oracle backend (tiny random tokenizer, tiny frames)."""

from __future__ import annotations

import pytest
import torch

from lyra.cameras import default_intrinsics, method_trajectories
from lyra.generator import (
    GENERATORS,
    Generator,
    GeneratorError,
    OracleGenerator,
    SourceView,
    TrajectorySample,
    make_generator,
    register_generator,
    teacher_roundtrip,
)
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE
from lyra.world import generate_world

TINY = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
H, W, T = 32, 48, 9


@pytest.fixture(scope="module")
def tok() -> CausalVideoVAE:
    torch.manual_seed(0)
    return CausalVideoVAE(TINY).eval()


def test_registry_has_oracle_and_rejects_unknown(tok) -> None:
    assert "oracle" in GENERATORS
    gen = make_generator("oracle", world=generate_world(1, "room"), tokenizer=tok)
    assert isinstance(gen, OracleGenerator) and not gen.needs_source
    with pytest.raises(GeneratorError, match="unknown generator 'nope'.*diffusion.*oracle"):
        make_generator("nope", tokenizer=tok)


def test_diffusion_registers_on_first_use(tok) -> None:
    pytest.importorskip("diffusers")
    gen = make_generator("diffusion", tokenizer=tok)  # registered lazily; no model: the shipped pocket teacher
    assert "diffusion" in GENERATORS
    assert gen.net.config.tokenizer == "pocket-v2" and gen.sampler.guidance == 0.0  # its generation_config.json


def test_register_custom_generator(tok) -> None:
    class Echo(Generator):
        name = "echo-test"

        def __init__(self, tokenizer=None, world=None):
            self.tokenizer = tokenizer

        def generate(self, trajectories, source=None, *, seed=0):
            out = []
            for cams in trajectories:
                frames = source.image[None].expand(len(cams), -1, -1, -1)
                z, dec = teacher_roundtrip(self.tokenizer, frames)
                out.append(TrajectorySample(dec, z, cams, None))
            return out

    register_generator("echo-test")(Echo)
    try:
        with pytest.raises(GeneratorError, match="already registered"):
            register_generator("echo-test")(lambda **kw: None)
        K = default_intrinsics(H, W)
        trajs = method_trajectories(K, H, W, 1, seed=0)[:2]
        src = SourceView(torch.rand(3, H, W), K)
        out = make_generator("echo-test", tokenizer=tok).generate(trajs, src)
        assert len(out) == 2 and out[0].frames.shape == (1, 3, H, W) and out[0].latents.shape == (16, 1, 4, 6)
    finally:
        GENERATORS.pop("echo-test", None)


def test_oracle_matches_world_render_and_tokenizer(tok) -> None:
    world = generate_world(3, "yard")
    K = default_intrinsics(H, W)
    trajs = method_trajectories(K, H, W, T, seed=5)[::3]  # two trajectories keep it fast
    out = OracleGenerator(world, tok).generate(trajs)
    assert len(out) == 2
    for s, cams in zip(out, trajs):
        ref = world.render(cams)
        with torch.no_grad():
            z = tok.encode(ref.rgb.permute(1, 0, 2, 3)[None] * 2 - 1)
            dec = ((tok.decode(z)[0].permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1)
        assert s.frames.shape == (T, 3, H, W) and s.frames.dtype == torch.float32
        assert s.latents.shape == (16, 2, H // 8, W // 8)
        torch.testing.assert_close(s.latents, z[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(s.frames, dec, atol=1e-5, rtol=1e-5)
        assert 0.0 <= float(s.frames.min()) and float(s.frames.max()) <= 1.0
        torch.testing.assert_close(s.depth, ref.depth)
        assert torch.equal(s.cameras.w2c, cams.w2c) and torch.equal(s.cameras.K, cams.K)


def test_decode_frames_off_keeps_the_latents_and_skips_the_decode(tok, tmp_path, monkeypatch) -> None:
    from lyra.data.layout import DataError, Layout
    from lyra.data.writer import write_trajectory

    world = generate_world(3, "yard")
    K = default_intrinsics(H, W)
    trajs = method_trajectories(K, H, W, T, seed=5)[:1]
    full = OracleGenerator(world, tok).generate(trajs)[0]
    gen = OracleGenerator(world, tok)
    gen.decode_frames = False
    monkeypatch.setattr(tok, "decode", lambda z: pytest.fail("decode called with decode_frames=False"))
    lean = gen.generate(trajs)[0]
    assert lean.frames is None and torch.equal(lean.latents, full.latents) and torch.equal(lean.depth, full.depth)
    with pytest.raises(DataError, match="no teacher frames"):
        write_trajectory(Layout(tmp_path), 0, "k", lean, lean.latents)


def test_oracle_source_view(tok) -> None:
    world = generate_world(2, "room")
    K = default_intrinsics(H, W)
    cam = method_trajectories(K, H, W, 1, seed=0)[0]
    src = OracleGenerator(world, tok).render_source(cam)
    assert src.image.shape == (3, H, W) and src.depth.shape == (1, H, W)
    assert torch.equal(src.camera.w2c, cam.w2c)


def test_validation_errors(tok) -> None:
    K = default_intrinsics(H, W)
    cams = method_trajectories(K, H, W, T, seed=0)[0]
    with pytest.raises(GeneratorError, match=r"image must be \[3, H, W\]"):
        SourceView(torch.rand(H, W), K)
    with pytest.raises(GeneratorError, match="depth must be"):
        SourceView(torch.rand(3, H, W), K, torch.rand(1, H, W + 1))
    with pytest.raises(GeneratorError, match="frames but"):
        TrajectorySample(torch.rand(T - 1, 3, H, W), torch.zeros(16, 2, 4, 6), cams)
    with pytest.raises(GeneratorError, match="latents must be"):
        TrajectorySample(torch.rand(T, 3, H, W), torch.zeros(2, 4, 6), cams)
    with pytest.raises(GeneratorError, match="frames must be"):
        teacher_roundtrip(tok, torch.rand(3, H, W))
    with pytest.raises(GeneratorError, match="needs a world and a tokenizer"):
        OracleGenerator(None, tok)
