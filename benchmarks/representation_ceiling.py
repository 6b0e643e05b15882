"""What the decoder's output format can reach with perfect inputs: exact Gaussians on its ray grid vs depth lifting.

The 3DGS decoder places one Gaussian per B×B pixel block (B = 8: one per latent pixel) per frame of every trajectory.
This script fills that grid with *exact* values instead of decoded ones: each Gaussian sits at the world's exact depth
on its block-centre ray, with the exact colour there, isotropic, std ``--scale`` × the pixel footprint, opacity 0.95.
It renders that set (all of it, and a random 22 %, the decoder's kept fraction) at the demo's novel orbit and
prints PSNR / SSIM against the world's exact renders beside plain depth lifting of the source view (one Gaussian per
pixel), and their ratios, measured side by side in one run. A trained decoder can beat this naive fill (it learns
sizes, shapes and colours), so it bounds nothing; it shows how far a grid of block samples is from a per-pixel view.

Usage::

    python benchmarks/representation_ceiling.py [--kind photo] [--seed 5] [--block 8] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json

import torch


def main() -> None:
    from lyra.cache3d import depth_to_gaussians
    from lyra.eval import psnr, ssim
    from lyra.gaussians import merge
    from lyra.pipelines.image_to_3d import (
        GenerateConfig,
        load_models,
        method_trajectories,
        novel_orbit,
        render_views,
        source_from_world,
    )
    from lyra.utils.shipped import SETTINGS
    from lyra.world import generate_world

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", default="photo", help="world kind (default photo)")
    p.add_argument("--seed", type=int, default=5, help="world seed (default 5, a held-out photo world)")
    p.add_argument("--block", type=int, default=8, help="pixels per Gaussian along each axis (default 8)")
    p.add_argument("--scale", type=float, default=1.0, help="Gaussian std in pixel footprints (default 1.0)")
    p.add_argument("--version", default="pocket-v2", help="the shipped setting (default pocket-v2: 176x320, 49)")
    a = p.parse_args()
    torch.set_num_threads(1)

    s = SETTINGS[a.version]
    cfg = GenerateConfig(height=s.height, width=s.width, frames=s.frames, tokenizer=a.version, decoder=a.version,
                         target_median=s.target_median).validate()
    world = generate_world(a.seed, a.kind, photos="heldout")
    source = source_from_world(world, load_models(cfg)[0], cfg)
    trajs = method_trajectories(source.K, cfg.height, cfg.width, cfg.frames, center_depth=cfg.center_depth,
                                movement_factor=cfg.movement_factor, seed=cfg.seed, anchor_w2c=source.w2c)
    cams = novel_orbit(source, cfg.orbit_frames)
    target = world.render(cams, 0.0, supersample=2).rgb

    def score(g) -> tuple[float, float]:
        x = render_views(g, cams)[0]
        return round(float(psnr(x, target).mean()), 2), round(float(ssim(x, target)), 3)

    o = a.block // 2
    sets = []
    for t in trajs:
        r = world.render(t, 0.0, supersample=2)
        for i in range(len(t)):
            grid = torch.zeros_like(r.depth[i])
            grid[:, o::a.block, o::a.block] = r.depth[i][:, o::a.block, o::a.block]
            sets.append(depth_to_gaussians(r.rgb[i], grid, t[i:i + 1], scale_factor=a.scale))
    exact = merge(sets)
    keep = torch.randperm(len(exact), generator=torch.Generator().manual_seed(0))[: int(0.22 * len(exact))]
    lifting = score(depth_to_gaussians(source.image, source.depth, source.camera))
    rows = {"depth lifting": lifting, "exact grid, all": score(exact),
            "exact grid, random 22 %": score(exact.index(keep))}
    print(f"{a.kind} {a.seed}, {a.version}, {len(trajs)} trajectories x {cfg.frames} frames, one Gaussian per "
          f"{a.block}x{a.block} pixels ({len(exact)}), std {a.scale} pixel footprints; PSNR dB / SSIM at the "
          "novel orbit")
    for name, (ps, ss) in rows.items():
        print(f"  {name:24s} {ps:6.2f} / {ss:.3f}   ratio to lifting: PSNR {ps / lifting[0]:.3f}, "
              f"SSIM {ss / lifting[1]:.3f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
