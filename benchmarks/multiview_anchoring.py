"""Anchoring the fill to the teacher's own frames as well as to the source view: an experiment, not a pipeline option.

Source anchoring (``lyra.cache3d.anchor_to_source``) keeps the input view exact and leaves the holes to the decoder's
Gaussians, one per 8×8 block per frame, which are blurred there. This script also anchors chosen teacher frames
(``--frames``, indices into each of the six trajectories; default the last, 48): at each, the pixels that the views
anchored so far leave empty but the decoded scene covers are lifted one Gaussian per pixel with the teacher's colour
and the *decoded scene's* rendered depth, and the decoded Gaussians those pixels explain are dropped (the same test as
for the source view). It prints PSNR / SSIM at the demo's novel orbit against the world's exact renders for depth
lifting, source anchoring and this multi-view anchoring, over all pixels and inside lifting's holes (SSIM map where
lifting's alpha < 0.5), side by side in one run.

Usage::

    python benchmarks/multiview_anchoring.py [--worlds yard:4,photo:8] [--frames 48] [--depth decoded|teacher]
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    from lyra.cache3d import anchor_to_source, depth_to_gaussians, explained_by_source
    from lyra.cameras import method_trajectories
    from lyra.eval.metrics import psnr, ssim
    from lyra.gaussians import merge
    from lyra.generator import make_generator
    from lyra.pipelines import GenerateConfig, load_models, render_views, source_from_world
    from lyra.pipelines.image_to_3d import decode_samples, novel_orbit
    from lyra.world import generate_world

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worlds", default="yard:4,photo:8", help="kind:seed list (held-out photos in photo worlds)")
    p.add_argument("--frames", default="48", help="trajectory frame indices to anchor, in order (default 48)")
    p.add_argument("--depth", choices=("decoded", "teacher"), default="decoded",
                   help="depth of the lifted frame pixels: the decoded scene's render (default) or the teacher's own "
                   "(the oracle's exact depth; the method's SDG estimates one for generated frames)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    frames = [int(x) for x in a.frames.split(",")]
    cfg = GenerateConfig(generator="oracle", target_median=None)  # the default version's setting and weights
    tok, dec = load_models(cfg)
    for spec in a.worlds.split(","):
        kind, seed = spec.split(":")
        world = generate_world(int(seed), kind, photos="heldout")
        source = source_from_world(world, tok, cfg)
        trajs = method_trajectories(source.K, cfg.height, cfg.width, cfg.frames, seed=cfg.seed)
        cams = novel_orbit(source, cfg.orbit_frames)
        target = world.render(cams, 0.0, supersample=2).rgb
        samples = make_generator("oracle", tokenizer=tok, world=world).generate(trajs, source, seed=cfg.seed)
        with torch.no_grad():
            g, _ = decode_samples(dec, tok, samples, cfg.prune)
        lifted = depth_to_gaussians(source.image, source.depth, source.camera)
        anchored, _ = anchor_to_source(g, source.image, source.depth, source.camera)
        decoded = anchored.index(torch.arange(len(lifted), len(anchored)))
        views = []
        for s in samples:
            for k in frames:
                cam = s.cameras[k:k + 1]
                alpha_known = render_views(merge([lifted, *views]), cam)[2][0]
                _, depth, alpha = render_views(decoded, cam)
                hole = (alpha_known < 0.5) & (alpha[0] > 0.5)
                if not bool(hole.any()):
                    continue
                src_depth = depth[0] if a.depth == "decoded" else s.depth[k]
                dmap = torch.where(hole, src_depth, torch.zeros_like(src_depth))
                views.append(depth_to_gaussians(s.frames[k], dmap, cam))
                radius = 2.0 * decoded.scales.max(dim=-1).values
                decoded = decoded.index(~explained_by_source(decoded.means, dmap, cam, radius=radius))
        multiview = merge([lifted, *views, decoded])
        lift_rgb, _, lift_alpha = render_views(lifted, cams)
        c = 5  # the SSIM map covers the valid (un-padded) region
        holes = (lift_alpha[:, :, c:-c, c:-c] < 0.5).expand(-1, 3, -1, -1)
        rows = {}
        for name, x in (("lifting", lift_rgb), ("anchored", render_views(anchored, cams)[0]),
                        ("multiview", render_views(multiview, cams)[0])):
            m = ssim(x, target, reduction="map")
            rows[name] = (float(psnr(x, target).mean()), float(m.mean()), float(m[holes].mean()))
        print(f"{spec} (frames {frames}, {a.depth} depth, {sum(len(v) for v in views)} Gaussians from teacher frames, "
              f"holes {float(holes.float().mean()):.1%} of the pixels)")
        for name, (ps, ss, sh) in rows.items():
            print(f"  {name:10s} PSNR {ps:6.2f} dB  SSIM {ss:.4f}  SSIM in holes {sh:.4f}  "
                  f"(SSIM / lifting's {ss / rows['lifting'][1]:.3f})")


if __name__ == "__main__":
    main()
