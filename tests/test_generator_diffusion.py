"""The diffusion teacher: GEN3C network parity (official keys, shapes and forward), official loading, the sampler
against the official loop, guidance, conditioning order, autoregressive chunks, text embeddings."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers", reason="the diffusion teacher needs diffusers: pip install -e '.[hf]'")

from gen3c_reference import official_shapes, random_official_state, reference_forward  # noqa: E402

from lyra.generator.diffusion import (  # noqa: E402
    Conditioning,
    DiffusionError,
    Gen3CNet,
    Gen3CNetConfig,
    PromptEmbeddings,
    SamplerConfig,
    chunk_conditioning,
    chunk_spans,
    condition_clip,
    convert_official_state,
    edm,  # noqa: E402
    encode_cache,
    generate_autoregressive,
    load_official,
    sample,
)
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE, VideoTokenizer  # noqa: E402
from lyra.utils.weights import load_strict  # noqa: E402

TINY = Gen3CNetConfig.tiny()
SEVEN_B_PARAMETERS = 7_237_257_216


@pytest.fixture(scope="module")
def seven_b() -> Gen3CNet:
    with torch.device("meta"):
        return Gen3CNet(Gen3CNetConfig.official())


@pytest.fixture(scope="module")
def tiny_net() -> Gen3CNet:
    torch.manual_seed(0)
    return Gen3CNet(TINY).eval()


def tiny_conditioning(B: int = 1, T: int = 3, h: int = 4, w: int = 6, seed: int = 0) -> Conditioning:
    g = torch.Generator().manual_seed(seed)
    text = PromptEmbeddings.random(TINY, seed)
    C = TINY.latent_channels
    return Conditioning(torch.randn(B, C, T, h, w, generator=g),
                        torch.randn(B, TINY.cache_channels, T, h, w, generator=g), *text.batched())


# ---------------------------------------------------------------------------------------------- official parity
def test_7b_config_holds_the_official_keys_and_shapes(seven_b: Gen3CNet) -> None:
    cfg = seven_b.config
    assert (cfg.in_channels, cfg.width, cfg.rope_dims) == (81, 4096, (44, 42, 42))
    assert seven_b.num_parameters() == SEVEN_B_PARAMETERS
    shapes = official_shapes(cfg)
    official = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    renamed, dropped = convert_official_state(official)
    own = seven_b.transformer.state_dict()
    assert set(renamed) == set(own) and len(own) == 570
    assert all(tuple(renamed[k].shape) == tuple(own[k].shape) for k in own)
    assert renamed["patch_embed.proj.weight"].shape == (4096, 328)  # (81 + 1) · 2 · 2
    # dropped: TE extra state (56 attention ops), logvar (3), the RoPE position buffer; nothing else
    assert len(dropped) == 2 * 28 + 3 + 1 and len(shapes) == 570 + len(dropped)
    assert {r for r in dropped.values()} == {"Transformer Engine extra state", "training-only loss weighting (logvar)",
                                              "RoPE position buffer (recomputed)"}
    load_strict(seven_b.transformer, renamed, "official 7B keys", error=DiffusionError, assign=True)
    assert sum(int(torch.Size(s).numel()) for k, s in shapes.items() if k not in dropped) == SEVEN_B_PARAMETERS


def test_every_official_block_key_has_its_own_place() -> None:
    renamed, _ = convert_official_state({k: torch.empty(s, device="meta") for k, s in official_shapes(TINY).items()})
    pairs = {
        "net.blocks.block1.blocks.0.block.attn.to_q.1.weight": "transformer_blocks.1.attn1.norm_q.weight",
        "net.blocks.block1.blocks.1.block.attn.to_k.0.weight": "transformer_blocks.1.attn2.to_k.weight",
        "net.blocks.block0.blocks.2.adaLN_modulation.2.weight": "transformer_blocks.0.norm3.linear_2.weight",
        "net.blocks.block0.blocks.2.block.layer2.weight": "transformer_blocks.0.ff.net.2.weight",
        "net.final_layer.adaLN_modulation.1.weight": "norm_out.linear_1.weight",
        "net.affline_norm.weight": "time_embed.norm.weight",
    }
    from lyra.generator.diffusion.official import official_to_diffusers_key

    assert {k: official_to_diffusers_key(k) for k in pairs} == pairs
    assert official_to_diffusers_key("net.something_new.weight") is None


def write_official(path: Path, state: dict, wrap: bool = True) -> Path:
    extra = {k: io.BytesIO(b"\x00") for k, s in official_shapes(TINY).items() if k.endswith("_extra_state")}
    torch.save({"model": {**state, **extra}} if wrap else {**state, **extra}, path)
    return path


def test_official_checkpoint_loads_and_computes_the_official_function(tmp_path: Path) -> None:
    state = random_official_state(TINY, seed=1)
    path = write_official(tmp_path / "model.pt", state)
    net = load_official(tmp_path, config=TINY, dtype=torch.float32)  # the folder holding model.pt
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    blk = net.transformer.transformer_blocks[1]
    assert torch.equal(blk.attn2.to_k.weight, state["net.blocks.block1.blocks.1.block.attn.to_k.0.weight"])
    assert torch.equal(blk.attn1.norm_k.weight, state["net.blocks.block1.blocks.0.block.attn.to_k.1.weight"])
    assert blk.attn1.norm_q.eps == 1e-6
    g = torch.Generator().manual_seed(2)
    B, C, T, h, w = 2, TINY.latent_channels, 3, 4, 6
    x = torch.randn(B, C, T, h, w, generator=g)
    t = torch.tensor([-1.2, 0.7])
    text = torch.randn(B, 5, TINY.text_dim, generator=g)
    mask = torch.zeros(B, 1, T, h, w)
    mask[:, :, 0] = 1
    cache = torch.randn(B, TINY.cache_channels, T, h, w, generator=g)
    with torch.no_grad():
        ours = net(x, t, text, mask, cache)
        ref = reference_forward(state, TINY, x, t, text, mask, cache)
        ours_u = net(x, t, text, mask, None)
        ref_u = reference_forward(state, TINY, x, t, text, mask, None)
    assert ours.shape == (B, C, T, h, w)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4), (ours - ref).abs().max()
    assert torch.allclose(ours_u, ref_u, atol=1e-4, rtol=1e-4)
    assert (ours - ours_u).abs().max() > 1e-2  # the cache channels matter
    # bf16, as the official inference runs: same weights rounded, outputs close
    net16 = load_official(path, config=TINY)
    assert net16.dtype == torch.bfloat16
    with torch.no_grad():
        out16 = net16(x, t, text, mask, cache)
    assert out16.dtype == torch.float32 and (out16 - ref).abs().mean() < 0.05 * ref.abs().mean()


def test_official_loading_is_strict_and_safe(tmp_path: Path) -> None:
    state = random_official_state(TINY)
    missing = dict(state)
    del missing["net.blocks.block0.blocks.1.block.attn.to_v.0.weight"]
    with pytest.raises(DiffusionError, match=r"missing keys \(1\):\n    transformer_blocks.0.attn2.to_v.weight"):
        load_official(write_official(tmp_path / "a.pt", missing), config=TINY)
    extra = {**state, "net.new_module.weight": torch.zeros(2)}
    with pytest.raises(DiffusionError, match=r"unexpected keys \(1\):\n    net.new_module.weight"):
        load_official(write_official(tmp_path / "b.pt", extra, wrap=False), config=TINY)
    wrong = {**state, "net.affline_norm.weight": torch.ones(7)}
    with pytest.raises(DiffusionError, match=r"time_embed.norm.weight: checkpoint \[7\]"):
        load_official(write_official(tmp_path / "c.pt", wrong), config=TINY)
    nan = {**state, "net.final_layer.linear.weight": state["net.final_layer.linear.weight"] * float("nan")}
    with pytest.raises(DiffusionError, match="NaN/Inf values in proj_out.weight"):
        load_official(write_official(tmp_path / "d.pt", nan), config=TINY, dtype=torch.float32)
    torch.save({"model": {**state, "net.evil": Path("x")}}, tmp_path / "e.pt")  # a class weights_only refuses
    with pytest.raises(DiffusionError, match="e.pt: not a readable weights-only torch checkpoint"):
        load_official(tmp_path / "e.pt", config=TINY)
    with pytest.raises(DiffusionError, match="hf download nvidia/GEN3C-Cosmos-7B model.pt"):
        load_official(tmp_path / "nowhere", config=TINY)


# ---------------------------------------------------------------------------------------------- network inputs
def test_network_checks_its_inputs(tiny_net: Gen3CNet) -> None:
    c = tiny_conditioning()
    x, mask = c.condition_latent, c.input_mask
    with pytest.raises(DiffusionError, match="latents must be"):
        tiny_net(torch.zeros(1, 3, 3, 4, 6), torch.tensor(0.0), c.text, mask)
    with pytest.raises(DiffusionError, match="multiple of the patch size"):
        tiny_net(torch.zeros(1, 4, 3, 5, 6), torch.tensor(0.0), c.text, torch.zeros(1, 1, 3, 5, 6))
    with pytest.raises(DiffusionError, match="exceeds the network's largest"):
        tiny_net(torch.zeros(1, 4, 9, 4, 6), torch.tensor(0.0), c.text, torch.zeros(1, 1, 9, 4, 6))
    with pytest.raises(DiffusionError, match="cache must be"):
        tiny_net(x, torch.tensor(0.0), c.text, mask, c.cache[:, :3])
    with pytest.raises(DiffusionError, match="text embeddings must be"):
        tiny_net(x, torch.tensor(0.0), torch.zeros(1, 8, 5), mask)
    with pytest.raises(DiffusionError, match="head_dim 8 gives RoPE widths"):
        Gen3CNetConfig.tiny(head_dim=8)
    with pytest.raises(DiffusionError, match="unknown field"):
        Gen3CNetConfig.from_dict({"layers": 3})


def test_config_round_trips(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(__import__("json").dumps(TINY.to_dict()))
    assert Gen3CNetConfig.load(tmp_path / "config.json") == TINY
    (tmp_path / "bad.json").write_text('{"num_layers": "two"}')
    with pytest.raises(DiffusionError, match="bad.json: num_layers: expected an integer"):
        Gen3CNetConfig.load(tmp_path / "bad.json")


# ---------------------------------------------------------------------------------------------- sampler
def test_schedule_and_preconditioning_equal_diffusers_edm_euler() -> None:
    from diffusers import EDMEulerScheduler

    ref = EDMEulerScheduler(sigma_max=80, sigma_min=0.0002, sigma_data=0.5)  # as the official model builds it
    ref.set_timesteps(35)
    ours = SamplerConfig().sigmas()
    assert torch.equal(ours, ref.sigmas) and ours[0] == 80 and ours[-1] == 0 and len(ours) == 36
    assert torch.allclose(edm.c_noise(ours[:-1]), ref.timesteps)
    assert edm.initial_noise_sigma(80.0) == ref.init_noise_sigma
    x, F = torch.randn(3), torch.randn(3)
    assert torch.allclose(edm.denoised(x, F, ours[5], 0.5), ref.precondition_outputs(x, F, ours[5]))
    assert torch.allclose(x * edm.c_in(ours[5], 0.5), ref.precondition_inputs(x, ours[5]))
    assert torch.allclose(edm.output_for(edm.denoised(x, F, ours[5], 0.5), x, ours[5], 0.5), F, atol=1e-5)


def official_loop(net: Gen3CNet, cond: Conditioning, steps: int, guidance: float, seed: int) -> torch.Tensor:
    """The official sampling loop (model_v2w.generate_samples_from_batch) on diffusers' scheduler, in float32."""
    import numpy as np
    from diffusers import EDMEulerScheduler

    sch = EDMEulerScheduler(sigma_max=80, sigma_min=0.0002, sigma_data=0.5)
    sch.set_timesteps(steps)
    shape = tuple(cond.condition_latent.shape)
    g = torch.Generator().manual_seed(seed)
    xt = torch.randn(shape, generator=g) * sch.init_noise_sigma
    latent = cond.condition_latent
    T = shape[2]
    indicator0 = torch.zeros(1, 1, T, 1, 1)
    indicator0[:, :, : cond.num_condition] = 1
    noise = torch.from_numpy(np.random.RandomState(seed).standard_normal(shape).astype(np.float32))
    mask = indicator0.expand(shape[0], 1, *shape[2:])
    for t in sch.timesteps:
        sch._init_step_index(t)
        sigma = sch.sigmas[sch.step_index]
        indicator = torch.zeros_like(indicator0) if 0.001 >= sigma else indicator0
        aug = sch.precondition_inputs(latent + noise * 0.001, 0.001) * (sigma**2 + 0.25) ** 0.5
        new_xt = indicator * aug + (1 - indicator) * xt
        scaled = sch.scale_model_input(new_xt, timestep=t)
        out_c = net(scaled, t.reshape(1), cond.text, mask, cond.cache)
        out_u = net(scaled, t.reshape(1), cond.negative_text, mask, torch.zeros_like(cond.cache))
        out = out_c + guidance * (out_c - out_u)
        c_skip = 0.25 / (sigma**2 + 0.25)
        c_out = sigma * 0.5 / (sigma**2 + 0.25) ** 0.5
        out = indicator * (latent - c_skip * new_xt) / c_out + (1 - indicator) * out
        xt = sch.step(out, t, new_xt).prev_sample
    return xt


@pytest.mark.parametrize("guidance", [1.0, 2.5])
def test_sampler_equals_the_official_loop(tiny_net: Gen3CNet, guidance: float) -> None:
    cond = tiny_conditioning(B=2)
    with torch.no_grad():
        ref = official_loop(tiny_net, cond, steps=6, guidance=guidance, seed=5)
    ours = sample(tiny_net, cond, SamplerConfig(steps=6, guidance=guidance), seed=5)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=1e-4), (ours - ref).abs().max()


def test_sampling_is_seeded_and_keeps_the_first_frame(tiny_net: Gen3CNet) -> None:
    cond = tiny_conditioning()
    cfg = SamplerConfig(steps=8)
    a, b = sample(tiny_net, cond, cfg, seed=3), sample(tiny_net, cond, cfg, seed=3)
    assert a.shape == cond.condition_latent.shape and a.dtype == torch.float32 and torch.equal(a, b)
    assert not torch.allclose(a, sample(tiny_net, cond, cfg, seed=4))
    # frame 0 ends at the condition latent (up to the σ ≤ 0.001 tail and the augment noise); later frames do not
    err0 = (a[:, :, 0] - cond.condition_latent[:, :, 0]).abs().max()
    assert err0 < 5e-3 and (a[:, :, 1:] - cond.condition_latent[:, :, 1:]).abs().mean() > 0.1
    free = Conditioning(*(getattr(cond, n) for n in ("condition_latent", "cache", "text", "negative_text")), 0)
    assert (sample(tiny_net, free, cfg, seed=3)[:, :, 0] - cond.condition_latent[:, :, 0]).abs().max() > 0.1


def test_noise_scale_scales_the_seeded_start(tiny_net: Gen3CNet) -> None:
    from lyra.generator.diffusion import sampler as S

    cond = tiny_conditioning()
    shape = tuple(cond.condition_latent.shape)
    start = S.initial_noise(shape, 3, 80.0)
    for tau in (0.0, 0.5):
        scaled = sample(tiny_net, cond, SamplerConfig(steps=4, noise_scale=tau), seed=3)
        assert torch.equal(scaled, sample(tiny_net, cond, SamplerConfig(steps=4), seed=3, noise=start * tau))
    full = sample(tiny_net, cond, SamplerConfig(steps=4), seed=3)
    assert not torch.allclose(full, sample(tiny_net, cond, SamplerConfig(steps=4, noise_scale=0.5), seed=3))
    # tau = 0 does not depend on the seed (the path from the all-zero latent), apart from the condition frame's noise
    z3, z4 = (sample(tiny_net, cond, SamplerConfig(steps=4, noise_scale=0.0), seed=s) for s in (3, 4))
    assert (z3[:, :, 1:] - z4[:, :, 1:]).abs().max() < 0.05 * (full[:, :, 1:] - z3[:, :, 1:]).abs().max()
    for bad in (-0.1, 1.5):
        with pytest.raises(DiffusionError, match="noise_scale must be in"):
            SamplerConfig(noise_scale=bad)


class Spy(torch.nn.Module):
    """A stand-in network recording what each call receives; its output depends on every input."""

    def __init__(self, net: Gen3CNet) -> None:
        super().__init__()
        self.net, self.config, self.calls = net, net.config, []

    device = property(lambda self: self.net.device)
    check_latent_shape = property(lambda self: self.net.check_latent_shape)

    def forward(self, x, t, text, mask, cache=None):
        self.calls.append((text, mask, cache))
        return self.net(x, t, text, mask, cache)


def test_guidance_branches(tiny_net: Gen3CNet) -> None:
    cond = tiny_conditioning()
    spy = Spy(tiny_net)
    sample(spy, cond, SamplerConfig(steps=2, guidance=1.0), seed=0)  # type: ignore[arg-type]
    assert len(spy.calls) == 4
    (tc, mc, cc), (tu, mu, cu) = spy.calls[:2]
    assert torch.equal(tc, cond.text) and torch.equal(cc, cond.cache)  # cond: prompt + cache
    assert torch.equal(tu, cond.negative_text) and cu is None  # uncond: negative prompt, cache zeroed
    assert torch.equal(mc, mu) and mc[:, :, 0].min() == 1 and mc[:, :, 1:].max() == 0  # same first-frame mask
    # g = 0 is the conditional pass alone: one call per step, and the negative prompt has no effect
    spy.calls.clear()
    cfg0 = SamplerConfig(steps=3, guidance=0.0)
    g0 = sample(spy, cond, cfg0, seed=1)  # type: ignore[arg-type]
    assert len(spy.calls) == 3
    other = Conditioning(cond.condition_latent, cond.cache, cond.text, cond.negative_text * 5 + 1)
    assert torch.equal(g0, sample(tiny_net, other, cfg0, seed=1))
    cfg1 = SamplerConfig(steps=3, guidance=1.0)
    assert not torch.allclose(sample(tiny_net, cond, cfg1, seed=1), sample(tiny_net, other, cfg1, seed=1))


# ---------------------------------------------------------------------------------------------- conditioning
class PoolTokenizer(VideoTokenizer):
    """A linear stand-in tokenizer: 8×8 average pool, causal 8-frame mean, channel c = sum of RGB · (c + 1)."""

    latent_channels = 4

    def _encode(self, video):
        first, rest = video[:, :, :1], video[:, :, 1:]
        T = rest.shape[2] // 8
        rest = rest.reshape(*rest.shape[:2], T, 8, *rest.shape[3:]).mean(3)
        z = torch.nn.functional.avg_pool3d(torch.cat([first, rest], 2), (1, 8, 8)).sum(1, keepdim=True)
        return z * torch.arange(1, 5, dtype=z.dtype).view(1, 4, 1, 1, 1)

    @property
    def latents_mean(self):
        return torch.zeros(4, 1)

    @property
    def latents_std(self):
        return torch.ones(4, 1)


def test_cache_channels_in_official_order() -> None:
    tok = PoolTokenizer()
    T, H, W = 9, 16, 24
    renders = torch.rand(1, T, 3, H, W)
    masks = torch.zeros(1, T, 1, H, W)
    masks[..., : H // 2, :] = 1  # top half covered
    cache = encode_cache(tok, renders, masks, buffers=2)
    assert cache.shape == (1, 16, 2, 2, 3)
    C = 4
    render_lat, mask_lat = cache[:, :C], cache[:, C:2 * C]
    # holes are black (−1): the bottom latent row of the render sees the hole value only
    assert torch.allclose(render_lat[0, 0, :, 1], torch.full((2, 3), -3 * 0.5))
    # the mask as a 3-channel video: +1 covered, −1 not
    assert torch.allclose(mask_lat[0, 0, :, 0], torch.full((2, 3), 3 * 0.5))
    assert torch.allclose(mask_lat[0, 0, :, 1], torch.full((2, 3), -3 * 0.5))
    assert torch.equal(cache[:, 2 * C:], torch.zeros_like(cache[:, 2 * C:]))  # the missing second buffer
    with pytest.raises(DiffusionError, match="3 cache buffers given"):
        encode_cache(tok, renders.expand(3, -1, -1, -1, -1), masks.expand(3, -1, -1, -1, -1))
    clip = condition_clip(torch.ones(3, H, W), T)
    assert clip.shape == (T, 3, H, W) and clip[0].min() == 1 and torch.all(clip[1:] == 0.5)


def test_tiny_end_to_end_on_cpu(capsys) -> None:
    """Image + cache renders -> tiny tokenizer -> conditioning -> 4 sampler steps -> latents -> decoded frames."""
    torch.manual_seed(0)
    tok = CausalVideoVAE(CausalVAEConfig(latent_channels=4, channels=(8, 16), enc_blocks=(1, 1, 1),
                                         dec_blocks=(1, 1, 1), stats_frames=4)).eval()
    net = Gen3CNet(TINY).eval()
    T, H, W = 17, 32, 48
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, H, W, generator=g)
    renders = torch.rand(1, T, 3, H, W, generator=g)
    masks = (torch.rand(1, T, 1, H, W, generator=g) > 0.3).float()
    t0 = time.perf_counter()
    cond = chunk_conditioning(tok, PromptEmbeddings.random(TINY), image, renders, masks)
    z = sample(net, cond, SamplerConfig(steps=4), seed=1)
    frames = tok.decode(tok.denormalize_latents(z))
    seconds = time.perf_counter() - t0
    assert cond.condition_latent.shape == z.shape == (1, 4, 3, 4, 6) and cond.cache.shape == (1, 16, 3, 4, 6)
    assert frames.shape == (1, 3, T, H, W) and torch.isfinite(frames).all()
    with capsys.disabled():
        print(f"\n  tiny GEN3C on CPU: {T}x{H}x{W} -> latents {list(z.shape)}, 4 steps x 2 branches, "
              f"{net.num_parameters()} parameters: {seconds:.2f} s (tokenizer included)")


# ---------------------------------------------------------------------------------------------- autoregressive
def test_chunks_overlap_by_one_frame() -> None:
    assert chunk_spans(121, 121) == [(0, 121)] and chunk_spans(17, 121) == [(0, 17)]
    assert chunk_spans(361, 121) == [(0, 121), (120, 241), (240, 361)]
    with pytest.raises(DiffusionError, match="nearest: 241 or 361"):
        chunk_spans(300, 121)
    seen = []

    def chunk(k, span, last):
        seen.append((k, span, None if last is None else float(last[0, 0, 0])))
        n = span[1] - span[0]
        return torch.arange(span[0], span[1], dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 2, 2)

    video = generate_autoregressive(33, 17, chunk)
    assert video.shape == (33, 3, 2, 2) and torch.equal(video[:, 0, 0, 0], torch.arange(33.0))
    assert seen == [(0, (0, 17), None), (1, (16, 33), 16.0)]


# ---------------------------------------------------------------------------------------------- text
def test_prompt_embeddings_round_trip(tmp_path: Path) -> None:
    emb = PromptEmbeddings.random(TINY, seed=2)
    assert emb.prompt.shape == (TINY.text_tokens, TINY.text_dim)
    loaded = PromptEmbeddings.load(emb.save(tmp_path / "text_embeddings.safetensors").parent)
    assert torch.equal(loaded.prompt, emb.prompt) and torch.equal(loaded.negative_prompt, emb.negative_prompt)
    with pytest.raises(DiffusionError, match="network reads 1024"):
        emb.check(Gen3CNetConfig.official())
    from safetensors.torch import save_file

    save_file({"prompt": torch.zeros(4, 16)}, str(tmp_path / "half.safetensors"))
    with pytest.raises(DiffusionError, match="half.safetensors: missing negative_prompt"):
        PromptEmbeddings.load(tmp_path / "half.safetensors")
    with pytest.raises(DiffusionError, match="python -m lyra.generator.diffusion.text"):
        PromptEmbeddings.load(tmp_path / "none.safetensors")


def test_text_embeddings_from_a_local_t5(tmp_path: Path) -> None:
    """A tiny random T5 encoder and word-level tokenizer saved locally stand in for T5-11B."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    from lyra.generator.diffusion.text import compute_prompt_embeddings, main

    words = ["<pad>", "</s>", "<unk>", "the", "video", "ugly", "a", "of"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>",
                                                unk_token="<unk>")
    fast.save_pretrained(tmp_path / "t5")
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=len(words), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2)
    transformers.T5EncoderModel(cfg).save_pretrained(tmp_path / "t5")
    emb = compute_prompt_embeddings(tmp_path / "t5", "", "the video of ugly", max_length=12)
    assert emb.prompt.shape == emb.negative_prompt.shape == (12, 16)
    assert emb.prompt[1:].abs().max() == 0 and emb.prompt[0].abs().max() > 0  # "" is one token (</s>)
    assert emb.negative_prompt[5:].abs().max() == 0 and emb.negative_prompt[:5].abs().min() > 0
    out = tmp_path / "emb.safetensors"
    (tmp_path / "neg.txt").write_text("the video of ugly\n")
    assert main([str(tmp_path / "t5"), str(out), "--negative-prompt-file", str(tmp_path / "neg.txt")]) == 0
    assert PromptEmbeddings.load(out).prompt.shape == (512, 16)


# ---------------------------------------------------------------------------------------------- saving, offloading
def test_save_pretrained_round_trip_and_offload(tiny_net: Gen3CNet, tmp_path: Path) -> None:
    from lyra.generator.diffusion.model import from_pretrained, save_pretrained

    save_pretrained(tiny_net, tmp_path / "net")
    c = tiny_conditioning()
    args = (c.condition_latent, torch.tensor(0.3), c.text, c.input_mask, c.cache)
    with torch.no_grad():
        ref = tiny_net(*args)
        again = from_pretrained(tmp_path / "net")
        assert again.config == TINY and again.dtype == torch.float32 and torch.equal(again(*args), ref)
        half = from_pretrained(tmp_path / "net", dtype=torch.bfloat16)
        assert half.dtype == torch.bfloat16 and (half(*args) - ref).abs().max() < 0.1
        offloaded = from_pretrained(tmp_path / "net").offload("cpu", blocks_per_group=1)
        assert offloaded.device == torch.device("cpu") and torch.allclose(offloaded(*args), ref)
    (tmp_path / "net" / "config.json").write_text('{"num_layers": 3, "latent_channels": 4}')
    with pytest.raises(DiffusionError, match="does not match its config.json"):
        from_pretrained(tmp_path / "net")
    with pytest.raises(DiffusionError, match="missing config.json"):
        from_pretrained(tmp_path)


def test_check_command_on_a_tiny_official_file(tmp_path: Path, capsys) -> None:
    import json

    from lyra.generator.diffusion.check import main

    write_official(tmp_path / "model.pt", random_official_state(TINY))
    (tmp_path / "tiny.json").write_text(json.dumps(TINY.to_dict()))
    rc = main([str(tmp_path / "model.pt"), "--device", "cpu", "--config", str(tmp_path / "tiny.json"), "--steps", "2",
               "--frames", "17", "--height", "32", "--width", "48", "--convert", str(tmp_path / "conv")])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["latent_shape"] == [1, 4, 3, 4, 6] and len(report["step_s"]) == 2 and report["finite"]
    assert report["dtype"] == "bfloat16" and report["parameters"] == Gen3CNet(TINY).num_parameters()
    assert main([str(tmp_path / "conv"), "--device", "cpu", "--steps", "1", "--frames", "9", "--height", "16",
                 "--width", "16", "--offload", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["latent_shape"] == [1, 4, 2, 2, 2]
