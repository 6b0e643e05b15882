"""``lyra train CONFIG.yaml``: one training stage of the latent 3DGS decoder (self-distillation).

Several processes / machines go through Accelerate (it reads the torch.distributed environment), e.g.::

    # two CPU processes (gloo); `accelerate launch --cpu` starts only one process without an MPI hostfile
    torchrun --nproc_per_node 2 -m lyra.cli.main train configs/pocket/stage1.yaml
    accelerate launch --multi_gpu --num_processes 8 -m lyra.cli.main train configs/official/stage1.yaml
    # two machines, 8 GPUs each (run on both, machine_rank 0 and 1):
    accelerate launch --multi_gpu --num_machines 2 --num_processes 16 --machine_rank 0 \\
        --main_process_ip HOST0 --main_process_port 29500 -m lyra.cli.main train CONFIG.yaml

Every process draws its own samples (seeded by seed, step and rank), so the effective batch is
``num_processes × optim.batch_size``; the data folder must be readable from every machine.
"""

from __future__ import annotations

import argparse


def config_overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` items plus ``--steps`` / ``--output-dir`` as ``key=value`` overrides of a YAML run config."""
    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"steps={args.steps}")
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    return overrides


def run(args: argparse.Namespace) -> int:
    from lyra.train.config import TrainConfig
    from lyra.train.trainer import Trainer

    cfg = TrainConfig.load(args.config, config_overrides(args)).check_paths(args.config)
    trainer = Trainer(cfg, progress=not args.quiet, quiet=args.quiet)
    summary = trainer.run()
    if not trainer.acc.is_main_process:
        return 0
    final = summary.get("final", {})
    msg = f"{cfg.output_dir}: stage {cfg.name!r} at step {summary['steps']}"
    if summary["steps_this_run"]:
        msg += f", {summary['steps_this_run']} steps in {summary['wall_s_this_run']:.0f} s " \
               f"({summary['steps_per_s']:.3f} steps/s)"
    if final:
        msg += f", loss {final.get('loss', float('nan')):.4f}, train PSNR {final.get('psnr', float('nan')):.2f} dB"
    print(msg)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the 3DGS decoder for one stage (YAML config; resumable)")
    p.add_argument("config", help="stage config (YAML), e.g. configs/pocket/stage1.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config value (dotted key, YAML value), e.g. --set optim.lr=1e-4; repeatable")
    p.add_argument("--steps", type=int, help="override the stage's step count")
    p.add_argument("--output-dir", help="override the stage's output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no config dump")
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """Run ``lyra train`` on its own (``python -m lyra.cli.train_cmd ...``)."""
    from lyra.cli.main import standalone

    return standalone(add_parser, "train", argv)


if __name__ == "__main__":
    raise SystemExit(main())
