"""Loss-curve logging: a CSV appended per logged step and a PNG plot (matplotlib when installed)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

CSV_NAME = "losses.csv"
PNG_NAME = "losses.png"


def _parse_row(row: dict) -> dict[str, float] | None:
    """A CSV row as numbers, or None for a torn one (a process killed while appending leaves a partial line:
    fewer fields than the header, which ``csv`` fills with None, or a cut number)."""
    if None in row or None in row.values() or "step" not in row:
        return None
    try:
        return {k: int(float(v)) if k == "step" else float(v) for k, v in row.items() if v not in ("", None)}
    except ValueError:
        return None


class LossLog:
    """Append rows ``{step, loss, <terms>, lr, grad_norm, s_per_step}`` to ``<dir>/losses.csv``.

    On resume, rows with a step beyond the resumed step are dropped so the curve has no duplicates, and so is a
    torn last line.
    """

    def __init__(self, directory: str | os.PathLike, resume_step: int = 0) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / CSV_NAME
        self.rows: list[dict[str, float]] = []
        if self.path.is_file():
            with open(self.path, newline="") as fh:
                parsed = [_parse_row(r) for r in csv.DictReader(fh)]
            self.rows = [r for r in parsed if r is not None and r.get("step", 0) <= resume_step]
            self._rewrite()

    def _fields(self) -> list[str]:
        keys: list[str] = ["step"]
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        return keys

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self._fields())
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)

    def append(self, row: dict[str, float]) -> None:
        new_keys = [k for k in row if not self.rows or k not in self.rows[-1]]
        self.rows.append(dict(row))
        if new_keys or not self.path.is_file():
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self._fields()).writerow(row)

    def plot(self) -> str:
        """Write ``losses.png``; returns its path or a note why there is none."""
        return plot_losses(self.rows, self.dir / PNG_NAME)


def loss_series(rows: list[dict[str, float]]) -> dict[str, tuple[list[int], list[float]]]:
    """Loss term -> (steps, values) over the rows that log it with a finite value (a validation loss logged every
    k-th row is one connected series), in first-seen order; bookkeeping columns are left out."""
    skip = ("step", "lr", "grad_norm", "s_per_step", "views", "psnr")
    out: dict[str, tuple[list[int], list[float]]] = {}
    for k in dict.fromkeys(k for r in rows for k in r if k not in skip):
        pts = [(int(r["step"]), float(r[k])) for r in rows if r.get(k) is not None and math.isfinite(r[k])]
        if pts:
            out[k] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


def plot_losses(rows: list[dict[str, float]], path: str | os.PathLike) -> str:
    """Loss terms against step on a log scale; skipped (with a note) without matplotlib or rows."""
    if not rows:
        return "no rows to plot"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no loss plot (pip install matplotlib)"
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in rows]
    for k, (xs, ys) in loss_series(rows).items():
        ax.plot(xs, ys, label=k, lw=1, marker="o" if len(xs) < len(rows) / 2 else None, ms=2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if any("psnr" in r for r in rows):  # training PSNR (dB) on a second axis
        ax2 = ax.twinx()
        ax2.plot(steps, [r.get("psnr", float("nan")) for r in rows], color="0.4", lw=1, ls="--")
        ax2.set_ylabel("train PSNR (dB), dashed")
    fig.tight_layout()
    tmp = Path(str(path) + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return str(path)
