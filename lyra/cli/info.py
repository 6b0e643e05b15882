"""``lyra info``: versions, devices and usable render backends."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def collect() -> dict:
    """A dict of versions, devices and render backends (for ``lyra info`` and bug reports)."""
    import torch

    from lyra import __version__

    info: dict = {
        "lyra": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in ("torch", "numpy", "numba", "gsplat", "av", "plyfile", "gsply",
                                              "safetensors", "diffusers", "accelerate", "viser", "usd-core")},
        "cpu": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "cuda": {"available": torch.cuda.is_available(),
                 "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]},
    }
    try:
        from lyra.render.api import available_backends

        info["render_backends"] = available_backends()
        from lyra.render.cpu import threads

        info["cpu"]["rasterizer_pool"] = threads.describe()
    except ImportError as exc:  # the render package failed to import: say why
        info["render_backends"] = {"error": str(exc)}
    return info


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        import json

        print(json.dumps(info))
        return 0
    print(f"lyra {info['lyra']}  (python {info['python']}, {info['platform']})")
    print("packages:")
    for k, v in info["packages"].items():
        print(f"  {k:12s} {v}")
    print(f"cpu: {info['cpu']['cores']} cores, torch threads {info['cpu']['torch_threads']}"
          + (f"; cpu rasterizer threads: {info['cpu']['rasterizer_pool']}" if "rasterizer_pool" in info["cpu"] else ""))
    cuda = info["cuda"]
    print(f"cuda: {'available: ' + ', '.join(cuda['devices']) if cuda['available'] else 'not available'}")
    print("render backends:")
    for k, v in info["render_backends"].items():
        print(f"  {k:8s} {'usable' if v is True else ('not usable' if v is False else v)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print versions, devices and usable render backends")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(func=run)
