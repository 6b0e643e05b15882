"""``lyra sdg --dynamic``: the flags of dynamic SDG (moving worlds, 12 time-aligned trajectories).

Wired into ``lyra sdg`` (:mod:`lyra.cli.sdg_cmd`): :func:`add_dynamic_arguments` adds the flags; ``sdg_cmd.run``
runs :func:`lyra.pipelines.sdg_dynamic.run_dynamic_sdg` when ``--dynamic`` is given.
"""

from __future__ import annotations

import argparse


def add_dynamic_arguments(p: argparse.ArgumentParser) -> None:
    """The dynamic-SDG flags of ``lyra sdg``."""
    g = p.add_argument_group("dynamic SDG (video -> 4D training data)")
    g.add_argument("--dynamic", action="store_true",
                   help="moving worlds: a source video (flag/source/) and six trajectories whose frame t shows time t "
                        "(folders 0-5), plus time-reversed supervision (folders 6-11); generators oracle or cache")
    g.add_argument("--source-motion", default="static", choices=("static", "slow"),
                   help="camera of the source video: static (default) or slow (drifts 5-15 cm, turns <= 5 degrees)")
    g.add_argument("--no-flip", action="store_true", help="skip the time-reversed folders 6-11")
