"""Evaluation reports (JSON + markdown)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PARTS = (("vs_teacher", "vs teacher frames (held-out scenes, on trajectories)"),
         ("vs_gt_on_trajectory", "vs exact ground truth, on trajectories"),
         ("vs_gt_off_trajectory", "vs exact ground truth, off every trajectory"))


def markdown(report: dict[str, Any]) -> str:
    """A markdown summary table (PSNR dB / SSIM / LPIPS per part, fusion on vs off) and per-scene PSNR."""
    s = report["summary"]
    metrics = ["psnr", "ssim"] + (["lpips"] if any("lpips" in v.get("vs_teacher", {}) for v in s.values()
                                                   if isinstance(v, dict)) else [])
    cfg = report["config"]
    lines = [f"# Decoder evaluation: {report['num_scenes']} held-out scenes",
             "", f"data `{cfg['data']}`, decoder `{cfg['decoder']}`, every {cfg['stride']}th frame, "
             f"{report['seconds']:.0f} s", "",
             "| comparison | fusion | " + " | ".join(m.upper() for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for part, title in PARTS:
        for tag in ("fusion_on", "fusion_off"):
            v = s.get(tag, {}).get(part)
            if v:
                vals = " | ".join(f"{v[m]:.3f}" if m != "psnr" else f"{v[m]:.2f}" for m in metrics if m in v)
                lines.append(f"| {title} | {tag.split('_')[1]} | {vals} |")
    if "teacher_vs_gt" in s:
        v = s["teacher_vs_gt"]
        lines.append("| teacher frames vs exact ground truth (tokenizer ceiling) | - | "
                     + " | ".join(f"{v[m]:.3f}" if m != "psnr" else f"{v[m]:.2f}" for m in metrics if m in v) + " |")
    lines += ["", "| scene | Gaussians (fused) | PSNR vs teacher (on / off) | PSNR vs GT off-trajectory (on / off) |",
              "|---|---|---|---|"]
    for sc in report["scenes"]:
        on, off = sc.get("fusion_on", {}), sc.get("fusion_off", {})

        def get(d: dict, part: str) -> str:
            return f"{d[part]['psnr']:.2f}" if part in d else "-"

        lines.append(f"| {sc['key']} | {on.get('gaussians', '-')} | {get(on, 'vs_teacher')} / {get(off, 'vs_teacher')}"
                     f" | {get(on, 'vs_gt_off_trajectory')} / {get(off, 'vs_gt_off_trajectory')} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``eval.json`` and ``eval.md`` into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "eval.json", out / "eval.md")
    for p, text in zip(paths, (json.dumps(report, indent=1) + "\n", markdown(report))):
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, p)
    return paths
