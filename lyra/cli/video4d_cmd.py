"""``lyra video4d VIDEO --depth PATH | --world SEED --times SPEC --out DIR``: a video -> one Gaussian scene per time.

A video file with per-frame depth (static camera, ``--fov`` intrinsics), or a procedural moving world's source video
(``--world``, exact depth; also PSNR/SSIM per time at novel cameras against the world's exact renders) -> six
trajectories anchored on the per-frame source cameras -> teacher -> latents -> the time-conditioned decoder at every
requested time -> a 4D sequence (frame_<k>.ply + sequence.json), three videos, preview.png and report.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lyra.world.generate import WORLD_KINDS


def add_parser(sub: argparse._SubParsersAction) -> None:
    from lyra.utils.shipped import DYNAMIC as D
    from lyra.utils.shipped import DYNAMIC_VERSION as V

    p = sub.add_parser("video4d", help="a video (+ per-frame depth) or a moving procedural world -> 4D Gaussians "
                       "(one scene per requested time)",
                       description="Source clip -> six trajectories anchored on the per-frame source cameras -> "
                       "teacher (oracle / 4D cache) -> latents -> time-conditioned decoder per time -> frame_<k>.ply + "
                       "sequence.json, cameras.npz, camera_through_time.mp4, fixed_camera.mp4, frozen_time.mp4, "
                       "preview.png, report.json.")
    p.add_argument("video", nargs="?", help="input video file (mp4, ...); needs --depth")
    p.add_argument("--depth", metavar="PATH", help="per-frame z-depth of the video: a folder of depth files "
                   "(.npy/.npz/.png16 mm/.exr/.pfm, one per video frame, in file-name order) or a zip of NNNNN.exr "
                   "frames (as lyra sdg --dynamic writes)")
    p.add_argument("--fov", type=float, default=60.0, help="horizontal field of view of the video (deg, default 60)")
    p.add_argument("--world", type=int, metavar="SEED", help="a procedural moving world instead of a video (its "
                   "source video from the origin camera, exact depth); adds PSNR/SSIM per time")
    p.add_argument("--world-kind", choices=WORLD_KINDS, default="room", help="procedural world kind (default room)")
    p.add_argument("--times", required=True, metavar="SPEC", help="normalised times to reconstruct (0: first "
                   "frame, 1: last): a list 0,0.5,1, a range a:b:n (n evenly spaced) or 'all' (every frame's time)")
    p.add_argument("--generator", choices=("oracle", "cache"), help="teacher: oracle (exact world renders, the "
                   "--world default) or cache (the 4D cache: frame i warped from source frame i; the video default)")
    p.add_argument("--out", required=True, help="output folder (written atomically)")
    p.add_argument("--frames", type=int, default=D.frames, help=f"source frames, 1 + 8k (default {D.frames}), "
                   "spread evenly over the video")
    p.add_argument("--height", type=int, default=D.height, help=f"image height, multiple of 16 (default {D.height})")
    p.add_argument("--width", type=int, default=D.width, help=f"image width, multiple of 16 (default {D.width})")
    p.add_argument("--decoder", default=V, help=f"'{V}' (the default: the shipped time-conditioned pocket decoder, "
                   "lyra/assets/decoder-dynamic; the static one is the metrics' baseline), 'pocket-v2' (its static "
                   "decoder made time-conditioned with zero time embeddings) or a decoder folder (config use_time: "
                   "used as is; a static one gets zero time embeddings)")
    p.add_argument("--tokenizer", default=V, help=f"'{V}' (the default), 'pocket-v2' or a tokenizer folder")
    p.add_argument("--prune", type=float, default=None,
                   help=f"fraction of Gaussians dropped by opacity per time (default: the shipped dynamic decoder's "
                        f"own, 0: it was trained unpruned; {D.prune} for other decoders)")
    p.add_argument("--mode", choices=("classic", "eval3d"), default="classic", help="rasterizer mode of the videos")
    p.add_argument("--orbit-frames", type=int, default=48, help="frames of the novel orbit of the videos (default 48)")
    p.add_argument("--fps", type=float, default=24.0, help="frame rate of the output videos (default 24)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--seed", type=int, default=0, help="trajectory distances seed (default 0)")
    p.add_argument("--metric-cameras", type=int, default=8, help="--world: novel cameras per time for PSNR/SSIM (an "
                   "even subset of the orbit, default 8)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 is faster on a busy machine)")
    p.add_argument("--quiet", action="store_true", help="no per-stage lines or progress bars")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """The run's :class:`~lyra.pipelines.video4d.Video4DConfig` (checked) from the arguments."""
    from lyra.cli.main import CLIError
    from lyra.pipelines.video4d import Video4DConfig, parse_times

    if args.video and args.world is not None:
        raise CLIError("give a VIDEO (with --depth) or --world SEED, not both")
    if args.video is None and args.world is None:
        raise CLIError("give a VIDEO with --depth PATH, or --world SEED (a procedural moving world)")
    if args.video and not args.depth:
        raise CLIError("VIDEO needs --depth PATH (a folder of per-frame depth files or a zip of NNNNN.exr frames)")
    if args.depth and not args.video:
        raise CLIError("--depth only applies to a VIDEO")
    generator = args.generator or ("oracle" if args.world is not None else "cache")
    if generator == "oracle" and args.world is None:
        raise CLIError("--generator oracle renders a procedural world: use --world SEED (or --generator cache)")
    prune = args.prune if args.prune is not None else default_prune(args.decoder)
    return Video4DConfig(height=args.height, width=args.width, frames=args.frames, generator=generator,
                         tokenizer=args.tokenizer, decoder=args.decoder, prune=prune, mode=args.mode,
                         device=args.device, seed=args.seed, fov_x_deg=args.fov, orbit_frames=args.orbit_frames,
                         fps=args.fps, times=parse_times(args.times, args.frames), metric_cameras=args.metric_cameras,
                         **({"target_median": None} if args.world is not None else {})).validate()


def default_prune(decoder: str) -> float:
    """``--prune`` when not given: the shipped dynamic decoder's own ratio (it was trained without pruning) for a
    shipped ``--decoder`` name, else the version's setting."""
    from lyra.decoder import DecoderConfig
    from lyra.utils.shipped import DYNAMIC, SETTINGS, shipped_dir, shipped_version

    v = shipped_version(decoder)
    if v is not None and (shipped_dir("dynamic_decoder", v) / "config.json").is_file():
        return DecoderConfig.load(shipped_dir("dynamic_decoder", v) / "config.json").prune_ratio
    return SETTINGS[v].prune if v is not None else DYNAMIC.prune


def run(args: argparse.Namespace) -> int:
    from lyra.pipelines import StageTimer, load_models
    from lyra.pipelines.video4d import STALE_OUTPUTS, run_video4d, video_source, world_source
    from lyra.utils.files import atomic_dir

    cfg = config_from_args(args)
    if args.threads is not None:
        if args.threads < 1:
            from lyra.cli.main import CLIError

            raise CLIError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    timer = StageTimer(quiet=args.quiet)
    world, scale = None, 1.0
    if args.world is not None:
        from lyra.world import generate_world

        world = generate_world(args.world, args.world_kind, moving=True, photos="heldout")  # evaluation photos only
        with timer.stage("source", f"{world.kind} seed {args.world}, {cfg.frames} frames, static camera"):
            source = world_source(world, cfg)
        info: dict[str, Any] = {"world_seed": args.world, "world_kind": world.kind, "camera": "static (origin)",
                                "moving_objects": [world.names[i - 1] for i in world.moving_ids]}
        fps, units = 24.0, "world units (procedural world)"
    else:
        with timer.stage("source", f"{args.video}, {cfg.frames} frames"):
            source, scale, info = video_source(args.video, args.depth, cfg)
        fps, units = info["clip_fps"], "input depth unit x depth_scale"
    with timer.stage("load models", f"tokenizer {cfg.tokenizer}, decoder {cfg.decoder}"):
        models = load_models(cfg)
    with atomic_dir(args.out, stale=STALE_OUTPUTS) as tmp:
        result = run_video4d(source, cfg, tmp, world=world, models=models, timer=timer, input_info=info,
                             depth_scale=scale, clip_fps=fps, units=units)
    print_summary(result.report, Path(args.out))
    return 0


def print_summary(report: dict[str, Any], out: Path) -> None:
    """The closing lines: times, Gaussian counts, metrics per time, where the outputs are."""
    g = report["gaussians"]
    times = ", ".join(f"{t:g}" for t in report["times"])
    print(f"done in {report['total_s']:.1f} s: {len(g)} times ({times}), {g[0]['kept']} Gaussians per time "
          f"(of {g[0]['decoded']} decoded); decoder time-conditioned: {report['decoder_time_conditioned']}")
    m = report.get("metrics")
    if m:
        print(f"novel views ({m['cameras']} cameras off the trajectories) vs the world's exact renders at each time:")
        for r in m["per_time"]:
            a = r["pipeline"]
            line = f"  t={r['time']:.3f}: pipeline PSNR {a['psnr']:.2f} dB, SSIM {a['ssim']:.3f}"
            b = r.get("baseline_per_frame_static")
            if b:
                line += f"; per-frame static baseline PSNR {b['psnr']:.2f} dB, SSIM {b['ssim']:.3f}"
            print(line)
        if m.get("baseline_note"):
            print(f"  ({m['baseline_note']})")
    o = report["outputs"]
    print(f"  {out / o['sequence']} (+ {len(o['frames'])} frame_<k>.ply)")
    for key in ("cameras", "camera_through_time", "fixed_camera", "frozen_time", "preview", "report"):
        print(f"  {out / o[key]}")
