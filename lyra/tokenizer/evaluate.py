"""Evaluation of a tokenizer on held-out clips: PSNR / SSIM of ``decode(encode(x))``.

Held-out data: procedural clips with seeds >= ``EVAL_SEED_BASE`` (never drawn in training) and the
photos ``HELDOUT_PHOTOS`` (never used in training), as 17-frame pans and as single stills.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from lyra.tokenizer.base import VideoTokenizer
from lyra.tokenizer.data import eval_clips, world_available
from lyra.tokenizer.metrics import psnr, ssim


@dataclass
class EvalResult:
    """Mean PSNR (dB) and SSIM over the clips of one held-out set."""

    kind: str
    clips: int
    frames: int
    height: int
    width: int
    psnr: float
    ssim: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate_clips(tok: VideoTokenizer, clips: list[torch.Tensor], kind: str,
                   device: torch.device | str = "cpu") -> EvalResult:
    """Reconstruct each clip ``[T, 3, H, W]`` in [0, 1] and average PSNR / SSIM per clip."""
    ps, ss = [], []
    for c in clips:
        x = (c.permute(1, 0, 2, 3)[None] * 2 - 1).to(device)
        y = tok.decode(tok.encode(x)).float().cpu()
        rec = ((y[0].permute(1, 0, 2, 3) + 1) / 2).clamp(0, 1)
        ps.append(float(psnr(rec, c)))
        ss.append(float(ssim(rec, c)))
    T, _, H, W = clips[0].shape
    return EvalResult(kind, len(clips), T, H, W, sum(ps) / len(ps), sum(ss) / len(ss))


def evaluate(tok: VideoTokenizer, n_clips: int = 16, frames: int = 17, height: int = 64, width: int = 112,
             device: torch.device | str = "cpu") -> list[EvalResult]:
    """The standard report: procedural textures, lyra.world scenes (when present; as ray-cast and 2x2
    anti-aliased), photo pans, photo stills."""
    sets = [("texture", frames), ("photo", frames), ("photo", 1)]
    if world_available():
        sets[1:1] = [("world", frames), ("world_aa", frames)]
    results = []
    for kind, T in sets:
        clips = eval_clips(kind, n_clips, T, height, width)
        r = evaluate_clips(tok, clips, kind if T > 1 else "photo_still", device)
        results.append(r)
    return results


def format_results(results: list[EvalResult]) -> str:
    """A small Markdown table."""
    lines = ["| set | clips | frames | size | PSNR (dB) | SSIM |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.kind} | {r.clips} | {r.frames} | {r.height}x{r.width} | {r.psnr:.2f} | {r.ssim:.4f} |")
    return "\n".join(lines)
