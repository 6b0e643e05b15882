# ruff: noqa: E501  (a markdown template)
"""Write lyra/assets/decoder/MODEL_CARD.md from the pocket run's summaries and evaluation report.

    python configs/pocket/make_card.py [--runs runs/pocket] [--out lyra/assets/decoder] [--sdg-seconds S]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", default="runs/pocket")
    ap.add_argument("--out", default="lyra/assets/decoder")
    ap.add_argument("--sdg-seconds", type=float, default=None, help="wall time of the SDG run")
    ap.add_argument("--notes", default="", help="extra markdown appended to the card")
    a = ap.parse_args()
    runs = Path(a.runs)
    sums = [json.loads((runs / f"stage{i}" / "summary.json").read_text()) for i in (1, 2, 3)]
    ev = json.loads((runs / "eval" / "eval.json").read_text())
    sdg = json.loads((runs / "sdg" / "flag" / "lyra_sdg.json").read_text())["config"]
    sdg_extra = f" --supersample {sdg['supersample']}" if sdg.get("supersample", 1) != 1 else ""
    n_scenes = len(list((runs / "sdg" / "flag").glob("*.done.json")))
    cfg = json.loads((Path(a.out) / "config.json").read_text())
    total = sum(s["train_s_total"] for s in sums)
    rows = []
    for i, s in enumerate(sums, 1):
        f = s.get("final", {})
        rows.append(f"| {i} | {s['stage']} | {s['steps']} | {s['train_s_total'] / 60:.1f} | "
                    f"{s['steps'] / s['train_s_total']:.2f} | {f.get('loss', float('nan')):.4f} | "
                    f"{f.get('psnr', float('nan')):.2f} |")
    S = ev["summary"]

    def cell(tag: str, part: str) -> str:
        v = S.get(tag, {}).get(part)
        return f"{v['psnr']:.2f} dB / {v['ssim']:.3f}" if v else "-"

    params = ev["decoder_parameters"]
    card = f"""# lyra pocket 3DGS decoder

The latent 3DGS decoder of the pocket scale (`DecoderConfig.pocket`, {params:,} parameters, width {cfg['width']},
{cfg['depth']} blocks "{cfg['block_pattern']}" = Mamba-2 ×3 + attention, twice), trained on CPU by self-distillation
from the shipped pocket tokenizer's latents (design README §3, §9). Files: `config.json` + `model.safetensors`
(float32); load with `LyraDecoder.from_pretrained("lyra/assets/decoder")` (or `lyra.eval.evaluate.load_decoder("shipped")`).

Inputs: raw latents of the shipped tokenizer (16 channels, 8× space, causal 8× time) for V trajectories of
17 frames at 64×112 pixels (latents 3×8×14), the tokenizer-encoded Plücker maps (32 channels), latent-resolution
rays. Output: one Gaussian per 8×8 pixel block per frame per trajectory (V·17·8·14 = V·1,904), fused over the
trajectories, then the 80 % least opaque dropped (`prune_ratio` {cfg['prune_ratio']} in `config.json`; pass
`prune_ratio=0.0` to keep all). Renders with a white background, classic EWA splatting, near 0.1.

Differences from the official model (documented choices): `distance_shift` {cfg['distance_shift']} (raw 0 → 3.4 scene
units instead of 80, method §13.9); SSIM ((1−SSIM)/2, weight 0.5) instead of LPIPS (no LPIPS weights offline);
losses in float32; depth statistics over valid pixels only; opacity term = mean activated opacity (no double sigmoid);
train/test split by scene-key hash (no test scene is trained on); classic rasterization instead of 3DGUT.

## Data

`lyra sdg --scenes {sdg['scenes']} --out runs/pocket/sdg --frames {sdg['frames']} --height {sdg['height']} --width {sdg['width']} --kind {sdg['kind']}{sdg_extra} --tokenizer pocket-v1 --seed {sdg['seed']}`
({n_scenes} procedural scenes, generator `{sdg['generator']}`, kind `{sdg['kind']}`, six trajectories each, teacher frames =
tokenizer round trip of exact world renders{f", {a.sdg_seconds / 60:.1f} min" if a.sdg_seconds else ""}).
Split: key hash, 10 % test ({ev['num_scenes']} held-out scenes evaluated).

## Training (2 shared CPU cores, one torch thread, `nice -n 5`)

| # | stage | steps | train time (min) | steps/s | final loss | final train PSNR (dB) |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Total training time {total / 60:.1f} min (steps only; start-up and checkpoints add a little). Loss curves:
`losses_stage1.png`, `losses_stage2.png`, `losses_stage3.png` (training PSNR dashed, right axis).
Stage 1: V = 1, 4 targets rendered at 32×56, lr 5e-4 (100 warm-up steps). Stage 2: V uniform in 1..6, 2 targets per
trajectory at 64×112 (exponential frame selection), lr 3e-4. Stage 3: 80 % opacity pruning, opacity weight 0.1, lr 1e-4.
AdamW (β 0.9/0.999, weight decay 0.01), gradient clipping 1.0, batch 1, float32. Loss: MSE + 0.5·(1−SSIM)/2 +
0.05·depth (scale/shift invariant, against the worlds' exact z-depth).

## Metrics (`lyra eval`, held-out scenes, every 4th frame of all six trajectories; PSNR / SSIM)

| comparison | fusion on | fusion off |
|---|---|---|
| decoded 3DGS vs teacher frames | {cell('fusion_on', 'vs_teacher')} | {cell('fusion_off', 'vs_teacher')} |
| decoded 3DGS vs exact ground truth, on the trajectories | {cell('fusion_on', 'vs_gt_on_trajectory')} | {cell('fusion_off', 'vs_gt_on_trajectory')} |
| decoded 3DGS vs exact ground truth, off every trajectory | {cell('fusion_on', 'vs_gt_off_trajectory')} | {cell('fusion_off', 'vs_gt_off_trajectory')} |
| teacher frames vs exact ground truth (tokenizer ceiling) | {S['teacher_vs_gt']['psnr']:.2f} dB / {S['teacher_vs_gt']['ssim']:.3f} | |

Fusion on: the six trajectories decoded jointly (one token sequence, the method's inference). Fusion off: each
trajectory decoded alone, the six Gaussian sets merged afterwards. Off-trajectory cameras: midpoints of two
trajectories (left+up, right+up, left+zoom-out, right+zoom-in, up+spiral) at frames 4, 8, 12, 16, looking at the
trajectories' look-at point; ground truth = the procedural world ray-cast exactly there.

## Retrain

```
bash configs/pocket/retrain.sh        # = the commands below, each resumable
lyra sdg --scenes {sdg['scenes']} --out runs/pocket/sdg --frames 17 --height 64 --width 112 --kind {sdg['kind']}{sdg_extra} --tokenizer pocket-v1 --seed 0
lyra train configs/pocket/stage1.yaml --set threads=1
lyra train configs/pocket/stage2.yaml --set threads=1
lyra train configs/pocket/stage3.yaml --set threads=1
lyra eval --data runs/pocket/sdg --decoder runs/pocket/stage3/final --out runs/pocket/eval --split-method hash --test-fraction 0.1
cp runs/pocket/stage3/final/{{config.json,model.safetensors}} lyra/assets/decoder/
```
({"`python -m lyra.cli.train_cmd` / `python -m lyra.cli.eval_cmd` run the same sub-commands."})
{a.notes}
"""
    (Path(a.out) / "MODEL_CARD.md").write_text(card)
    print(card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
