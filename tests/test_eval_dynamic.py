"""The video → 4D evaluation protocol (lyra.eval.dynamic) with tiny random models at 32x48, 9 frames."""

from __future__ import annotations

import json

import pytest
import torch

from lyra.decoder import DecoderConfig, LyraDecoder
from lyra.eval.dynamic import evaluate_world, main, opacity_stats
from lyra.tokenizer import CausalVAEConfig, CausalVideoVAE

TINY_TOK = CausalVAEConfig(channels=(8, 16), enc_blocks=(1, 1, 1), dec_blocks=(1, 1, 1), stats_frames=4)
TINY_DEC = {"width": 16, "depth": 2, "block_pattern": "1M1T", "mamba_d_state": 8, "mamba_headdim": 8,
            "mamba_chunk_size": 8, "attn_heads": 2, "distance_shift": -5.0}
SIZE = {"frames": 9, "height": 32, "width": 48, "eval_frames": (3,), "stride": 4}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    tok = CausalVideoVAE(TINY_TOK).eval()
    static = LyraDecoder(DecoderConfig(**TINY_DEC)).eval()
    return tok, static


def test_protocol_at_the_branch_point_and_with_a_trained_time_embedding(models) -> None:
    tok, static = models
    dyn = static.with_time_conditioning().eval()
    r = evaluate_world(9000, dyn, static, tok, kind="room", prune=0.0, **SIZE)
    assert r["times"]["seen"] == [3 / 8] and r["times"]["held-out"] == [3.5 / 8]
    for m in ("dynamic", "static_per_frame", "static_whole"):
        for g in ("seen", "held-out"):
            assert 0 < r[m][g]["psnr"] < 60 and -1 < r[m][g]["ssim"] <= 1
    # zero time embeddings: the dynamic decoder is the static one on the whole trajectories, at every time
    assert r["dynamic"] == r["static_whole"]
    assert r["static_per_frame"] != r["static_whole"]  # the frozen instants are other inputs
    with torch.no_grad():
        dyn.patch_time_embed_tgt.proj.weight.normal_(0, 0.5)
    r2 = evaluate_world(9000, dyn, static, tok, kind="room", prune=0.0, **SIZE)
    assert r2["dynamic"] != r["dynamic"] and r2["static_whole"] == r["static_whole"]
    assert r2["dynamic"]["seen"] != r2["dynamic"]["held-out"]  # the target time reaches the decoder
    with pytest.raises(ValueError, match="time-conditioned"):
        evaluate_world(9000, static, static, tok, **SIZE)


def test_opacity_stats() -> None:
    rec = torch.zeros(4, 14)
    rec[:, 3] = torch.tensor([0.05, 0.2, 0.6, 0.9])
    assert opacity_stats(rec) == pytest.approx({"mean": 0.4375, "above_0.1": 0.75, "above_0.5": 0.5})


def test_cli_writes_the_report(models, tmp_path) -> None:
    tok, static = models
    tok.save_pretrained(tmp_path / "tok")
    static.with_time_conditioning().save_pretrained(tmp_path / "dyn")
    static.save_pretrained(tmp_path / "static")
    out = tmp_path / "r.json"
    assert main(["--decoder", str(tmp_path / "dyn"), "--static-decoder", str(tmp_path / "static"), "--tokenizer",
                 str(tmp_path / "tok"), "--seeds", "9000", "--kind", "room", "--teacher", "oracle", "--out", str(out),
                 "--frames", "9", "--height", "32", "--width", "48"]) == 0
    rep = json.loads(out.read_text())
    assert rep["teacher"] == "oracle" and len(rep["worlds"]) == 1 and "dynamic" in rep["mean"]
