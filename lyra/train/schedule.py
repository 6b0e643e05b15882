"""Learning-rate schedule pieces shared by the decoder and diffusion-teacher trainers."""

from __future__ import annotations


def cooldown_factor(step: int, steps: int, cooldown_steps: int, final_ratio: float) -> float:
    """lr factor of the linear cool-down: 1 until step ``steps - cooldown_steps``, then linearly down to
    ``final_ratio`` at step ``steps`` (0-based optimiser steps; 1 when ``cooldown_steps`` is 0)."""
    if cooldown_steps <= 0:
        return 1.0
    frac = min(1.0, max(0.0, (step - (steps - cooldown_steps)) / cooldown_steps))
    return 1.0 - (1.0 - final_ratio) * frac
