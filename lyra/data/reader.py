"""Dataset reader for the SDG layout (ours and NVIDIA's released data): index, split, sample, load.

* Index: one entry per **scene key** (the official loader lists each scene once per view folder).
* Split: by key (sorted list or key hash), so no scene is in both train and test.
* Sampling: :mod:`lyra.data.sampling` (method.md §8.5).
* Loading: latents through the numpy-only unpickler, denormalised to raw ``[V*T_l, C, h, w]``;
  frames decoded from the mp4 (only the needed ones); cameras from pose/intrinsics npz by frame index
  (exact match); EXR depth (half or float); the frame times of the dynamic model (method.md §2.5).
  Any missing or malformed file raises :class:`DataError` naming it (no silent retries).
* Dynamic data (``lyra sdg --dynamic``): frame i of every trajectory folder shows scene time i / (N - 1);
  folders 6-11 are the time-reversed ("flipped") supervision, read as targets; a scene's source video is
  read by :func:`read_source_video`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.cameras import Cameras
from lyra.data.exr import DepthZipError, read_depth_zip
from lyra.data.layout import DataError, Layout
from lyra.data.safe_pickle import UnsafePickleError, load_numpy_pickle
from lyra.data.sampling import SamplePlan, SamplingConfig, normalized_times, plan_sample
from lyra.errors import reading
from lyra.utils.inputs import load_npz, load_tensors, read_json

SplitName = Literal["train", "test", "all"]
TargetSource = Literal["teacher", "exact", "both"]


# ---------------------------------------------------------------------------------------------- statistics
def load_latent_stats(path: str | os.PathLike) -> tuple[Tensor, Tensor]:
    """Raw-latent (mean, std) from a stats file, each as stored (viewed as [C, -1] when used).

    Accepted: our ``latent_stats.npz`` (``mean``, ``std``); Cosmos' ``mean_std.pt`` (a (mean, std) pair
    or a dict, loaded with ``torch.load(weights_only=True)``); safetensors with ``mean``/``std`` or
    ``latents_mean``/``latents_std``; a diffusers ``config.json`` with ``latents_mean``/``latents_std``.
    """
    path = Path(path)
    kind = "latent statistics file"
    if path.suffix == ".npz":
        d: dict = load_npz(path, kind, DataError, missing=DataError)
    elif path.suffix == ".json":
        raw = read_json(path, kind, DataError)
        with reading(path, "latents_mean/latents_std are not numbers", DataError):
            d = {k: torch.tensor(v) for k, v in raw.items() if k in ("latents_mean", "latents_std")}
    else:
        obj = load_tensors(path, kind, DataError, missing=DataError)
        with reading(path, "expected (mean, std) tensors", DataError):
            d = dict(zip(("mean", "std"), obj)) if isinstance(obj, (tuple, list)) else dict(obj)
    mean = d.get("mean", d.get("latents_mean"))
    std = d.get("std", d.get("latents_std"))
    if mean is None or std is None:
        raise DataError(f"{path}: expected mean/std (or latents_mean/latents_std), found {sorted(map(str, d))}")
    with reading(path, "mean/std are not numeric tensors", DataError):
        mean, std = torch.as_tensor(mean).float(), torch.as_tensor(std).float()
    if mean.numel() != std.numel() or not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
        raise DataError(f"{path}: mean/std must be finite and of equal size ({mean.numel()} vs {std.numel()})")
    if (std <= 0).any():
        raise DataError(f"{path}: std has non-positive values")
    return mean, std


# ---------------------------------------------------------------------------------------------- single files
def read_indexed_npz(path: Path, frames: Sequence[int] | None = None, row_shape: tuple[int, ...] = ()) -> np.ndarray:
    """Rows of ``data`` for the requested frame indices (binary search in ``inds``, exact matches only).

    Returns float32 [N, *row_shape] (all rows if ``frames`` is None).
    """
    arrays = load_npz(path, "camera npz", DataError, missing=DataError)
    if "data" not in arrays:
        raise DataError(f"{path}: no 'data' array (keys {sorted(arrays)})")
    data = arrays["data"]
    inds = arrays["inds"] if "inds" in arrays else np.arange(data.shape[0] if data.ndim else 0)
    if data.dtype.kind not in "biuf":
        raise DataError(f"{path}: 'data' must hold real numbers, got dtype {data.dtype}")
    if data.ndim != 1 + len(row_shape) or tuple(data.shape[1:]) != row_shape:
        raise DataError(f"{path}: 'data' must be [N, {', '.join(map(str, row_shape))}], got {list(data.shape)}")
    if data.shape[0] == 0:
        raise DataError(f"{path}: 'data' has no rows")
    if inds.shape != (data.shape[0],) or inds.dtype.kind not in "iu":
        raise DataError(f"{path}: 'inds' must be [{data.shape[0]}] integers, got {inds.dtype} {list(inds.shape)}")
    if inds.size > 1 and not (np.diff(inds) > 0).all():
        raise DataError(f"{path}: 'inds' must be strictly increasing")
    if frames is None:
        rows = data
    else:
        want = np.asarray(list(frames), dtype=np.int64)
        pos = np.clip(np.searchsorted(inds, want), 0, len(inds) - 1)
        bad = want[inds[pos] != want]
        if bad.size:
            raise DataError(f"{path}: frames {bad[:8].tolist()} not in 'inds' ({inds.min()}..{inds.max()})")
        rows = data[pos]
    rows = rows.astype(np.float32)
    if not np.isfinite(rows).all():
        raise DataError(f"{path}: non-finite values in 'data'")
    return rows


def frame_indices(path: Path) -> np.ndarray:
    """The ``inds`` of a pose/intrinsics npz (0..N-1 when absent)."""
    arrays = load_npz(path, "camera npz", DataError, missing=DataError)
    if "inds" in arrays:
        return arrays["inds"]
    if "data" not in arrays or arrays["data"].ndim == 0:
        raise DataError(f"{path}: no 'data' array [N, ...] (keys {sorted(arrays)})")
    return np.arange(len(arrays["data"]))


def cameras_from_arrays(c2w: np.ndarray, intr: np.ndarray, height: int, width: int, where: str = "") -> Cameras:
    """Cameras from c2w [N, 4, 4] and [N, 4] (fx, fy, cx, cy) rows."""
    c2w_t = torch.from_numpy(np.asarray(c2w, dtype=np.float64))
    R, t = c2w_t[:, :3, :3], c2w_t[:, :3, 3]
    w2c = torch.zeros_like(c2w_t)
    w2c[:, :3, :3] = R.transpose(1, 2)
    w2c[:, :3, 3] = -(R.transpose(1, 2) @ t[..., None])[..., 0]
    w2c[:, 3, 3] = 1.0
    f = torch.from_numpy(np.asarray(intr, dtype=np.float64))
    K = torch.zeros(f.shape[0], 3, 3, dtype=torch.float64)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = f[:, 0], f[:, 1], f[:, 2], f[:, 3], 1.0
    try:
        return Cameras(w2c.float(), K.float(), height, width)
    except ValueError as exc:
        raise DataError(f"{where}: {exc}") from exc


def video_info(path: Path) -> tuple[int, int, int]:
    """(frame count from the container, height, width) of an mp4 without decoding it."""
    import av

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            n = s.frames or sum(1 for p in c.demux(s) if p.size)
            return int(n), int(s.codec_context.height), int(s.codec_context.width)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyAV errors
        raise DataError(f"{path}: not a readable video ({type(exc).__name__}: {exc})") from exc


def read_video_frames(path: Path, frames: Sequence[int] | None = None) -> Tensor:
    """Decode the requested frames (positions in the video) as [N, 3, H, W] float32 in [0, 1], in request order."""
    import av

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    want = None if frames is None else {int(i) for i in frames}
    got: dict[int, np.ndarray] = {}
    last = -1 if want is None else max(want, default=-1)
    try:
        with av.open(str(path)) as c:
            for i, fr in enumerate(c.decode(video=0)):
                if want is None or i in want:
                    got[i] = fr.to_ndarray(format="rgb24")
                if want is not None and i >= last:
                    break
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot decode video ({type(exc).__name__}: {exc})") from exc
    order = sorted(got) if frames is None else [int(i) for i in frames]
    missing = [i for i in order if i not in got]
    if missing or not order and frames is None:
        raise DataError(f"{path}: frames {missing[:8]} not in the video ({len(got)} decoded)")
    arr = np.stack([got[i] for i in order]) if order else np.zeros((0, 1, 1, 3), np.uint8)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0


def read_latent(path: Path) -> np.ndarray:
    """A stored latent as [C, T_l, h, w] float32 (the batch axis of (1, C, T_l, h, w) dropped)."""
    try:
        z = load_numpy_pickle(path)
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from exc
    except UnsafePickleError as exc:
        raise DataError(str(exc)) from exc
    if z.ndim == 5 and z.shape[0] == 1:
        z = z[0]
    if z.ndim != 4:
        raise DataError(f"{path}: latent must be (1, C, T_l, h, w) or (C, T_l, h, w), got {list(z.shape)}")
    z = z.astype(np.float32)
    if not np.isfinite(z).all():
        raise DataError(f"{path}: latent has non-finite values")
    return z


def crop_resize(images: Tensor, K: Tensor, size: tuple[int, int], mode: str = "bilinear") -> tuple[Tensor, Tensor]:
    """Centre-crop [N, C, H, W] to the aspect ratio of ``size`` and resize (method.md §8.4 step 3).

    Returns the images and the updated intrinsics [N, 3, 3].
    """
    H, W = images.shape[-2:]
    h, w = size
    ch, cw = (H, round(H * w / h)) if W * h > H * w else (round(W * h / w), W)
    y0, x0 = (H - ch) // 2, (W - cw) // 2
    out = images[..., y0 : y0 + ch, x0 : x0 + cw]
    if (ch, cw) != (h, w):
        kw = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
        out = F.interpolate(out, size=(h, w), mode=mode, **kw)
    sx, sy = w / cw, h / ch
    K = K.clone()
    K[:, 0, 0] *= sx
    K[:, 1, 1] *= sy
    K[:, 0, 2] = (K[:, 0, 2] - x0) * sx
    K[:, 1, 2] = (K[:, 1, 2] - y0) * sy
    return out, K


# ---------------------------------------------------------------------------------------------- source videos
@dataclass
class SourceClip:
    """A dynamic scene's source video (what ``lyra sdg --dynamic`` conditions its trajectories on).

    Attributes:
        frames: [T, 3, H, W] float32 in [0, 1].
        depth: [T, 1, H, W] float32 z-depth (0 = invalid).
        cameras: T cameras (per-frame pose and intrinsics, world frame as stored).
        times: [T] float32 scene times of the frames (the world's normalised time).
    """

    frames: Tensor
    depth: Tensor
    cameras: Cameras
    times: Tensor


def read_source_video(root: str | os.PathLike, key: str) -> SourceClip:
    """Read scene ``key``'s source video from ``<root>/flag/source/`` (ViPE layout) with its frame times."""
    L = Layout(root)
    frames = read_video_frames(L.source_path("rgb", key))
    T, (H, W) = frames.shape[0], frames.shape[-2:]
    c2w = read_indexed_npz(L.source_path("pose", key), range(T), (4, 4))
    intr = read_indexed_npz(L.source_path("intrinsics", key), range(T), (4,))
    cams = cameras_from_arrays(c2w, intr, H, W, where=str(L.source_path("pose", key)))
    try:
        depth = read_depth_zip(L.source_path("depth", key), list(range(T)))
    except DepthZipError as exc:
        raise DataError(str(exc)) from exc
    done = L.done_path(key)
    meta = read_json(done, "scene done marker", DataError) if done.is_file() else {}
    times = meta.get("times") if isinstance(meta, dict) else None
    if times is None:
        times = np.linspace(0.0, 1.0, T) if T > 1 else np.zeros(1)
    try:
        t = torch.as_tensor(np.asarray(times, dtype=np.float64)).float()
    except (TypeError, ValueError) as exc:
        raise DataError(done, f"'times' must be a list of numbers ({exc})") from exc
    if t.shape != (T,):
        raise DataError(done, f"'times' has {t.numel()} entries but the source video has {T} frames")
    return SourceClip(frames, depth, cams, t)


# ---------------------------------------------------------------------------------------------- split
def split_keys(keys: Sequence[str], method: Literal["last", "hash"] = "last", num_test: int = 16,
               test_fraction: float = 0.05) -> tuple[list[str], list[str]]:
    """(train, test) scene keys, disjoint.

    ``last``: the last ``min(num_test, n)`` of the sorted unique keys are test (the method's rule,
    applied to keys instead of per-view entries). ``hash``: a key is test when the first 8 bytes of its
    SHA-1 fall below ``test_fraction`` (a scene keeps its split when the dataset grows).
    """
    uniq = sorted(set(keys))
    if method == "last":
        k = min(max(int(num_test), 0), len(uniq))
        return uniq[: len(uniq) - k], uniq[len(uniq) - k :]
    if method == "hash":
        def is_test(key: str) -> bool:
            h = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big")
            return h < test_fraction * 2.0**64

        test = [k for k in uniq if is_test(k)]
        return [k for k in uniq if not is_test(k)], test
    raise ValueError(f"split method must be 'last' or 'hash', got {method!r}")


# ---------------------------------------------------------------------------------------------- samples
@dataclass
class ReaderConfig:
    """How samples are read.

    Attributes:
        sampling: trajectory/frame selection (method.md §8.5).
        split_method, num_test_scenes, test_fraction: see :func:`split_keys`.
        load_latents: read stored latents (default: not in ``window`` mode).
        load_input_frames: decode the input frames from the mp4 (default: only in ``window`` mode).
        load_depth: read target depth from the depth zips.
        relative_poses: express every camera relative to the first input camera (method.md §8.4 step 4).
        target_size: (H, W) to centre-crop and resize targets to, or None for the stored size.
        stats: latent statistics file; None uses ``<root>/flag/latent_stats.npz`` (NVIDIA data: pass the
            tokenizer's ``mean_std.pt``).
        seed: base seed of the per-sample random draws.
        targets: the target images: "teacher" (the teacher's decoded frames, the method), "exact" (the scene's
            world rendered exactly at the target cameras, as the oracle rendered it before the tokenizer round
            trip: needs the ``flag/<key>.world.json`` that ``lyra sdg`` writes) or "both" (teacher frames in
            ``images_target``, exact renders in ``images_exact``).
    """

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    split_method: Literal["last", "hash"] = "last"
    num_test_scenes: int = 16
    test_fraction: float = 0.05
    load_latents: bool | None = None
    load_input_frames: bool | None = None
    load_depth: bool = True
    relative_poses: bool = True
    target_size: tuple[int, int] | None = None
    stats: str | None = None
    seed: int = 0
    targets: TargetSource = "teacher"


@dataclass
class Sample:
    """One training sample.

    Attributes:
        key: scene key.
        plan: the drawn views and frames.
        latents: [V*T_l, C, h, w] raw (denormalised) latents, trajectory-major, or None.
        images_input: [V*T, 3, H, W] input frames in [0, 1], or None.
        cameras_input: V camera batches of T cameras (relative to the first input camera if configured).
        images_target: [N_t, 3, H', W'] in [0, 1].
        depths_target: [N_t, 1, H', W'] z-depth (0 = invalid), or None.
        cameras_target: N_t cameras for the target images.
        num_frames: N, frames per stored trajectory video.
        images_exact: [N_t, 3, H', W'] exact renders of the targets (``ReaderConfig.targets == "both"``), or None.
        times_input: [T] float32 times of the input frames and ``times_target`` [N_t] those of the targets,
            normalised jointly to [0, 1] from the frame indices (method.md §2.5: i / (N - 1) when all N frames
            are inputs); the dynamic decoder's time conditioning. Static data carry them too (unused there).
    """

    key: str
    plan: SamplePlan
    latents: Tensor | None
    images_input: Tensor | None
    cameras_input: list[Cameras]
    images_target: Tensor
    depths_target: Tensor | None
    cameras_target: Cameras
    num_frames: int
    images_exact: Tensor | None = None
    times_input: Tensor | None = None
    times_target: Tensor | None = None

    @property
    def num_views(self) -> int:
        return len(self.plan.input_views)

    @property
    def input_frames(self) -> Tensor:
        """[T] int64 frame indices of every input trajectory."""
        return torch.tensor(self.plan.input_frames, dtype=torch.int64)

    @property
    def target_views(self) -> Tensor:
        return torch.tensor([v for v, _ in self.plan.targets], dtype=torch.int64)

    @property
    def target_frames(self) -> Tensor:
        return torch.tensor([f for _, f in self.plan.targets], dtype=torch.int64)


class SceneDataset:
    """Samples of an SDG dataset root, one index per scene key (a ``torch.utils.data.Dataset``).

    Args:
        root: the dataset folder (``<root>/<view>/<modality>/<key>.<ext>``).
        config: reading options.
        split: "train", "test" or "all".
    """

    def __init__(self, root: str | os.PathLike, config: ReaderConfig | None = None, split: SplitName = "train"):
        self.config = cfg = config or ReaderConfig()
        self.layout = Layout(root)
        self.views = self.layout.views()
        if not self.views:
            raise DataError(f"{self.layout.root}: no trajectory folders (0, 1, ...) found")
        all_keys = self.layout.scene_keys()
        if not all_keys:
            raise DataError(f"{self.layout.root}: no scenes found (no <view>/rgb/*.mp4 or <view>/latent/*.pkl)")
        train, test = split_keys(all_keys, cfg.split_method, cfg.num_test_scenes, cfg.test_fraction)
        self.keys = {"train": train, "test": test, "all": all_keys}[split]
        if not self.keys:
            raise DataError(f"{self.layout.root}: the {split!r} split is empty ({len(all_keys)} scenes, "
                            f"{len(test)} test; lower num_test_scenes or use split='all')")
        mode = cfg.sampling.mode
        self.load_latents = cfg.load_latents if cfg.load_latents is not None else mode != "window"
        self.load_input_frames = cfg.load_input_frames if cfg.load_input_frames is not None else mode == "window"
        self._stats: tuple[Tensor, Tensor] | None = None
        self._worlds: dict[str, tuple[Any, int]] = {}  # key -> (World, supersample), a few kept
        self._meta: dict[str, dict[str, Any]] = {}  # key -> done-marker meta
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.keys)

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws of every index (call once per epoch)."""
        self.epoch = int(epoch)

    @property
    def stats(self) -> tuple[Tensor, Tensor]:
        """(mean, std) of raw latents used to denormalise the stored latents."""
        if self._stats is None:
            path = Path(self.config.stats) if self.config.stats else self.layout.stats_path
            if not path.is_file():
                raise DataError(f"{path}: latent statistics not found; for NVIDIA's data pass the tokenizer's "
                                "mean_std.pt (ReaderConfig.stats / --stats)")
            self._stats = load_latent_stats(path)
        return self._stats

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self.keys):
            raise IndexError(index)
        rng = np.random.default_rng([self.config.seed, self.epoch, index])
        return self.load(self.keys[index], rng)

    def num_frames(self, key: str, view: int) -> int:
        """Frames of trajectory ``view`` of scene ``key`` (from its pose file)."""
        return int(len(frame_indices(self.layout.path(view, "pose", key))))

    def plan(self, key: str, rng: np.random.Generator) -> tuple[SamplePlan, int]:
        n = self.num_frames(key, self.views[0])
        return plan_sample(self.config.sampling, rng, self.views, n), n

    def load(self, key: str, rng: np.random.Generator | None = None, plan: SamplePlan | None = None) -> Sample:
        """Read one sample of scene ``key`` (a random plan from ``rng`` unless ``plan`` is given)."""
        L = self.layout
        if plan is None:
            plan, n = self.plan(key, rng if rng is not None else np.random.default_rng(self.config.seed))
        else:
            n = self.num_frames(key, plan.input_views[0])
        size: dict[int, tuple[int, int]] = {}

        def hw(v: int) -> tuple[int, int]:
            if v not in size:
                _, h, w = video_info(L.path(v, "rgb", key))
                size[v] = (h, w)
            return size[v]

        def cams(v: int, frames: Sequence[int]) -> Cameras:
            c2w = read_indexed_npz(L.path(v, "pose", key), frames, (4, 4))
            intr = read_indexed_npz(L.path(v, "intrinsics", key), frames, (4,))
            return cameras_from_arrays(c2w, intr, *hw(v), where=f"{L.path(v, 'pose', key)}")

        for v in sorted({*plan.input_views, *(t for t, _ in plan.targets)}):
            if (m := self.num_frames(key, v)) != n:
                raise DataError(f"{L.path(v, 'pose', key)}: {m} frames, but the scene's other trajectories have {n}")
        cams_in = [cams(v, plan.input_frames) for v in plan.input_views]
        latents = self._latents(key, plan, n) if self.load_latents else None
        images_in = (torch.cat([read_video_frames(L.path(v, "rgb", key), plan.input_frames)
                                for v in plan.input_views]) if self.load_input_frames else None)

        by_view: dict[int, list[int]] = {}
        for v, f in plan.targets:
            by_view.setdefault(v, []).append(f)
        imgs, deps, tcams, exact = {}, {}, {}, {}
        for v, fr in by_view.items():
            tcams[v] = cams(v, fr)
            if self.config.targets != "exact":
                imgs[v] = read_video_frames(L.path(v, "rgb", key), fr)
            if self.config.targets != "teacher":
                exact[v] = self._exact(key, tcams[v], fr)
            if self.config.targets == "exact":
                imgs[v] = exact.pop(v)
            if self.config.load_depth:
                p = L.path(v, "depth", key)
                try:
                    d = read_depth_zip(p, fr)
                except DepthZipError as exc:
                    raise DataError(str(exc)) from exc
                if d.shape[-2:] != imgs[v].shape[-2:]:
                    d = F.interpolate(d, size=imgs[v].shape[-2:], mode="nearest")
                deps[v] = d
        pos = {v: 0 for v in by_view}
        order = []
        for v, _ in plan.targets:
            order.append((v, pos[v]))
            pos[v] += 1
        images_t = torch.stack([imgs[v][i] for v, i in order])
        exact_t = torch.stack([exact[v][i] for v, i in order]) if exact else None
        depths_t = torch.stack([deps[v][i] for v, i in order]) if self.config.load_depth else None
        h_t, w_t = images_t.shape[-2:]
        cams_t = Cameras(torch.stack([tcams[v].w2c[i] for v, i in order]),
                         torch.stack([tcams[v].K[i] for v, i in order]), h_t, w_t)

        if self.config.relative_poses:
            ref = cams_in[0].c2w[0].double()
            cams_in = [Cameras((c.w2c.double() @ ref).float(), c.K, c.height, c.width) for c in cams_in]
            cams_t = Cameras((cams_t.w2c.double() @ ref).float(), cams_t.K, cams_t.height, cams_t.width)
        if self.config.target_size is not None and tuple(self.config.target_size) != tuple(images_t.shape[-2:]):
            h, w = self.config.target_size
            images_t, K = crop_resize(images_t, cams_t.K, (h, w), "bilinear")
            if exact_t is not None:
                exact_t, _ = crop_resize(exact_t, cams_t.K, (h, w), "bilinear")
            if depths_t is not None:
                depths_t, _ = crop_resize(depths_t, cams_t.K, (h, w), "nearest")
            cams_t = Cameras(cams_t.w2c, K, h, w)
        t_in, t_tg = normalized_times(plan.input_frames, [f for _, f in plan.targets])
        return Sample(key, plan, latents, images_in, cams_in, images_t, depths_t, cams_t, n, exact_t,
                      torch.from_numpy(t_in).float(), torch.from_numpy(t_tg).float())

    def scene_meta(self, key: str) -> dict[str, Any]:
        """The meta ``lyra sdg`` stored in the scene's done marker ({} for data without one, e.g. NVIDIA's)."""
        if key not in self._meta:
            p = self.layout.done_path(key)
            meta = read_json(p, "scene done marker", DataError) if p.is_file() else {}
            if len(self._meta) >= 4096:
                self._meta.pop(next(iter(self._meta)))
            self._meta[key] = meta if isinstance(meta, dict) else {}
        return self._meta[key]

    def world_times(self, key: str, frames: Sequence[int]) -> list[float]:
        """Scene times (the world's normalised time) of the given frame indices: the ``times`` list of a dynamic
        scene's meta, 0 for static scenes."""
        times = self.scene_meta(key).get("times")
        if times is None:
            return [0.0] * len(frames)
        try:
            return [float(times[int(f)]) for f in frames]
        except (TypeError, ValueError, IndexError, KeyError) as exc:
            raise DataError(self.layout.done_path(key),
                            f"'times' must list one number per frame (frames {list(frames)}): {exc}") from exc

    def _exact(self, key: str, cameras: Cameras, frames: Sequence[int]) -> Tensor:
        """Exact renders [N, 3, H, W] of scene ``key``'s world at ``cameras`` (stored, world-frame poses) at the
        frames' scene times, with the oracle's settings of the run (supersampling from ``flag/lyra_sdg.json``)."""
        from lyra.world import World

        L = self.layout
        if key not in self._worlds:
            path = L.world_path(key)
            if not path.is_file():
                raise DataError(f"{path}: not found; targets 'exact'/'both' need the world files that "
                                "`lyra sdg` writes (procedural worlds)")
            run = read_json(L.run_path, "SDG run file", DataError) if L.run_path.is_file() else {}
            ss = int(run.get("config", {}).get("supersample", 1))
            if len(self._worlds) >= 64:
                self._worlds.pop(next(iter(self._worlds)))
            self._worlds[key] = (World.load_json(path), ss)
        world, ss = self._worlds[key]
        return world.render(cameras, self.world_times(key, frames), supersample=ss).rgb.float().clamp(0, 1)

    def _latents(self, key: str, plan: SamplePlan, n: int) -> Tensor:
        from lyra.tokenizer import denormalize_latents, latent_frames

        if plan.input_frames != list(range(n)):
            raise DataError("stored latents cover all frames of a trajectory; use load_latents=False "
                            "(window sampling) to take a subset of input frames")
        flipped = set(self.scene_meta(key).get("latents_reversed", []))
        if bad := sorted(set(plan.input_views) & flipped):
            raise DataError(self.layout.path(bad[0], "latent", key),
                            f"trajectory folders {bad} hold time-reversed supervision whose latents are in generation "
                            "(reversed) order: use them as targets only (dynamic sampling takes inputs from 0-5)")
        mean, std = self.stats
        out = []
        for v in plan.input_views:
            p = self.layout.path(v, "latent", key)
            z = torch.from_numpy(read_latent(p))
            try:
                t_l = latent_frames(n)
            except ValueError as exc:
                raise DataError(f"{p}: {exc}") from exc
            if z.shape[1] != t_l:
                raise DataError(f"{p}: {z.shape[1]} latent frames but the trajectory has {n} frames "
                                f"(expected {t_l})")
            try:
                raw = denormalize_latents(z[None], mean, std)[0]
            except ValueError as exc:
                raise DataError(f"{p}: {exc}") from exc
            out.append(raw.permute(1, 0, 2, 3))
        return torch.cat(out).contiguous()
